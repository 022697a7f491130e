"""A deferred firing's saved trigger: the write as JSON, and back (``rule_schedule.payload``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from carewire.datasets.model import ChangeKind, Origin, RecordChanged, RecordId


def firing_payload(event: RecordChanged) -> dict[str, object]:
    """What the scheduler needs of ``event`` later (the new values are re-read then)."""
    return {
        "dataset": event.dataset,
        "record_id": int(event.record_id),
        "kind": event.kind.value,
        "at": event.at.isoformat(),
        "old": None if event.old is None else _jsonable(event.old),
        "origin": {
            "adapter": event.origin.adapter,
            "actor": event.origin.actor,
            "depth": event.origin.depth,
        },
    }


def is_same_write(payload: Mapping[str, object], event: RecordChanged) -> bool:
    """Whether a saved firing was triggered by ``event`` (same record, same moment)."""
    return (
        payload.get("dataset") == event.dataset
        and payload.get("record_id") == int(event.record_id)
        and payload.get("at") == event.at.isoformat()
    )


def event_from_payload(p: Mapping[str, object]) -> RecordChanged:
    """The triggering write of a saved firing (old values as JSON left them: dates as text)."""
    origin = p.get("origin")
    assert isinstance(origin, dict)
    old = p.get("old")
    return RecordChanged(
        dataset=str(p["dataset"]),  # type: ignore[arg-type]
        record_id=RecordId(int(str(p["record_id"]))),
        kind=ChangeKind(str(p["kind"])),
        old=old if isinstance(old, dict) else None,
        new=None,
        origin=Origin(
            adapter=origin.get("adapter"),
            actor=str(origin.get("actor")),
            depth=int(origin.get("depth") or 0),
        ),
        at=datetime.fromisoformat(str(p["at"])),
    )


def _jsonable(values: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in values.items():
        out[k] = v.isoformat() if isinstance(v, datetime | date) else v
    return out
