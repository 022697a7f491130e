"""``chat-tracking``: the 1:1 chat scenario on a server with and one without message tracking."""

from __future__ import annotations

from typing import Any

from bench.clinical.common import Api, _tracking_text, tracked_counts, tracking_catch_up
from bench.scenarios import BenchContext, scenario_chat

SUSTAINED_P99_MS = 250.0  # beyond this, messages queue somewhere
SUSTAINED_CATCH_UP_S = 5.0
_LOG_KEYS = ("errors", "tracebacks", "warnings")
#: The features a server runs without message tracking (and the archive built on it).
#: Expiry, alerting, coverage and groups need the tracker too, and the data platform's XMPP
#: adapter needs alerting, so such a server no longer starts: the untracked row then says so.
UNTRACKED_DROPPED = ("tracking", "mam")


def untracked_features() -> tuple[str, ...]:
    """The kernel's default feature list without :data:`UNTRACKED_DROPPED`."""
    from carewire.core.kernel import DEFAULT_FEATURES

    return tuple(f for f in DEFAULT_FEATURES if f not in UNTRACKED_DROPPED)


async def scenario_chat_tracked(
    ctx: BenchContext,
    *,
    api: Api | None,
    pairs: int,
    rate: float,
    duration: float,
    warmup: float,
    drain: float,
    settle: float = 60.0,
) -> dict[str, Any]:
    """The ``chat`` scenario; with ``api``, also when every message had its MESSAGES row.

    The MESSAGES count is read before the run and then polled from the end of
    the chat scenario (about 1 s after its drain) until it has grown by the
    number of messages sent, or ``settle`` seconds passed.
    """
    before = await tracked_counts(api) if api is not None else None
    result = await scenario_chat(
        ctx, pairs=pairs, rate=rate, duration=duration, warmup=warmup, drain=drain
    )
    metrics = result.setdefault("metrics", {})
    if api is None or before is None:
        metrics["tracking"] = {"rows": None, "note": "not tracked (or no MESSAGES dataset)"}
        return result
    metrics["tracking"] = await tracking_catch_up(
        api,
        before,
        int(metrics.get("sent", 0)),
        run_s=warmup + duration,
        settle=settle,
        received=int(metrics.get("received", 0)),
    )
    return result


def _chat_row(result: dict[str, Any]) -> dict[str, Any]:
    m = result.get("metrics") or {}
    lat = m.get("latency_ms") or {}
    return {
        "rate": (result.get("params") or {}).get("rate"),
        "offered_msg_per_s": m.get("offered_msg_per_s"),
        "delivered_msg_per_s": m.get("delivered_msg_per_s"),
        "p50_ms": lat.get("p50"),
        "p95_ms": lat.get("p95"),
        "p99_ms": lat.get("p99"),
        "max_ms": lat.get("max"),
        "loss": m.get("loss"),
        "server_cpu_pct": m.get("server_cpu_pct"),
        "server_cpu_us_per_msg": _us_per_msg(m.get("server_cpu_pct"), m.get("delivered_msg_per_s")),
        "server_sys_cpu_pct": m.get("server_sys_cpu_pct"),
        "other_cpu_pct": m.get("other_cpu_pct"),
        "tracking": m.get("tracking"),
        "error": result.get("error"),
    }


def _us_per_msg(cpu_pct: object, delivered: object) -> float | None:
    """Server CPU per delivered message (µs), from the measured window's CPU share and rate."""
    if isinstance(cpu_pct, int | float) and isinstance(delivered, int | float) and delivered > 0:
        return round(cpu_pct / 100 * 1e6 / delivered, 1)
    return None


def is_sustained(result: dict[str, Any]) -> bool:
    """Delivered ≥ 99 % of the offered rate, no loss, p99 < 250 ms, tracking caught up in 5 s.

    The p99 bound is loose on purpose: it tells queueing from the noise of a
    shared machine; the ``chat`` scenario's own target (50 ms) is reported too.
    """
    row = _chat_row(result)
    tracking = row["tracking"] or {}
    return bool(
        not row["error"]
        and row["rate"]
        and (row["delivered_msg_per_s"] or 0) >= 0.99 * row["rate"]
        and row["loss"] == 0
        and row["p99_ms"] is not None
        and row["p99_ms"] < SUSTAINED_P99_MS
        and (tracking.get("complete_after_s") or 0) <= SUSTAINED_CATCH_UP_S
        and tracking.get("complete", True)
    )


def ramp_line(result: dict[str, Any]) -> str:
    """One line on a ramp step: its figures and whether the rate was sustained."""
    verdict = "SUSTAINED" if is_sustained(result) else "not sustained"
    return f"{_row_text(_chat_row(result))}  {verdict}"


def tracking_comparison(
    without: dict[str, Any], tracked: dict[str, Any], ramp: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``chat-tracking`` result: both rows, their difference, the ramp that chose the rate."""
    off, on = _chat_row(without), _chat_row(tracked)

    def diff(key: str) -> float | None:
        a, b = off.get(key), on.get(key)
        return (
            round(b - a, 3) if isinstance(a, int | float) and isinstance(b, int | float) else None
        )

    others = [r["other_cpu_pct"] for r in (off, on) if r["other_cpu_pct"] is not None]
    metrics = {
        "rate": on["rate"],
        "without_tracking": off,
        "with_tracking": on,
        "overhead": {k: diff(k) for k in ("p50_ms", "p99_ms", "server_cpu_pct")},
        "ramp": [{**_chat_row(r), "sustained": is_sustained(r)} for r in ramp],
        "untracked_features": list(untracked_features()),
        "other_cpu_pct": max(others) if others else None,
        "latency_ms": {"p99": on["p99_ms"]},
        "server_log_problems": {
            label: {k: (r.get("server") or {}).get("log", {}).get(k) for k in _LOG_KEYS}
            for label, r in [
                *((f"ramp {i + 1}", x) for i, x in enumerate(ramp)),
                ("without", without),
                ("with", tracked),
            ]
        },
    }
    errors = [e for e in (without.get("error"), tracked.get("error")) if e]
    return {
        "params": {**(tracked.get("params") or {}), "ramp": [r["rate"] for r in metrics["ramp"]]},
        "metrics": metrics,
        "runs": {"without_tracking": without, "with_tracking": tracked, "ramp": ramp},
        "error": "; ".join(errors) or None,
        "targets": {
            "tracked_sustained": {
                "target": "delivered, no loss, p99 < 250 ms, rows in 5 s",
                "value": on["rate"],
                "pass": is_sustained(tracked),
            },
        },
    }


def _row_text(r: dict[str, Any]) -> str:
    if r.get("rate") is None:  # the run did not happen (its server did not start, …)
        return f"no figures: {r.get('error') or 'the run failed'}"
    return (
        f"{r['rate']:g}/s: delivered {r['delivered_msg_per_s']}/s, p50 {r['p50_ms']} "
        f"p99 {r['p99_ms']} max {r['max_ms']} ms, loss {r['loss']}, "
        f"server CPU {r['server_cpu_pct']}% ({r.get('server_cpu_us_per_msg')} µs/msg)"
        f"{_tracking_text(r.get('tracking'))}"
    )
