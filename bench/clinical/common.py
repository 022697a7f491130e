"""What the clinical scenarios share: the REST API client, tracking lag, target helpers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

MIN_SLEEP = 0.001  # shortest sleep of an open-loop sender (event loop timer resolution)
MAX_POSTS_IN_FLIGHT = 64


class SetupError(Exception):
    """The server cannot run the scenario (a feature or adapter is missing)."""


# -- the REST API ----------------------------------------------------------------------------


class Api:
    """The server's REST API with an admin token (self-signed certificate, loopback only)."""

    def __init__(self, https_port: int, token: str, timeout: float = 30.0) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{https_port}/api/v1",
            verify=False,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(
                max_connections=MAX_POSTS_IN_FLIGHT, max_keepalive_connections=MAX_POSTS_IN_FLIGHT
            ),
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    async def get(self, path: str, **params: Any) -> httpx.Response:
        """GET ``path`` with query ``params``."""
        return await self.client.get(path, params=params)

    async def post(self, path: str, body: Any) -> httpx.Response:
        """POST a JSON body."""
        return await self.client.post(path, json=body)

    async def count(self, dataset: str) -> int | None:
        """How many records ``dataset`` holds (``None`` if it does not exist)."""
        r = await self.get(f"/datasets/{dataset}/records", limit=1)
        if r.status_code != 200:
            return None
        return int(r.json()["total"])


def _problem(r: httpx.Response) -> str:
    return f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}"


# -- how far message tracking lags ------------------------------------------------------------

TRACKED = ("MESSAGES", "MESSAGE_DELIVERIES")


async def tracked_counts(api: Api) -> dict[str, int] | None:
    """Rows of the tracking datasets (``None`` when they do not exist)."""
    out: dict[str, int] = {}
    for name in TRACKED:
        n = await api.count(name)
        if n is None:
            return None
        out[name] = n
    return out


async def tracking_catch_up(
    api: Api,
    before: dict[str, int],
    messages: int,
    *,
    run_s: float,
    settle: float,
    received: int | None = None,
) -> dict[str, Any]:
    """Rows written since ``before``: at the end of the run, then once the writer caught up.

    Caught up means MESSAGES grew by ``messages`` and MESSAGE_DELIVERIES stopped
    growing between two reads 0.5 s apart; polling stops after ``settle`` s.
    ``delivery_rows_per_s`` is MESSAGE_DELIVERIES rows committed per second of
    the sending time (``run_s``), i.e. what the writer kept up with while loaded.
    No row at all 2 s after the run means the server does not track
    (``tracked`` false: e.g. the feature is left out of ``[xmpp] features``).
    """

    async def grown() -> dict[str, int]:
        now = await tracked_counts(api) or {}
        return {k: now.get(k, 0) - before[k] for k in TRACKED}

    start = time.perf_counter()
    first = rows = await grown()
    done_after = None
    while time.perf_counter() - start < settle:
        await asyncio.sleep(0.5)
        previous, rows = rows, await grown()
        if messages and not any(rows.values()) and time.perf_counter() - start >= 2.0:
            return {"tracked": False, "rows": None, "messages_sent": messages}
        if rows["MESSAGES"] >= messages and rows == previous:
            done_after = round(time.perf_counter() - start - 0.5, 2)
            break
    return {
        "tracked": True,
        "messages_sent": messages,
        "rows_at_end": first,
        "rows": rows,
        "complete": done_after is not None,
        "complete_after_s": done_after,
        # Exact: one MESSAGES row per message sent, one MESSAGE_DELIVERIES row per copy received
        # (every recipient is online, so each message was delivered once).
        "exact": None
        if received is None
        else rows == {"MESSAGES": messages, "MESSAGE_DELIVERIES": received},
        "delivery_rows_per_s": round(first["MESSAGE_DELIVERIES"] / run_s, 1) if run_s else None,
        "settle_s": settle,
    }


# -- reporting ---------------------------------------------------------------------------------


def _at_least(value: float, want: float) -> dict[str, Any]:
    return {"target": f">= {want:.0f}", "value": value, "pass": value >= want}


def _below(value: float | None, limit: float) -> dict[str, Any]:
    return {"target": f"< {limit:.0f}", "value": value, "pass": value is not None and value < limit}


def _failed(reason: str, login: dict[str, Any]) -> dict[str, Any]:
    return {"metrics": {"login": login}, "error": reason, "targets": {}}


def _ms(d: dict[str, Any] | None) -> str:
    if not d or d.get("p50") is None:
        return "n/a"
    return f"p50 {d['p50']:.2f}  p95 {d['p95']:.2f}  p99 {d['p99']:.2f}  max {d['max']:.2f} ms"


def _tracking_text(t: dict[str, Any] | None) -> str:
    if not t or t.get("rows") is None:
        return ""
    end, rows = t["rows_at_end"], t["rows"]
    text = (
        f"; rows at end {end['MESSAGES']}+{end['MESSAGE_DELIVERIES']}, "
        f"then {rows['MESSAGES']}+{rows['MESSAGE_DELIVERIES']} "
        f"(MESSAGES+MESSAGE_DELIVERIES, {t['messages_sent']} sent)"
    )
    if t.get("exact") is not None:
        text += ", counts EXACT" if t["exact"] else ", counts DO NOT MATCH sent/received"
    if t.get("complete_after_s") is not None:
        return text + f", caught up +{t['complete_after_s']} s"
    return text + f", NOT caught up after {t['settle_s']:g} s"
