"""Who a rule delivery notified: the recipients of its message and how far each copy got.

A delivery of an XMPP rule action links (``message``) to the MESSAGES record of
what it sent; MESSAGE_DELIVERIES keeps one record per message and recipient
(an IDENTITIES record, named by the bare JID) with the times the copy was
sent, received, displayed, acknowledged, held, released or failed
(docs/tracking.md). This module reads them for the console and the CLI,
which show a delivery with the people it reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService

#: A delivery's message and the per-recipient rows (docs/tracking.md).
MESSAGE_DELIVERIES = "MESSAGE_DELIVERIES"
IDENTITIES = "IDENTITIES"
#: The furthest state a copy reached, most advanced first: (state, the field that says so).
STATES: tuple[tuple[str, str], ...] = (
    ("Failed", "failed_at"),
    ("Acknowledged", "acknowledged"),
    ("Displayed", "displayed_at"),
    ("Received", "received_at"),
    ("Released", "released_at"),
    ("Held", "held_at"),
    ("Sent", "sent_at"),
)
#: The most recipients read for one page of deliveries.
LIMIT = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    """One person a delivery's message went to.

    Attributes:
        name: Their identity (the bare JID).
        state: The furthest the copy got (``Sent`` … ``Acknowledged``, or ``Failed``).
        at: When it got there.
        times: Every time recorded for the copy, by field name.
        failure: Why the copy failed (the stanza error condition), if it did.
    """

    name: str
    state: str
    at: datetime | None
    times: Mapping[str, datetime]
    failure: str = ""


def _recipient(values: Mapping[str, object], name: str) -> Recipient:
    times = {f: v for _, f in STATES if isinstance(v := values.get(f), datetime)}
    state, at = next(((s, times[f]) for s, f in STATES if f in times), ("Pending", None))
    failure = values.get("failure")
    return Recipient(
        name=name,
        state=state,
        at=at,
        times=times,
        failure=failure if isinstance(failure, str) else "",
    )


async def recipients_of(svc: DatasetService, messages: Sequence[int]) -> dict[int, list[Recipient]]:
    """The recipients of each message in ``messages`` (by message id), in the order they were sent.

    Messages without MESSAGE_DELIVERIES rows are absent from the answer.
    """
    if not messages:
        return {}
    rows = (
        await svc.query(
            MESSAGE_DELIVERIES,
            Query(
                filters=(Filter(field="message", op=FilterOp.IN, value=list(set(messages))),),
                sort=(Sort(field="id"),),
                limit=LIMIT,
            ),
        )
    ).records
    ids = sorted({i for r in rows if isinstance(i := r.values.get("recipient"), int)})
    names: dict[int, str] = {}
    if ids:
        found = await svc.query(
            IDENTITIES,
            Query(filters=(Filter(field="id", op=FilterOp.IN, value=ids),), limit=len(ids)),
        )
        names = {r.id: str(r.values.get("name", "")) for r in found.records}
    out: dict[int, list[Recipient]] = {}
    for r in rows:
        message, who = r.values.get("message"), r.values.get("recipient")
        if isinstance(message, int):
            name = names.get(who, f"identity {who}") if isinstance(who, int) else "unknown"
            out.setdefault(message, []).append(_recipient(r.values, name))
    return out


def summary(recipients: Sequence[Recipient]) -> str:
    """``nurse.adams@h.example (Acknowledged), dr.chen@h.example (Sent)``; empty when none."""
    return ", ".join(f"{r.name} ({r.state})" for r in recipients)
