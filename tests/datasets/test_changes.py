"""Change events of one transaction, merged per record; the values they carry (no event loop)."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.datasets.changes import (
    ChangeSet,
    changed_fields,
    column_fields,
    created_values,
    linked_after,
    merge,
    written_record,
)
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    ChangeKind,
    Dataset,
    DatasetName,
    Link,
    Origin,
    RecordChanged,
    RecordId,
    Values,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORIGIN = Origin(adapter="hl7", actor="rule:3", depth=1)

BEDS = Dataset(
    name=DatasetName("BEDS"),
    attributes=(
        Attribute(name="bed_number", type=AttrType.STRING, is_key=True),
        Attribute(name="status", type=AttrType.STRING),
    ),
    links=(
        Link(
            name="room",
            target=DatasetName("ROOMS"),
            reverse="beds",
            cardinality=Cardinality.MANY_TO_ONE,
            is_key=True,
        ),
        Link(
            name="monitor",  # 1:1 whose column BEDS holds: ("BEDS", "monitor") sorts first
            target=DatasetName("MONITORS"),
            reverse="bed",
            cardinality=Cardinality.ONE_TO_ONE,
        ),
        Link(
            name="tags",
            target=DatasetName("TAGS"),
            reverse="beds",
            cardinality=Cardinality.MANY_TO_MANY,
        ),
        Link(
            name="alarms",
            target=DatasetName("ALARMS"),
            reverse="bed",
            cardinality=Cardinality.ONE_TO_MANY,
        ),
    ),
)

values_st = st.dictionaries(
    st.sampled_from(["bed_number", "status", "room"]),
    st.none() | st.integers(0, 3) | st.sampled_from(["A", "B"]),
    max_size=3,
)


def _event(
    kind: ChangeKind,
    old: Values | None,
    new: Values | None,
    *,
    at: int = 0,
    dataset: str = "BEDS",
    record: int = 1,
) -> RecordChanged:
    return RecordChanged(
        dataset=DatasetName(dataset),
        record_id=RecordId(record),
        kind=kind,
        old=old,
        new=new,
        origin=ORIGIN,
        at=T0 + timedelta(seconds=at),
    )


@st.composite
def lifecycles(draw: st.DrawFn, dataset: str = "BEDS", record: int = 1) -> list[RecordChanged]:
    """The writes one transaction can make to one record, in order.

    An optional create, updates, an optional delete (nothing follows a delete);
    each write's old values are the previous write's new ones.
    """
    kinds = [ChangeKind.CREATE] if draw(st.booleans()) else []
    kinds += [ChangeKind.UPDATE] * draw(st.integers(0, 4))
    if draw(st.booleans()) or not kinds:
        kinds.append(ChangeKind.DELETE)
    states = draw(st.lists(values_st, min_size=len(kinds) + 1, max_size=len(kinds) + 1))
    return [
        _event(
            kind,
            None if kind is ChangeKind.CREATE else states[i],
            None if kind is ChangeKind.DELETE else states[i + 1],
            at=i,
            dataset=dataset,
            record=record,
        )
        for i, kind in enumerate(kinds)
    ]


def _fold(events: Sequence[RecordChanged]) -> RecordChanged | None:
    """What merging the events one after the other leaves (None: nothing happened)."""

    def step(acc: RecordChanged | None, event: RecordChanged) -> RecordChanged | None:
        return event if acc is None else merge(acc, event)

    return functools.reduce(step, events, None)


def _collected(events: Sequence[RecordChanged]) -> list[RecordChanged]:
    changes = ChangeSet()
    for event in events:
        changes.add(event)
    return changes.events


# --- merge ----------------------------------------------------------------------------------


def test_create_then_delete_is_no_event() -> None:
    created = _event(ChangeKind.CREATE, None, {"status": "free"})
    deleted = _event(ChangeKind.DELETE, {"status": "free"}, None, at=1)
    assert merge(created, deleted) is None
    assert _collected([created, deleted]) == []


def test_create_then_updates_is_one_create_with_the_last_values() -> None:
    created = _event(ChangeKind.CREATE, None, {"status": "free"})
    updated = _event(ChangeKind.UPDATE, {"status": "free"}, {"status": "taken"}, at=4)
    assert merge(created, updated) == _event(ChangeKind.CREATE, None, {"status": "taken"}, at=4)


def test_update_then_delete_is_a_delete_of_the_first_old_values() -> None:
    updated = _event(ChangeKind.UPDATE, {"status": "free"}, {"status": "taken"})
    deleted = _event(ChangeKind.DELETE, {"status": "taken"}, None, at=2)
    assert merge(updated, deleted) == _event(ChangeKind.DELETE, {"status": "free"}, None, at=2)


def test_the_later_write_gives_origin_and_time() -> None:
    first = _event(ChangeKind.UPDATE, {"status": "a"}, {"status": "b"})
    later = replace(
        _event(ChangeKind.UPDATE, {"status": "b"}, {"status": "c"}, at=9), origin=Origin()
    )
    merged = merge(first, later)
    assert merged is not None
    assert (merged.origin, merged.at) == (Origin(), T0 + timedelta(seconds=9))


@given(lifecycles())
def test_a_record_s_writes_fold_to_first_old_and_last_new(events: list[RecordChanged]) -> None:
    first, last = events[0], events[-1]
    created, deleted = first.kind is ChangeKind.CREATE, last.kind is ChangeKind.DELETE
    expected = (
        None
        if created and deleted
        else replace(last, kind=ChangeKind.CREATE if created else last.kind, old=first.old)
    )
    assert _fold(events) == expected
    assert _collected(events) == ([] if expected is None else [expected])


@given(lifecycles(), st.data())
def test_merging_is_associative(events: list[RecordChanged], data: st.DataObject) -> None:
    """Merging two parts of a record's writes equals merging all of them in order."""
    if len(events) < 2:
        return
    split = data.draw(st.integers(1, len(events) - 1), label="split")
    head, tail = _fold(events[:split]), _fold(events[split:])
    # a part never vanishes: only a create..delete does, and that is never a proper part
    assert head is not None
    assert tail is not None
    assert merge(head, tail) == _fold(events)


@given(
    lifecycles("BEDS", 1),
    lifecycles("ROOMS", 1),
    lifecycles("BEDS", 2),
    st.randoms(use_true_random=False),
)
def test_one_event_per_record_in_the_order_records_were_first_written(
    bed: list[RecordChanged],
    room: list[RecordChanged],
    other_bed: list[RecordChanged],
    rnd: random.Random,
) -> None:
    """Interleaved writes of several records: each record's writes folded, in first-write order."""
    per_record = [bed, room, other_bed]
    queues = [list(writes) for writes in per_record]
    tags = [i for i, writes in enumerate(per_record) for _ in writes]
    rnd.shuffle(tags)  # an interleaving that keeps each record's own order
    interleaved = [queues[i].pop(0) for i in tags]
    expected = [_fold(per_record[i]) for i in dict.fromkeys(tags)]
    assert _collected(interleaved) == [e for e in expected if e is not None]


# --- the values events carry ----------------------------------------------------------------


def test_column_fields_are_attributes_and_the_links_a_record_holds() -> None:
    assert column_fields(BEDS) == ["bed_number", "status", "room", "monitor"]


def test_created_values() -> None:
    values = created_values(
        BEDS, {"bed_number": "A", "room": 3}, {"tags": [RecordId(9), RecordId(2)]}
    )
    assert values == {
        "bed_number": "A",
        "status": None,
        "room": 3,
        "monitor": None,
        "tags": [2, 9],
    }


@given(values_st, st.dictionaries(st.just("tags"), st.lists(st.integers(1, 9).map(RecordId))))
def test_created_values_has_every_column_and_what_was_written(
    row: dict[str, object], many: dict[str, list[RecordId]]
) -> None:
    values = created_values(BEDS, row, many)
    assert set(values) == set(column_fields(BEDS)) | set(row) | set(many)
    assert all(values[k] == v for k, v in row.items())
    assert all(values[k] == sorted(v) for k, v in many.items())
    assert all(values[k] is None for k in column_fields(BEDS) if k not in row)


@given(values_st, values_st)
def test_changed_fields_are_exactly_what_differs(before: Values, after: Values) -> None:
    changed = changed_fields(before, after)
    written = {**before, **changed}
    assert all(written.get(k) == v for k, v in after.items())
    assert all(before.get(k) != v for k, v in changed.items())
    assert set(changed) <= set(after)


def test_a_field_a_record_lacks_counts_as_none() -> None:
    """Records read from the store hold every column; None is no change to a missing one."""
    assert changed_fields({}, {"status": None}) == {}
    assert changed_fields({}, {"status": ""}) == {"status": ""}


ids_st = st.lists(st.integers(1, 6).map(RecordId), max_size=6)


@given(ids_st, ids_st)
def test_linked_after_adding_and_removing(before: list[RecordId], targets: list[RecordId]) -> None:
    added = linked_after(before, targets, add=True)
    removed = linked_after(before, targets, add=False)
    for result in (added, removed):
        assert result == sorted(set(result))
    assert set(added) == set(before) | set(targets)
    assert set(removed) == set(before) - set(targets)
    assert linked_after(added, targets, add=False) == sorted(set(before) - set(targets))


@pytest.mark.parametrize(
    ("kind", "old", "new", "values"),
    [
        (ChangeKind.CREATE, None, {"status": "free"}, {"status": "free"}),
        (ChangeKind.UPDATE, {"status": "free"}, {"status": "taken"}, {"status": "taken"}),
        (ChangeKind.DELETE, {"status": "free"}, None, {"status": "free"}),
    ],
)
def test_written_record_is_the_record_as_the_write_left_it(
    kind: ChangeKind, old: Values | None, new: Values | None, values: Values
) -> None:
    record = written_record(_event(kind, old, new, record=7))
    assert (record.dataset, record.id, record.values) == ("BEDS", 7, values)
