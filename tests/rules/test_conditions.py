"""The trigger conditions of a rule (carewire.rules.conditions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewire.errors import ValidationError
from carewire.rules.conditions import (
    CHANGE_OPS,
    MAX_DEPTH,
    VALUELESS_OPS,
    Condition,
    ConditionError,
    Group,
    Mode,
    Node,
    Op,
    change_paths_of,
    evaluate,
    from_data,
    map_values,
    paths_of,
    to_data,
)

_MISSING = object()  # marks "path absent from the mapping" in the tables below


def check(op: Op, value: object, current: object) -> bool:
    """``op value`` on a record (update, nothing changed) whose ``f`` is ``current``."""
    new = {} if current is _MISSING else {"f": current}
    return evaluate(Condition(path="f", op=op, value=value), new, dict(new))


# --- Value operators ----------------------------------------------------------

# (op, operand, current value, expected)
VALUE_CASES: list[tuple[Op, object, object, bool]] = [
    # equals: plain equality, case-sensitive text; on a list, any element.
    (Op.EQUALS, "Open", "Open", True),
    (Op.EQUALS, "Open", "open", False),
    (Op.EQUALS, 3, 3, True),
    (Op.EQUALS, 3, 3.0, True),
    (Op.EQUALS, 3, "3", False),
    (Op.EQUALS, "Open", None, False),
    (Op.EQUALS, "Open", _MISSING, False),
    (Op.EQUALS, None, _MISSING, True),
    (Op.EQUALS, "ICU", ["ED", "ICU"], True),
    (Op.EQUALS, "ICU", ["ED", "icu"], False),
    (Op.EQUALS, "ICU", [], False),
    # not_equals: on a list, no element equals.
    (Op.NOT_EQUALS, "Open", "Closed", True),
    (Op.NOT_EQUALS, "Open", "Open", False),
    (Op.NOT_EQUALS, "Open", "OPEN", True),
    (Op.NOT_EQUALS, "Open", None, True),
    (Op.NOT_EQUALS, "Open", _MISSING, True),
    (Op.NOT_EQUALS, "ICU", ["ED", "ICU"], False),
    (Op.NOT_EQUALS, "ICU", ["ED", "Ward 3"], True),
    (Op.NOT_EQUALS, "ICU", [], True),
    # in: the operand is the candidates.
    (Op.IN, ("Open", "Pending"), "Open", True),
    (Op.IN, ["Open", "Pending"], "Pending", True),
    (Op.IN, ("Open", "Pending"), "Closed", False),
    (Op.IN, ("Open", "Pending"), None, False),
    (Op.IN, ("Open", None), None, True),
    (Op.IN, ("Open", "Pending"), _MISSING, False),
    (Op.IN, (), "Open", False),
    (Op.IN, ("ICU", "ED"), ["Ward 3", "ED"], True),
    (Op.IN, ("ICU", "ED"), ["Ward 3"], False),
    (Op.IN, ("ICU", "ED"), [], False),
    (Op.IN, "Open", "Open", False),  # built by hand with a non-list operand: never holds
    # contains: substring for text, membership for lists.
    (Op.CONTAINS, "fall", "risk of fall", True),
    (Op.CONTAINS, "Fall", "risk of fall", False),
    (Op.CONTAINS, 3, "room 301", True),
    (Op.CONTAINS, "x", None, False),
    (Op.CONTAINS, "x", _MISSING, False),
    (Op.CONTAINS, 3, 3, True),
    (Op.CONTAINS, 3, 4, False),
    (Op.CONTAINS, "ICU", ["ED", "ICU"], True),
    (Op.CONTAINS, "Smith", ["Ann Smith", "Bob Jones"], True),
    (Op.CONTAINS, 7, [1, 7, 9], True),
    (Op.CONTAINS, 8, [1, 7, 9], False),
    (Op.CONTAINS, "x", [], False),
    # ordered comparisons: None and incomparable types never hold.
    (Op.GREATER, 3, 4, True),
    (Op.GREATER, 3, 3, False),
    (Op.GREATER, 3, 2.5, False),
    (Op.GREATER, "b", "c", True),
    (Op.GREATER, 3, "4", False),
    (Op.GREATER, 3, None, False),
    (Op.GREATER, 3, _MISSING, False),
    (Op.GREATER, None, 4, False),
    (Op.GREATER, 3, [1, 5], True),
    (Op.GREATER, 3, [1, 2], False),
    (Op.GREATER, 3, ["x", 5], True),
    (Op.GREATER, 3, [], False),
    (Op.GREATER, date(2026, 1, 1), date(2026, 1, 2), True),
    (Op.GREATER, date(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), False),
    (Op.GREATER_OR_EQUAL, 3, 3, True),
    (Op.GREATER_OR_EQUAL, 3, 2, False),
    (Op.GREATER_OR_EQUAL, 3, "3", False),
    (Op.GREATER_OR_EQUAL, 3, None, False),
    (Op.GREATER_OR_EQUAL, 3, [2, 3], True),
    (Op.LESS, 3, 2, True),
    (Op.LESS, 3, 3, False),
    (Op.LESS, 3, "2", False),
    (Op.LESS, 3, None, False),
    (Op.LESS, 3, [5, 2], True),
    (Op.LESS, 3, [5, 4], False),
    (Op.LESS_OR_EQUAL, 3, 3, True),
    (Op.LESS_OR_EQUAL, 3, 4, False),
    (Op.LESS_OR_EQUAL, 3, [], False),
    (Op.LESS_OR_EQUAL, 3, _MISSING, False),
    (Op.LESS_OR_EQUAL, 3, [4, 3], True),
    # empty / not_empty: None, "" and [] are empty; so is a list of empties.
    (Op.EMPTY, None, None, True),
    (Op.EMPTY, None, _MISSING, True),
    (Op.EMPTY, None, "", True),
    (Op.EMPTY, None, [], True),
    (Op.EMPTY, None, [None, ""], True),
    (Op.EMPTY, None, [None, "x"], False),
    (Op.EMPTY, None, "x", False),
    (Op.EMPTY, None, 0, False),
    (Op.EMPTY, None, False, False),
    (Op.EMPTY, None, " ", False),
    (Op.NOT_EMPTY, None, None, False),
    (Op.NOT_EMPTY, None, _MISSING, False),
    (Op.NOT_EMPTY, None, "", False),
    (Op.NOT_EMPTY, None, [], False),
    (Op.NOT_EMPTY, None, [None], False),
    (Op.NOT_EMPTY, None, ["", "x"], True),
    (Op.NOT_EMPTY, None, 0, True),
    (Op.NOT_EMPTY, None, "x", True),
]


@pytest.mark.parametrize(("op", "value", "current", "expected"), VALUE_CASES)
def test_value_operators(op: Op, value: object, current: object, expected: bool) -> None:
    assert check(op, value, current) is expected


@pytest.mark.parametrize(("op", "value", "current", "expected"), VALUE_CASES)
def test_value_operators_ignore_old_values(
    op: Op, value: object, current: object, expected: bool
) -> None:
    # Creates and updates alike: only change operators look at `old`.
    cond = Condition(path="f", op=op, value=value)
    new = {} if current is _MISSING else {"f": current}
    assert evaluate(cond, new, None) is expected
    assert evaluate(cond, new, {"f": "something else"}) is expected


def test_every_operator_is_covered_by_the_tables() -> None:
    tested = {case[0] for case in VALUE_CASES} | {case[0] for case in CHANGE_CASES}
    assert tested == set(Op)


def test_operator_sets() -> None:
    assert {Op.EMPTY, Op.NOT_EMPTY, Op.CHANGED} == VALUELESS_OPS
    assert {Op.CHANGED, Op.CHANGED_FROM, Op.CHANGED_TO} == CHANGE_OPS
    assert Op("greater_or_equal") is Op.GREATER_OR_EQUAL
    assert Mode("any") is Mode.ANY


# --- Change operators ---------------------------------------------------------

NEW: dict[str, object] | None = None  # `old` for a record the write created

# (op, operand, old mapping (None: created), current value, expected)
CHANGE_CASES: list[tuple[Op, object, dict[str, object] | None, object, bool]] = [
    # changed, on create: the new value is not empty.
    (Op.CHANGED, None, NEW, "Open", True),
    (Op.CHANGED, None, NEW, 0, True),
    (Op.CHANGED, None, NEW, ["ICU"], True),
    (Op.CHANGED, None, NEW, None, False),
    (Op.CHANGED, None, NEW, "", False),
    (Op.CHANGED, None, NEW, [], False),
    (Op.CHANGED, None, NEW, [None], False),
    (Op.CHANGED, None, NEW, _MISSING, False),
    # changed, on update: old and new differ.
    (Op.CHANGED, None, {"f": "Open"}, "Closed", True),
    (Op.CHANGED, None, {"f": "Open"}, "Open", False),
    (Op.CHANGED, None, {"f": "Open"}, "open", True),
    (Op.CHANGED, None, {"f": None}, "Open", True),
    (Op.CHANGED, None, {"f": "Open"}, None, True),
    (Op.CHANGED, None, {"f": "Open"}, _MISSING, True),
    (Op.CHANGED, None, {"f": None}, _MISSING, False),
    (Op.CHANGED, None, {"f": ["ED"]}, ["ED", "ICU"], True),
    (Op.CHANGED, None, {"f": ["ED"]}, ["ED"], False),
    (Op.CHANGED, None, {}, "Open", False),  # not in old: unchanged
    (Op.CHANGED, None, {"g": 1}, "Open", False),
    # changed_from: never on create; old was v and new is not.
    (Op.CHANGED_FROM, "Open", NEW, "Closed", False),
    (Op.CHANGED_FROM, "Open", NEW, "Open", False),
    (Op.CHANGED_FROM, "Open", {"f": "Open"}, "Closed", True),
    (Op.CHANGED_FROM, "Open", {"f": "Open"}, None, True),
    (Op.CHANGED_FROM, "Open", {"f": "Open"}, _MISSING, True),
    (Op.CHANGED_FROM, "Open", {"f": "Open"}, "Open", False),
    (Op.CHANGED_FROM, "Open", {"f": "Pending"}, "Closed", False),
    (Op.CHANGED_FROM, "Open", {"f": "open"}, "Closed", False),
    (Op.CHANGED_FROM, "Open", {}, "Closed", False),  # not in old: not equal to v
    (Op.CHANGED_FROM, None, {"f": None}, "Open", True),
    (Op.CHANGED_FROM, 3, {"f": 3}, 4, True),
    # changed_to: new is v, and old was not (or the record is new).
    (Op.CHANGED_TO, "Open", NEW, "Open", True),
    (Op.CHANGED_TO, "Open", NEW, "Closed", False),
    (Op.CHANGED_TO, "Open", NEW, _MISSING, False),
    (Op.CHANGED_TO, "Open", {"f": "Pending"}, "Open", True),
    (Op.CHANGED_TO, "Open", {"f": None}, "Open", True),
    (Op.CHANGED_TO, "Open", {"f": "Open"}, "Open", False),
    (Op.CHANGED_TO, "Open", {"f": "Pending"}, "Closed", False),
    (Op.CHANGED_TO, "Open", {"f": "Pending"}, "OPEN", False),
    (Op.CHANGED_TO, "Open", {}, "Open", False),  # not in old: unchanged
    (Op.CHANGED_TO, None, {"f": "Open"}, _MISSING, True),
    (Op.CHANGED_TO, ["ICU"], {"f": ["ED"]}, ["ICU"], True),
]


@pytest.mark.parametrize(("op", "value", "old", "current", "expected"), CHANGE_CASES)
def test_change_operators(
    op: Op, value: object, old: dict[str, object] | None, current: object, expected: bool
) -> None:
    new = {} if current is _MISSING else {"f": current}
    assert evaluate(Condition(path="f", op=op, value=value), new, old) is expected


# --- Groups -------------------------------------------------------------------

TRUE = Condition(path="status", op=Op.EQUALS, value="Open")
FALSE = Condition(path="status", op=Op.EQUALS, value="Closed")
RECORD = {"status": "Open"}


@pytest.mark.parametrize(
    ("mode", "items", "expected"),
    [
        (Mode.ALL, (), True),
        (Mode.ANY, (), False),
        (Mode.ALL, (TRUE,), True),
        (Mode.ALL, (FALSE,), False),
        (Mode.ALL, (TRUE, TRUE), True),
        (Mode.ALL, (TRUE, FALSE), False),
        (Mode.ANY, (TRUE,), True),
        (Mode.ANY, (FALSE,), False),
        (Mode.ANY, (FALSE, TRUE), True),
        (Mode.ANY, (FALSE, FALSE), False),
    ],
)
def test_group_logic(mode: Mode, items: tuple[Node, ...], expected: bool) -> None:
    assert evaluate(Group(mode=mode, items=items), RECORD, None) is expected


def test_nested_groups() -> None:
    tree = Group(
        mode=Mode.ALL,
        items=(
            Condition(path="status", op=Op.CHANGED_TO, value="Open"),
            Group(
                mode=Mode.ANY,
                items=(
                    Condition(path="priority", op=Op.GREATER_OR_EQUAL, value=3),
                    Condition(path="unit.name", op=Op.IN, value=("ICU", "ED")),
                ),
            ),
        ),
    )
    created = {"status": "Open", "priority": 1, "unit.name": ["Ward 3", "ED"]}
    assert evaluate(tree, created, None)
    assert not evaluate(tree, created, {"status": "Open"})
    assert evaluate(tree, created, {"status": "Pending"})
    assert not evaluate(tree, {**created, "unit.name": ["Ward 3"]}, None)
    assert evaluate(tree, {**created, "unit.name": [], "priority": 5}, None)
    assert not evaluate(tree, {"priority": 5}, None)


def test_nested_empty_groups() -> None:
    never = Group(mode=Mode.ANY)
    always = Group(mode=Mode.ALL)
    assert evaluate(Group(mode=Mode.ALL, items=(always, always)), {}, None)
    assert not evaluate(Group(mode=Mode.ALL, items=(always, never)), {}, None)
    assert evaluate(Group(mode=Mode.ANY, items=(never, always)), {}, None)
    assert not evaluate(Group(mode=Mode.ANY, items=(never, never)), {}, None)


def test_lists_are_normalised_to_tuples() -> None:
    cond = Condition(path="f", op=Op.IN, value=["a", "b"])
    assert cond.value == ("a", "b")
    assert cond == Condition(path="f", op=Op.IN, value=("a", "b"))
    assert Condition(path="f", op=Op.EQUALS, value=["a"]).value == ["a"]  # only for `in`
    group = Group(mode=Mode.ALL, items=[TRUE, FALSE])  # type: ignore[arg-type]
    assert group.items == (TRUE, FALSE)
    hash(Group(mode=Mode.ALL, items=(cond,)))  # trees of tuples are hashable


# --- Paths and values -----------------------------------------------------------

INNER = Group(
    mode=Mode.ALL,
    items=(
        Condition(path="priority", op=Op.GREATER, value="3"),
        Condition(path="note", op=Op.CHANGED),
        Condition(path="unit.name", op=Op.IN, value=("ICU",)),
        Condition(path="bed", op=Op.EMPTY),
        Condition(path="room", op=Op.CHANGED_TO, value="12"),
    ),
)
TREE = Group(
    mode=Mode.ANY,
    items=(
        Condition(path="status", op=Op.CHANGED_FROM, value="Open"),
        Condition(path="status", op=Op.EQUALS, value="Closed"),
        INNER,
    ),
)


def test_paths_of() -> None:
    assert paths_of(TREE) == {"status", "priority", "note", "unit.name", "bed", "room"}
    assert paths_of(TRUE) == {"status"}
    assert paths_of(Group(mode=Mode.ALL)) == frozenset()


def test_change_paths_of() -> None:
    assert change_paths_of(TREE) == {"status", "note", "room"}
    assert change_paths_of(TRUE) == frozenset()


def test_map_values() -> None:
    seen: list[Condition] = []

    def coerce(cond: Condition) -> object:
        seen.append(cond)
        if cond.op == Op.IN:
            assert isinstance(cond.value, tuple)
            return [str(v).lower() for v in cond.value]
        return int(str(cond.value)) if cond.path in {"priority", "room"} else cond.value

    mapped = map_values(TREE, coerce)
    assert isinstance(mapped, Group)
    mapped_inner = mapped.items[2]
    assert isinstance(mapped_inner, Group)
    inner = mapped_inner.items
    assert inner[0] == Condition(path="priority", op=Op.GREATER, value=3)
    assert inner[1] is INNER.items[1]  # valueless: kept as it is
    assert inner[3] is INNER.items[3]
    assert inner[2] == Condition(path="unit.name", op=Op.IN, value=("icu",))
    assert inner[4] == Condition(path="room", op=Op.CHANGED_TO, value=12)
    assert mapped.items[:2] == TREE.items[:2]
    assert [c.path for c in seen] == ["status", "status", "priority", "unit.name", "room"]
    assert map_values(TRUE, lambda c: "Shut") == Condition(
        path="status", op=Op.EQUALS, value="Shut"
    )


# --- Serialisation --------------------------------------------------------------


def test_to_data() -> None:
    assert to_data(TRUE) == {"path": "status", "op": "equals", "value": "Open"}
    assert to_data(Condition(path="bed", op=Op.EMPTY)) == {"path": "bed", "op": "empty"}
    assert to_data(Condition(path="f", op=Op.IN, value=("a", "b"))) == {
        "path": "f",
        "op": "in",
        "value": ["a", "b"],
    }
    assert to_data(Condition(path="due", op=Op.LESS, value=date(2026, 1, 31))) == {
        "path": "due",
        "op": "less",
        "value": "2026-01-31",
    }
    assert to_data(Group(mode=Mode.ANY, items=(TRUE, Group(mode=Mode.ALL)))) == {
        "any": [{"path": "status", "op": "equals", "value": "Open"}, {"all": []}]
    }


def test_from_data() -> None:
    assert from_data({"path": "status", "op": "equals", "value": "Open"}) == TRUE
    assert from_data(None) == Group(mode=Mode.ALL)
    assert from_data([]) == Group(mode=Mode.ALL)
    assert from_data([to_data(TRUE), {"any": []}]) == Group(
        mode=Mode.ALL, items=(TRUE, Group(mode=Mode.ANY))
    )
    assert from_data({"path": "f", "op": "in", "value": ["a"]}) == Condition(
        path="f", op=Op.IN, value=("a",)
    )
    assert from_data({"path": "f", "op": "in", "value": ("a",)}) == Condition(
        path="f", op=Op.IN, value=("a",)
    )
    assert from_data({"path": "f", "op": "equals", "value": None}) == Condition(
        path="f", op=Op.EQUALS, value=None
    )
    # A valueless operator may carry an explicit null (YAML `value:`).
    assert from_data({"path": "f", "op": "empty", "value": None}) == Condition(
        path="f", op=Op.EMPTY
    )
    assert from_data(to_data(TREE)) == TREE


def test_from_data_accepts_max_depth() -> None:
    data: object = {"path": "f", "op": "empty"}
    for _ in range(MAX_DEPTH):
        data = {"all": [data]}
    node = from_data(data)
    for _ in range(MAX_DEPTH):
        assert isinstance(node, Group)
        node = node.items[0]
    assert node == Condition(path="f", op=Op.EMPTY)


def _nested(depth: int, *, bare: bool = False) -> object:
    """``depth`` groups nested in one another, the outer one a bare list if ``bare``."""
    data: object = {"path": "f", "op": "empty"}
    for _ in range(depth - 1):
        data = {"any": [data]}
    return [data] if bare else {"all": [data]}


OPS = "equals, not_equals, in, contains, greater, greater_or_equal, less, less_or_equal, empty, not_empty, changed, changed_from, changed_to"  # noqa: E501

# (data, message)
ERROR_CASES: list[tuple[object, str]] = [
    # Not a condition at all.
    ("status = Open", "conditions: expected a condition or a group, got str"),
    (3, "conditions: expected a condition or a group, got int"),
    ([None], "conditions[0]: expected a condition or a group, got null"),
    ({"all": [["x"]]}, "conditions.all[0]: expected a condition or a group, got list"),
    ({}, "conditions: expected a group ('all' or 'any') or a condition ('path' and 'op')"),
    (
        {"all": [{"value": 3}]},
        "conditions.all[0]: expected a group ('all' or 'any') or a condition ('path' and 'op')",
    ),
    # Groups.
    ({"all": [], "any": []}, "conditions: a group has either 'all' or 'any', not both"),
    (
        [{"any": [{"all": [], "any": [TRUE]}]}],
        "conditions[0].any[0]: a group has either 'all' or 'any', not both",
    ),
    ({"all": "status"}, "conditions.all: expected a list of conditions, got str"),
    ({"any": None}, "conditions.any: expected a list of conditions, got null"),
    (
        {"any": {"path": "f", "op": "empty"}},
        "conditions.any: expected a list of conditions, got dict",
    ),
    ({"all": [], "mode": "x"}, "conditions: unknown key 'mode'; use: all"),
    ({"any": [], "path": "f", "op": "empty"}, "conditions: unknown keys 'op', 'path'; use: any"),
    (
        _nested(MAX_DEPTH + 1),
        f"conditions{'.all[0]' + '.any[0]' * 9}: groups are nested more than 10 deep",
    ),
    (
        _nested(MAX_DEPTH + 1, bare=True),
        f"conditions{'[0]' + '.any[0]' * 9}: groups are nested more than 10 deep",
    ),
    # Conditions: keys and path.
    (
        {"path": "f", "op": "equals", "valeu": 3},
        "conditions: unknown key 'valeu'; use: op, path, value",
    ),
    ({"path": "f", "op": "empty", 1: 2}, "conditions: unknown key 1; use: op, path, value"),
    ({"op": "equals", "value": 3}, "conditions: missing path"),
    ({"path": None, "op": "empty"}, "conditions: missing path"),
    ({"path": 3, "op": "empty"}, "conditions: path must be text, got int"),
    ({"path": ["a"], "op": "empty"}, "conditions: path must be text, got list"),
    ({"path": " ", "op": "empty"}, "conditions: path is empty"),
    # Operators.
    ({"path": "f"}, f"conditions: missing op; use one of: {OPS}"),
    (
        [TRUE, TRUE, {"path": "f", "op": "equal", "value": 1}],
        f"conditions[2]: unknown operator 'equal'; use one of: {OPS}",
    ),
    (
        {"all": [{}, {}, {"path": "f", "op": "equal", "value": 1}]},
        "conditions.all[0]: expected a group ('all' or 'any') or a condition ('path' and 'op')",
    ),
    (
        {"all": [to_data(TRUE), to_data(TRUE), {"path": "f", "op": "equal", "value": 1}]},
        f"conditions.all[2]: unknown operator 'equal'; use one of: {OPS}",
    ),
    (
        {"path": "f", "op": "EQUALS", "value": 1},
        f"conditions: unknown operator 'EQUALS'; use one of: {OPS}",
    ),
    ({"path": "f", "op": 3, "value": 1}, f"conditions: unknown operator 3; use one of: {OPS}"),
    (
        {"path": "f", "op": ["in"], "value": 1},
        f"conditions: unknown operator ['in']; use one of: {OPS}",
    ),
    # Values.
    ({"path": "f", "op": "equals"}, "conditions: operator 'equals' needs a value"),
    ({"path": "f", "op": "changed_to"}, "conditions: operator 'changed_to' needs a value"),
    ({"path": "f", "op": "in"}, "conditions: operator 'in' needs a value"),
    (
        {"path": "f", "op": "in", "value": "a"},
        "conditions: operator 'in' needs a list of values, got str",
    ),
    (
        {"path": "f", "op": "in", "value": None},
        "conditions: operator 'in' needs a list of values, got null",
    ),
    ({"path": "f", "op": "empty", "value": ""}, "conditions: operator 'empty' takes no value"),
    ({"path": "f", "op": "changed", "value": 1}, "conditions: operator 'changed' takes no value"),
]


@pytest.mark.parametrize(("data", "message"), ERROR_CASES)
def test_from_data_errors(data: object, message: str) -> None:
    data = _plain(data)
    with pytest.raises(ConditionError) as info:
        from_data(data)
    assert str(info.value) == message
    assert info.value.message == message
    assert info.value.code == "invalid-condition"
    assert isinstance(info.value, ValidationError)


def test_from_data_error_location_is_the_callers() -> None:
    with pytest.raises(ConditionError) as info:
        from_data({"any": [{"path": "f"}]}, where="rules.escalate.conditions")
    assert info.value.where == "rules.escalate.conditions.any[0]"
    assert str(info.value).startswith("rules.escalate.conditions.any[0]: missing op;")


def _plain(data: object) -> object:
    """``data`` with any Condition inside replaced by its data form."""
    if isinstance(data, Condition):
        return to_data(data)
    if isinstance(data, list):
        return [_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data


# --- Properties -------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
paths = st.sampled_from(["status", "priority", "unit.name", "f"]) | st.text(min_size=1).filter(
    str.strip
)


@st.composite
def conditions(draw: st.DrawFn, values: st.SearchStrategy[object] = json_values) -> Condition:
    op = draw(st.sampled_from(Op))
    if op in VALUELESS_OPS:
        value: object = None
    elif op == Op.IN:
        value = tuple(draw(st.lists(values, max_size=4)))
    else:
        value = draw(values)
    return Condition(path=draw(paths), op=op, value=value)


def trees(leaves: st.SearchStrategy[Condition]) -> st.SearchStrategy[Node]:
    def groups(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        items = st.lists(children, max_size=4).map(tuple)
        return st.builds(Group, mode=st.sampled_from(Mode), items=items)

    return st.recursive(leaves, groups, max_leaves=20)


def depth(node: Node) -> int:
    if isinstance(node, Condition):
        return 0
    return 1 + max((depth(item) for item in node.items), default=0)


@given(trees(conditions()))
@settings(max_examples=300)
def test_round_trip(tree: Node) -> None:
    if depth(tree) > MAX_DEPTH:
        with pytest.raises(ConditionError, match="nested more than 10 deep"):
            from_data(to_data(tree))
    else:
        assert from_data(to_data(tree)) == tree


@given(st.lists(trees(conditions()), max_size=4))
def test_a_bare_list_is_an_all_group(items: list[Node]) -> None:
    if all(depth(item) < MAX_DEPTH for item in items):
        data = [to_data(item) for item in items]
        assert from_data(data) == Group(mode=Mode.ALL, items=tuple(items))


odd_values = (
    json_values
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=st.just(UTC))
    | st.lists(scalars | st.dates() | st.datetimes(), max_size=4)
    | st.tuples(scalars, scalars)
)
records = st.dictionaries(paths, odd_values, max_size=5)


@given(
    trees(
        conditions(odd_values)
        | st.builds(Condition, path=paths, op=st.sampled_from(Op), value=odd_values)
    ),
    records,
    st.none() | records,
)
@settings(max_examples=500)
def test_evaluate_never_raises(
    tree: Node, new: dict[str, object], old: dict[str, object] | None
) -> None:
    assert isinstance(evaluate(tree, new, old), bool)


@given(trees(conditions()), records, st.none() | records)
def test_group_logic_matches_its_items(
    tree: Node, new: dict[str, object], old: dict[str, object] | None
) -> None:
    if isinstance(tree, Group):
        results = [evaluate(item, new, old) for item in tree.items]
        expected = all(results) if tree.mode == Mode.ALL else any(results)
        assert evaluate(tree, new, old) is expected


@given(json_values, json_values)
def test_negations(value: object, current: object) -> None:
    assert check(Op.EQUALS, value, current) is not check(Op.NOT_EQUALS, value, current)
    assert check(Op.EMPTY, None, current) is not check(Op.NOT_EMPTY, None, current)
