"""Queries typed against their dataset: filter values coerced, fields checked (no event loop)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.datasets.model import (
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
)
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.typed_query import typed_filter, typed_query
from carewire.datasets.values import INT_MAX, RecordError

BEDS = Dataset(
    name=DatasetName("BEDS"),
    attributes=(
        Attribute(name="bed_number", type=AttrType.STRING, is_key=True),
        Attribute(name="level", type=AttrType.INTEGER),
        Attribute(name="opened", type=AttrType.DATE),
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
            name="tags",
            target=DatasetName("TAGS"),
            reverse="beds",
            cardinality=Cardinality.MANY_TO_MANY,
        ),
    ),
)
VALUE_OPS = [op for op in FilterOp if op not in (FilterOp.EMPTY, FilterOp.NOT_EMPTY)]


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from(VALUE_OPS))
def test_attribute_values_take_the_attribute_s_type(n: int, op: FilterOp) -> None:
    value: object = [str(n), n] if op is FilterOp.IN else str(n)
    typed = typed_filter(BEDS, Filter(field="level", op=op, value=value))
    expected = str(n) if op is FilterOp.CONTAINS else [n, n] if op is FilterOp.IN else n
    assert typed == Filter(field="level", op=op, value=expected)


def test_a_single_in_value_becomes_a_list_and_dates_are_read() -> None:
    typed = typed_filter(BEDS, Filter(field="opened", op=FilterOp.IN, value="2026-01-31"))
    assert typed.value == [date(2026, 1, 31)]


@given(st.integers(-(2**64), 2**64), st.sampled_from([FilterOp.EQ, FilterOp.IN]))
def test_to_one_links_compare_record_ids(n: int, op: FilterOp) -> None:
    value: object = [str(n)] if op is FilterOp.IN else str(n)
    f = Filter(field="room", op=op, value=value)
    if 0 < n <= INT_MAX:
        assert typed_filter(BEDS, f).value == ([n] if op is FilterOp.IN else n)
    else:
        with pytest.raises(RecordError) as info:
            typed_filter(BEDS, f)
        assert (info.value.code, info.value.field) == ("wrong-type", "room")


@pytest.mark.parametrize("field", ["level", "room"])
@pytest.mark.parametrize("op", [FilterOp.EMPTY, FilterOp.NOT_EMPTY])
def test_emptiness_filters_are_kept_as_they_are(field: str, op: FilterOp) -> None:
    f = Filter(field=field, op=op, value="ignored")
    assert typed_filter(BEDS, f) is f


@pytest.mark.parametrize("field", ["tags", "nope"])
def test_only_attributes_and_to_one_links_are_filtered(field: str) -> None:
    with pytest.raises(RecordError) as info:
        typed_filter(BEDS, Filter(field=field, op=FilterOp.EQ, value="1"))
    assert info.value.code == "unknown-field"
    assert "not an attribute or to-one link" in str(info.value)


def test_the_record_id_is_filtered_as_a_record_id() -> None:
    assert typed_filter(BEDS, Filter(field="id", op=FilterOp.GT, value="12")).value == 12
    listed = typed_filter(BEDS, Filter(field="id", op=FilterOp.IN, value=["3", 4]))
    assert listed.value == [3, 4]
    with pytest.raises(RecordError) as info:
        typed_filter(BEDS, Filter(field="id", op=FilterOp.EQ, value="abc"))
    assert (info.value.code, info.value.field) == ("wrong-type", "id")
    with pytest.raises(RecordError, match="cannot filter the record id"):
        typed_filter(BEDS, Filter(field="id", op=FilterOp.EMPTY))


def test_a_wrong_value_names_the_field() -> None:
    with pytest.raises(RecordError) as info:
        typed_filter(BEDS, Filter(field="level", op=FilterOp.GT, value="high"))
    assert (info.value.code, info.value.field) == ("wrong-type", "level")


@given(
    st.lists(st.sampled_from(["id", "bed_number", "level", "room", "tags", "nope"]), max_size=3),
    st.integers(0, 50),
    st.integers(1, 50),
)
def test_sort_keys_are_id_attributes_and_to_one_links(
    fields: list[str], offset: int, limit: int
) -> None:
    sort = tuple(Sort(field=f, is_descending=i % 2 == 1) for i, f in enumerate(fields))
    query = Query(
        filters=(Filter(field="level", op=FilterOp.EQ, value="3"),),
        sort=sort,
        offset=offset,
        limit=limit,
    )
    bad = [f for f in fields if f in ("tags", "nope")]
    if not bad:
        typed = typed_query(BEDS, query)
        assert typed == Query(
            filters=(Filter(field="level", op=FilterOp.EQ, value=3),),
            sort=sort,
            offset=offset,
            limit=limit,
        )
        return
    with pytest.raises(RecordError) as info:
        typed_query(BEDS, query)
    if bad[0] == "nope":
        assert (info.value.code, str(info.value)) == (
            "unknown-field",
            "BEDS: cannot sort by unknown field 'nope'",
        )
    else:
        assert str(info.value) == "BEDS: cannot sort by the to-many link 'tags'"
