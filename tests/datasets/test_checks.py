"""Checks of record values against definitions: required values, keys, links (no event loop)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.datasets.checks import (
    PendingTargets,
    TargetRef,
    dangling,
    key_fields,
    link_for_value,
    matchable_key_fields,
    needs_one_by_one,
    new_keys,
    no_record_with_key,
    parse_ref,
    refuse_dangling,
    refuse_referenced,
    refuse_taken_key,
    relink_target,
    require,
    require_key_names,
    reverse_error,
    unseen,
    upsert_key,
)
from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
    Record,
    RecordId,
    holds_reference,
)
from carewire.datasets.values import INT_MAX, RecordError, is_empty
from carewire.errors import ConflictError


def _link(
    name: str, target: str, reverse: str, cardinality: Cardinality, *, is_key: bool = False
) -> Link:
    return Link(
        name=name,
        target=DatasetName(target),
        reverse=reverse,
        cardinality=cardinality,
        is_key=is_key,
    )


ROOMS = Dataset(
    name=DatasetName("ROOMS"),
    attributes=(Attribute(name="room_number", type=AttrType.STRING, is_key=True),),
    links=(_link("beds", "BEDS", "room", Cardinality.ONE_TO_MANY),),
)
BEDS = Dataset(
    name=DatasetName("BEDS"),
    attributes=(
        Attribute(name="bed_number", type=AttrType.STRING, is_key=True),
        Attribute(name="status", type=AttrType.STRING, is_required=True),
        Attribute(name="note", type=AttrType.STRING),
    ),
    links=(
        _link("room", "ROOMS", "beds", Cardinality.MANY_TO_ONE, is_key=True),
        _link("monitor", "MONITORS", "bed", Cardinality.ONE_TO_ONE),  # BEDS holds the column
        _link("tags", "TAGS", "beds", Cardinality.MANY_TO_MANY),
        _link("alarms", "ALARMS", "bed", Cardinality.ONE_TO_MANY),
    ),
)
MONITORS = Dataset(
    name=DatasetName("MONITORS"),
    attributes=(Attribute(name="serial", type=AttrType.STRING),),
    links=(_link("bed", "BEDS", "monitor", Cardinality.ONE_TO_ONE),),  # the side without it
)
SITES = Dataset(
    name=DatasetName("SITES"), attributes=(Attribute(name="name", type=AttrType.STRING),)
)
LINKED = (BEDS, ROOMS, MONITORS)

value_st = st.sampled_from([None, "", "A", "B", 0, 1, 2, [], [1]])
row_st = st.dictionaries(st.sampled_from(["bed_number", "status", "note", "room"]), value_st)


def _raises(check: Callable[[], object]) -> RecordError | ConflictError | None:
    """The error ``check()`` raises, or None."""
    try:
        check()
    except (RecordError, ConflictError) as exc:
        return exc
    return None


# --- required values ------------------------------------------------------------------------


@given(row_st)
def test_require_refuses_exactly_rows_without_a_required_value(row: dict[str, object]) -> None:
    lacking = [f for f in ("bed_number", "status") if is_empty(row.get(f))]
    lacking += ["room"] if row.get("room") is None else []
    err = _raises(lambda: require(BEDS, row, 4))
    if not lacking:
        assert err is None
        return
    assert isinstance(err, RecordError)
    assert (err.field, err.record, err.code) == (lacking[0], 4, "required")


def test_require_messages() -> None:
    with pytest.raises(RecordError, match=r"^BEDS record 4, status: a value is required$"):
        require(BEDS, {"bed_number": "A", "room": 1}, 4)
    with pytest.raises(RecordError, match=r"^BEDS, room: a linked record is required \(part"):
        require(BEDS, {"bed_number": "A", "status": "free", "room": None}, None)


# --- keys -----------------------------------------------------------------------------------


def test_key_fields() -> None:
    assert key_fields(BEDS) == ["bed_number", "room"]
    assert key_fields(ROOMS) == ["room_number"]
    assert key_fields(SITES) == []
    assert matchable_key_fields(BEDS) == ["bed_number", "room"]


def test_a_dataset_without_a_key_cannot_be_matched() -> None:
    with pytest.raises(RecordError) as info:
        matchable_key_fields(SITES, "; use create")
    assert str(info.value) == "SITES: has no key, so records cannot be matched; use create"
    with pytest.raises(RecordError, match=r"^SITES: has no key, so records cannot be matched$"):
        matchable_key_fields(SITES)


@given(row_st)
def test_upsert_key_needs_every_key_field(row: dict[str, object]) -> None:
    missing = [f for f in ("bed_number", "room") if is_empty(row.get(f))]
    err = _raises(lambda: upsert_key(BEDS, row))
    if missing:
        assert isinstance(err, RecordError)
        assert str(err) == f"BEDS: upsert needs every key field; missing {', '.join(missing)}"
    else:
        assert err is None
        assert upsert_key(BEDS, row) == {"bed_number": row["bed_number"], "room": row["room"]}


@given(st.sets(st.sampled_from(["bed_number", "room", "status"])))
def test_a_key_to_find_by_names_exactly_the_key_fields(names: set[str]) -> None:
    err = _raises(lambda: require_key_names(BEDS, key_fields(BEDS), dict.fromkeys(names, 1)))
    if names == {"bed_number", "room"}:
        assert err is None
    else:
        assert isinstance(err, RecordError)
        assert str(err) == "BEDS: a key names exactly bed_number, room"


key_row_st = st.fixed_dictionaries(
    {"bed_number": st.sampled_from(["A", "B", "C"]), "room": st.sampled_from([1, 2, None])},
    optional={"status": st.sampled_from(["free", "taken"])},
)


@given(st.lists(key_row_st, max_size=6))
def test_new_keys_refuse_exactly_a_repeated_key(rows: list[dict[str, object]]) -> None:
    keys = [(r["bed_number"], r["room"]) for r in rows]
    err = _raises(lambda: new_keys(BEDS, rows))
    if len(set(keys)) < len(keys):
        first = next(k for i, k in enumerate(keys) if k in keys[:i])
        assert isinstance(err, ConflictError)
        assert err.code == "duplicate-key"
        assert str(err) == (
            f"BEDS: two new records have the key bed_number={first[0]!r}, room={first[1]!r}"
        )
        return
    assert err is None
    result = new_keys(BEDS, rows)
    # complete keys are looked up together; a key with a None is asked on its own
    assert result.complete == [{"bed_number": b, "room": r} for b, r in keys if r is not None]
    assert result.partial == [row for row in rows if row["room"] is None]


@given(
    st.none() | st.integers(1, 3).map(RecordId),
    st.none() | st.integers(1, 3),
)
def test_a_key_is_taken_only_by_another_record(
    found_id: RecordId | None, record_id: int | None
) -> None:
    key = {"bed_number": "A", "room": 3}
    found = None if found_id is None else Record(dataset=BEDS.name, id=found_id, values=key)
    err = _raises(lambda: refuse_taken_key(BEDS, key, found, record_id))
    if found_id is None or found_id == record_id:
        assert err is None
    else:
        assert isinstance(err, ConflictError)
        assert err.code == "duplicate-key"
        assert str(err) == f"BEDS: record {found_id} already has the key bed_number='A', room=3"


@given(st.lists(st.sets(st.sampled_from([f.name for f in BEDS.attributes + BEDS.links]))))
def test_bulk_updates_go_one_by_one_exactly_when_they_touch_a_key_or_a_set(
    changes: list[set[str]],
) -> None:
    slow = {"bed_number", "room", "tags", "alarms"}  # keys, and links without a column
    assert needs_one_by_one(BEDS, changes) is any(c & slow for c in changes)


# --- links by cardinality -------------------------------------------------------------------

link_value_st = st.sampled_from([None, 1, "2", {"room_number": "101"}, [], [1, 2], (3,)])


@given(st.sampled_from(LINKED), st.data())
def test_which_links_a_value_may_set(ds: Dataset, data: st.DataObject) -> None:
    """Column links take any value here; m:n links a list; reverses and unknown names nothing."""
    name = data.draw(st.sampled_from([*ds.field_names, "nope"]), label="name")
    value = data.draw(link_value_st, label="value")
    link = ds.link(name)
    err = _raises(lambda: link_for_value(ds, name, value, 7))
    if link is None:
        assert isinstance(err, RecordError)
        assert (err.code, err.field) == ("unknown-field", name)
        assert str(err) == f"{ds.name} record 7: unknown attribute or link {name!r}"
    elif holds_reference(ds.name, link):
        assert err is None
    elif link.cardinality is Cardinality.MANY_TO_MANY:
        if isinstance(value, list | tuple):
            assert err is None
        else:
            assert isinstance(err, RecordError)
            assert str(err) == f"{ds.name} record 7, {name}: an m:n link takes a list"
    else:
        assert isinstance(err, RecordError)
        assert str(err) == str(reverse_error(ds, link, 7))
    if err is None:
        assert link_for_value(ds, name, value, 7) is link


@given(st.sampled_from(LINKED), st.data())
def test_which_links_link_and_unlink_change(ds: Dataset, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from([*ds.field_names, "nope"]), label="name")
    count = data.draw(st.integers(0, 3), label="count")
    add = data.draw(st.booleans(), label="add")
    link = ds.link(name)
    err = _raises(lambda: relink_target(ds, name, count, add=add, record_id=7))
    if link is None:
        assert isinstance(err, RecordError)
        assert str(err) == f"{ds.name} record 7: unknown link {name!r}"
    elif holds_reference(ds.name, link):
        if add and count != 1:
            assert isinstance(err, RecordError)
            assert str(err) == f"{ds.name}, {name}: a to-one link takes exactly one target"
        else:
            assert err is None
    elif link.cardinality is Cardinality.MANY_TO_MANY:
        assert err is None
    else:
        assert isinstance(err, RecordError)
        assert "is the reverse of" in str(err)
    if err is None:
        assert relink_target(ds, name, count, add=add, record_id=7) is link


def test_reverse_error_points_to_the_other_side() -> None:
    alarms = BEDS.link("alarms")
    assert alarms is not None
    err = reverse_error(BEDS, alarms, 4)
    assert str(err) == (
        "BEDS record 4, alarms: alarms is the reverse of ALARMS.bed; set it from that side"
    )
    assert err.field == "alarms"


# --- link values and their targets ----------------------------------------------------------


@given(st.integers(-(2**64), 2**64))
def test_a_record_id_is_a_positive_64_bit_number(n: int) -> None:
    for ref in (n, str(n), f" {n} "):
        err = _raises(functools.partial(parse_ref, BEDS, ROOMS, ref, field="room", record_id=None))
        if 0 < n <= INT_MAX:
            assert err is None
            assert parse_ref(BEDS, ROOMS, ref, field="room", record_id=None) == n
        else:
            assert isinstance(err, RecordError)
            assert str(err) == f"BEDS, room: {ref!r} is not a record id of ROOMS"


@given(st.booleans() | st.none() | st.floats() | st.lists(st.integers(), max_size=2))
def test_other_values_are_neither_id_nor_key(ref: object) -> None:
    with pytest.raises(RecordError) as info:
        parse_ref(BEDS, ROOMS, ref, field="room", record_id=5)
    assert str(info.value) == f"BEDS record 5, room: {ref!r} is not a record id or key of ROOMS"


@given(st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3))
def test_a_mapping_is_a_key_to_resolve(ref: dict[str, object]) -> None:
    assert parse_ref(BEDS, ROOMS, ref, field="room", record_id=None) is ref


ids_st = st.lists(st.integers(1, 8).map(RecordId), max_size=8)
seen_st = st.sets(st.tuples(st.sampled_from(["ROOMS", "TAGS"]), st.integers(1, 8)))


@given(ids_st, seen_st)
def test_unseen_ids_are_asked_once_each_in_order(
    ids: list[RecordId], seen: set[tuple[str, int]]
) -> None:
    result = unseen("ROOMS", ids, seen)
    assert len(result) == len(set(result))
    assert set(result) == {i for i in ids if ("ROOMS", i) not in seen}
    assert result == sorted(result, key=ids.index)


ref_st = st.tuples(
    st.integers(1, 6).map(RecordId),
    st.sampled_from(["room", "tags"]),
    st.none() | st.integers(1, 3),
)


@given(st.lists(ref_st, max_size=6), st.sets(st.integers(1, 6).map(RecordId)))
def test_the_first_link_to_a_missing_record_is_refused(
    refs: list[TargetRef], missing: set[RecordId]
) -> None:
    err = _raises(lambda: refuse_dangling(BEDS, "ROOMS", refs, missing))
    bad = [ref for ref in refs if ref[0] in missing]
    if not bad:
        assert err is None
        return
    rid, field, record_id = bad[0]
    assert isinstance(err, RecordError)
    assert (err.code, err.field, err.record) == ("dangling-link", field, record_id)
    assert str(err) == str(dangling(BEDS, "ROOMS", rid, field=field, record_id=record_id))


def test_dangling_messages() -> None:
    assert str(dangling(BEDS, "ROOMS", RecordId(99), field="room", record_id=None)) == (
        "BEDS, room: ROOMS record 99 does not exist"
    )
    err = no_record_with_key(BEDS, "ROOMS", {"room_number": "101"}, field="room", record_id=4)
    assert str(err) == "BEDS record 4, room: no ROOMS record with room_number='101'"
    assert err.code == "dangling-link"


@given(st.lists(st.tuples(st.sampled_from(["BEDS.room", "UNITS.room"]), st.integers(1, 9))))
def test_a_record_linked_from_others_is_not_deleted(refs: list[tuple[str, int]]) -> None:
    err = _raises(lambda: refuse_referenced(ROOMS, 3, refs))
    if not refs:
        assert err is None
        return
    assert isinstance(err, ConflictError)
    listing = ", ".join(f"{name} ({n})" for name, n in refs)
    assert str(err) == (
        f"ROOMS record 3 is still linked from {listing}; delete or re-link those records first"
    )


@given(st.lists(st.tuples(st.sampled_from([ROOMS, MONITORS]), ids_st, st.sampled_from("ab"))))
def test_pending_targets_keep_every_reference_by_target(
    adds: list[tuple[Dataset, list[RecordId], str]],
) -> None:
    pending = PendingTargets()
    for target, ids, field in adds:
        pending.add(target, ids, field, 1)
    expected: dict[str, list[TargetRef]] = {}
    for target, ids, field in adds:
        expected.setdefault(target.name, []).extend((i, field, 1) for i in ids)
    assert {name: refs for name, (_, refs) in pending.by_target.items()} == expected
    assert all(ds.name == name for name, (ds, _) in pending.by_target.items())
