"""How the CLI shows records: links by the linked record's name, chosen columns, recipients.

``records list`` and ``records get`` print through here (see :mod:`carewire.cli.data`);
tables are fitted to the terminal by :mod:`carewire.cli.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from carewire.cli.runtime import Services
from carewire.cli.tables import print_table
from carewire.datasets.model import Dataset, Link, Record, holds_reference
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query
from carewire.datasets.values import to_json
from carewire.errors import ValidationError
from carewire.rules.recipients import recipients_of, summary


def record_json(rec: Record) -> dict[str, object]:
    """A record as the REST API writes it."""
    return {"id": rec.id, "values": {k: to_json(v) for k, v in rec.values.items()}}


def cell_text(value: object) -> str:
    """A value as one table cell (JSON for lists and mappings)."""
    shown = to_json(value)
    if shown is None:
        return ""
    return shown if isinstance(shown, str) else json.dumps(shown)


async def print_record(p: Services, rec: Record, *, as_json: bool, verb: str = "") -> None:
    """A record as FIELD/VALUE rows; a link shows the linked record's name and id."""
    if as_json:
        print(json.dumps(record_json(rec), indent=2, ensure_ascii=False))
        return
    if verb:
        print(f"{verb} {rec.dataset} record {rec.id}")
    ds = p.registry.get(rec.dataset)
    labels = await link_labels(p, ds, [rec], list(rec.values))
    rows: list[tuple[str, str]] = [("id", str(rec.id))]
    for name, v in rec.values.items():
        link = ds.link(name)
        if link is not None and isinstance(v, int):
            rows.append((name, f"{labels.get(name, {}).get(v, '')} ({link.target} {v})".lstrip()))
        else:
            rows.append((name, cell_text(v)))
    print_table(rows, ("FIELD", "VALUE"))
    if rec.dataset == DELIVERIES and not verb:
        await _print_recipients(p, rec)


async def _print_recipients(p: Services, rec: Record) -> None:
    """Who a delivery's message went to, and how far each copy got (docs/tracking.md)."""
    message = rec.values.get("message")
    if not isinstance(message, int):
        print("\nnotified: nobody (this delivery sent no message)")
        return
    found = (await recipients_of(p.datasets, [message])).get(message, [])
    print()
    if not found:
        print(f"notified: nobody yet (MESSAGES record {message} has reached no one)")
        return
    print_table(
        [
            (r.name, r.state, *(cell_text(r.times.get(f)) for f in _RECIPIENT_TIMES), r.failure)
            for r in found
        ],
        ("NOTIFIED", "STATE", "SENT", "RECEIVED", "DISPLAYED", "ACKNOWLEDGED", "FAILURE"),
    )


DELIVERIES = "DELIVERIES"
_RECIPIENT_TIMES = ("sent_at", "received_at", "displayed_at", "acknowledged")
#: A column ``records list DELIVERIES`` adds: who each delivery's message went to.
NOTIFIED = "notified"


def label(ds: Dataset, rec: Record) -> str:
    """A linked record as people name it: its key attributes, else its ``name``, else its id.

    PHI attributes never name a record here (they would need a recorded read).
    """
    shown = [a for a in ds.key_attributes if not a.is_phi]
    if not shown:
        shown = [a for a in ds.attributes if a.name == "name" and not a.is_phi]
    parts = [cell_text(rec.values.get(a.name)) for a in shown]
    return " ".join(x for x in parts if x) or f"#{rec.id}"


async def link_labels(
    p: Services, ds: Dataset, records: Sequence[Record], fields: Sequence[str]
) -> dict[str, dict[int, str]]:
    """For each to-one link among ``fields``: linked record id → its name (:func:`_label`)."""
    out: dict[str, dict[int, str]] = {}
    for name in fields:
        link: Link | None = ds.link(name)
        if link is None or not holds_reference(ds.name, link):
            continue
        ids = sorted({v for r in records if isinstance(v := r.values.get(name), int)})
        out[name] = {}
        if not ids:
            continue
        target = p.registry.get(link.target)
        for start in range(0, len(ids), MAX_LIMIT):
            chunk = ids[start : start + MAX_LIMIT]
            query = Query(
                filters=(Filter(field="id", op=FilterOp.IN, value=chunk),), limit=len(chunk)
            )
            page = await p.datasets.query(target.name, query)
            out[name].update({r.id: label(target, r) for r in page.records})
    return out


def choose_columns(ds: Dataset, chosen: str | None) -> list[str]:
    """The columns ``records list`` shows: every field, or those ``--columns`` names, in its order.

    Raises:
        ValidationError: ``--columns`` names a column the dataset does not have, or none.
    """
    available = ["id", *(a.name for a in ds.attributes)]
    available += [ln.name for ln in ds.links if holds_reference(ds.name, ln)]
    if ds.name == DELIVERIES:
        available.append(NOTIFIED)
    if chosen is None:
        return available
    by_lower = {c.lower(): c for c in available}
    names = [c.strip() for c in chosen.split(",") if c.strip()]
    unknown = [n for n in names if n.lower() not in by_lower]
    if unknown or not names:
        what = f"has no column {unknown[0]!r}" if unknown else "needs at least one column"
        raise ValidationError(f"--columns: {ds.name} {what}; its columns: {', '.join(available)}")
    return [by_lower[n.lower()] for n in names]


async def print_records(
    p: Services, ds: Dataset, records: Sequence[Record], columns: Sequence[str]
) -> None:
    """``records`` as a table of ``columns`` (:func:`choose_columns`), links by name."""
    labels = await link_labels(p, ds, records, columns)
    notified: dict[int, str] = {}
    if NOTIFIED in columns:
        messages = {r.id: m for r in records if isinstance(m := r.values.get("message"), int)}
        found = await recipients_of(p.datasets, list(messages.values()))
        notified = {rid: summary(found.get(m, [])) for rid, m in messages.items()}

    def cell(r: Record, name: str) -> str:
        if name == "id":
            return str(r.id)
        if name == NOTIFIED:
            return notified.get(r.id, "")
        value = r.values.get(name)
        if name in labels and isinstance(value, int):
            return labels[name].get(value, f"#{value}")
        return cell_text(value)

    print_table([[cell(r, n) for n in columns] for r in records], [n.upper() for n in columns])
