"""The trigger conditions of a rule: a tree of comparisons on a record's values.

A rule fires when its conditions hold for a write. Conditions are plain data:
a :class:`Condition` compares the value at one path with an operand, and a
:class:`Group` combines conditions with ``all`` or ``any``. Rule files and the
REST API carry them in the form :func:`to_data` writes and :func:`from_data`
reads::

    all:
      - {path: status, op: changed_to, value: Open}
      - any:
          - {path: priority, op: greater_or_equal, value: 3}
          - {path: unit.name, op: in, value: [ICU, ED]}

This module is pure: it never awaits, logs or reads the clock. The caller
resolves each path of :func:`paths_of` to a value before and after the write
and passes both mappings to :func:`evaluate`.
"""

# Theory of operation
# -------------------
# A path that crosses a to-many link resolves to a list, so every value test
# is written for one element and lifted to lists by "any element passes"
# (NOT_EQUALS is the negation of that, "no element equals"). Tests never
# raise: incomparable operands and None simply fail an ordered comparison,
# because a rule that crashes on one odd record would stop for all records.
# Change operators look at the value before the write; a path the caller left
# out of `old` is taken as unchanged, so a change operator on it never fires.

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeAlias

from carewire.datasets.values import is_empty, to_json
from carewire.errors import ValidationError

#: How many groups deep a condition tree may nest.
MAX_DEPTH = 10


class Op(StrEnum):
    """A comparison a condition makes."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    CONTAINS = "contains"
    GREATER = "greater"
    GREATER_OR_EQUAL = "greater_or_equal"
    LESS = "less"
    LESS_OR_EQUAL = "less_or_equal"
    EMPTY = "empty"
    NOT_EMPTY = "not_empty"
    CHANGED = "changed"
    CHANGED_FROM = "changed_from"
    CHANGED_TO = "changed_to"


#: Operators that take no operand.
VALUELESS_OPS = frozenset({Op.EMPTY, Op.NOT_EMPTY, Op.CHANGED})

#: Operators that compare the value before a write with the value after it.
CHANGE_OPS = frozenset({Op.CHANGED, Op.CHANGED_FROM, Op.CHANGED_TO})


class Mode(StrEnum):
    """How a group combines its items."""

    ALL = "all"
    ANY = "any"


class ConditionError(ValidationError):
    """Condition data is malformed; the message says where and why.

    Attributes:
        where: The location of the bad part, e.g. ``conditions.all[2]``.
    """

    code = "invalid-condition"

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """One comparison of the value at a path.

    Attributes:
        path: The path text, e.g. ``status`` or ``unit.name``.
        op: The comparison.
        value: The operand: a tuple of candidates for ``in`` (a list is
            turned into a tuple), None for the operators in
            :data:`VALUELESS_OPS`.
    """

    path: str
    op: Op
    value: object = None

    def __post_init__(self) -> None:
        if self.op == Op.IN and isinstance(self.value, list):
            object.__setattr__(self, "value", tuple(self.value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """Conditions combined: an empty ALL group holds, an empty ANY group does not.

    Attributes:
        mode: Whether all items or any item must hold.
        items: Conditions and nested groups (a list is turned into a tuple).
    """

    mode: Mode
    items: tuple[Condition | Group, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))


Node: TypeAlias = Condition | Group


# --- Evaluation -------------------------------------------------------------


def evaluate(node: Node, new: Mapping[str, object], old: Mapping[str, object] | None) -> bool:
    """Whether the conditions hold for a write.

    Args:
        node: The conditions.
        new: Each path's value after the write (a list when the path crosses
            a to-many link); a missing path counts as None.
        old: Each path's value before the write, or None when the write
            created the record; a missing path counts as unchanged.

    Returns:
        True if the conditions hold. Never raises for odd or mixed values.
    """
    if isinstance(node, Group):
        results = (evaluate(item, new, old) for item in node.items)
        return all(results) if node.mode == Mode.ALL else any(results)
    current = new.get(node.path)
    if node.op in CHANGE_OPS:
        return _changed(node, current, old)
    return _VALUE_TESTS[node.op](current, node.value)


def _changed(cond: Condition, current: object, old: Mapping[str, object] | None) -> bool:
    if old is None:  # A new record: everything it has was just set.
        if cond.op == Op.CHANGED:
            return not _is_blank(current)
        return cond.op == Op.CHANGED_TO and current == cond.value
    if cond.path not in old:
        return False
    before = old[cond.path]
    if cond.op == Op.CHANGED:
        return bool(before != current)
    if cond.op == Op.CHANGED_FROM:
        return bool(before == cond.value and current != cond.value)
    return bool(current == cond.value and before != cond.value)


def _is_blank(value: object) -> bool:
    """Empty, or a list whose elements are all empty."""
    return is_empty(value) or (
        isinstance(value, list | tuple) and all(is_empty(item) for item in value)
    )


_Test: TypeAlias = Callable[[object, object], bool]


def _any_element(test: _Test) -> _Test:
    """``test`` lifted to lists: some element passes."""

    def lifted(current: object, value: object) -> bool:
        if isinstance(current, list | tuple):
            return any(test(item, value) for item in current)
        return test(current, value)

    return lifted


def _equals(current: object, value: object) -> bool:
    return bool(current == value)


def _is_in(current: object, value: object) -> bool:
    return isinstance(value, list | tuple) and current in value


def _contains(current: object, value: object) -> bool:
    # A string contains substrings; anything else (a list element) "contains"
    # only itself, which makes CONTAINS on a list a membership test.
    if isinstance(current, str):
        return str(value) in current
    return bool(current == value)


def _ordered(compare: Callable[[Any, Any], object]) -> _Test:
    def test(current: object, value: object) -> bool:
        if current is None or value is None:
            return False
        try:
            return bool(compare(current, value))
        except TypeError:  # e.g. text against a number: not greater, not less
            return False

    return test


def _not_equals(current: object, value: object) -> bool:
    return not _any_element(_equals)(current, value)


def _empty(current: object, _value: object) -> bool:
    return _is_blank(current)


def _not_empty(current: object, _value: object) -> bool:
    return not _is_blank(current)


_VALUE_TESTS: dict[Op, _Test] = {
    Op.EQUALS: _any_element(_equals),
    Op.NOT_EQUALS: _not_equals,
    Op.IN: _any_element(_is_in),
    Op.CONTAINS: _any_element(_contains),
    Op.GREATER: _any_element(_ordered(operator.gt)),
    Op.GREATER_OR_EQUAL: _any_element(_ordered(operator.ge)),
    Op.LESS: _any_element(_ordered(operator.lt)),
    Op.LESS_OR_EQUAL: _any_element(_ordered(operator.le)),
    Op.EMPTY: _empty,
    Op.NOT_EMPTY: _not_empty,
}


# --- Inspection and transformation ------------------------------------------


def _conditions(node: Node) -> list[Condition]:
    if isinstance(node, Condition):
        return [node]
    return [cond for item in node.items for cond in _conditions(item)]


def paths_of(node: Node) -> frozenset[str]:
    """Every path the conditions read (what the caller must resolve)."""
    return frozenset(cond.path for cond in _conditions(node))


def change_paths_of(node: Node) -> frozenset[str]:
    """The paths used with change operators (whose old values the caller must keep)."""
    return frozenset(cond.path for cond in _conditions(node) if cond.op in CHANGE_OPS)


def map_values(node: Node, fn: Callable[[Condition], object]) -> Node:
    """A copy with each operand replaced by ``fn(condition)``.

    Conditions whose operator takes no value are kept as they are. The caller
    uses this to coerce operands to the attribute's type; for ``in``, ``fn``
    returns the new list of candidates.
    """
    if isinstance(node, Group):
        return replace(node, items=tuple(map_values(item, fn) for item in node.items))
    if node.op in VALUELESS_OPS:
        return node
    return replace(node, value=fn(node))


# --- Serialisation ----------------------------------------------------------

_OPS = {op.value: op for op in Op}
_OP_NAMES = ", ".join(_OPS)
_CONDITION_KEYS = frozenset({"path", "op", "value"})


def to_data(node: Node) -> dict[str, object]:
    """The conditions as JSON/YAML data (operands through :func:`to_json`).

    A group is ``{"all": [...]}`` or ``{"any": [...]}``; a condition is
    ``{"path": ..., "op": ..., "value": ...}`` without ``value`` for the
    operators in :data:`VALUELESS_OPS`.
    """
    if isinstance(node, Group):
        return {node.mode.value: [to_data(item) for item in node.items]}
    data: dict[str, object] = {"path": node.path, "op": node.op.value}
    if node.op not in VALUELESS_OPS:
        data["value"] = to_json(node.value)
    return data


def from_data(data: object, *, where: str = "conditions") -> Node:
    """Conditions read from the form :func:`to_data` writes.

    A bare list is read as an ALL group and None as an empty ALL group (no
    conditions: always true).

    Args:
        data: Parsed JSON or YAML.
        where: The location of ``data``, for error messages.

    Raises:
        ConditionError: The data is malformed; the message names the location.
    """
    if data is None:
        return Group(mode=Mode.ALL)
    if isinstance(data, list):
        return Group(mode=Mode.ALL, items=_items(data, where, 1))
    return _node(data, where, 1)


def _node(data: object, where: str, depth: int) -> Node:
    if not isinstance(data, Mapping):
        raise ConditionError(where, f"expected a condition or a group, got {_kind(data)}")
    modes = [mode for mode in Mode if mode.value in data]
    if len(modes) > 1:
        raise ConditionError(where, "a group has either 'all' or 'any', not both")
    if modes:
        return _group(data, modes[0], where, depth)
    if "path" in data or "op" in data:
        return _condition(data, where)
    raise ConditionError(
        where, "expected a group ('all' or 'any') or a condition ('path' and 'op')"
    )


def _group(data: Mapping[object, object], mode: Mode, where: str, depth: int) -> Group:
    if depth > MAX_DEPTH:
        raise ConditionError(where, f"groups are nested more than {MAX_DEPTH} deep")
    _check_keys(data, {mode.value}, where)
    items = data[mode.value]
    where = f"{where}.{mode.value}"
    if not isinstance(items, list):
        raise ConditionError(where, f"expected a list of conditions, got {_kind(items)}")
    return Group(mode=mode, items=_items(items, where, depth))


def _items(items: list[object], where: str, depth: int) -> tuple[Node, ...]:
    return tuple(_node(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(items))


def _condition(data: Mapping[object, object], where: str) -> Condition:
    _check_keys(data, _CONDITION_KEYS, where)
    path = data.get("path")
    if path is None:
        raise ConditionError(where, "missing path")
    if not isinstance(path, str):
        raise ConditionError(where, f"path must be text, got {_kind(path)}")
    if not path.strip():
        raise ConditionError(where, "path is empty")
    raw_op = data.get("op")
    if raw_op is None:
        raise ConditionError(where, f"missing op; use one of: {_OP_NAMES}")
    op = _OPS.get(raw_op) if isinstance(raw_op, str) else None
    if op is None:
        raise ConditionError(where, f"unknown operator {raw_op!r}; use one of: {_OP_NAMES}")
    value = data.get("value")
    if op in VALUELESS_OPS:
        if value is not None:
            raise ConditionError(where, f"operator '{op}' takes no value")
    elif "value" not in data:
        raise ConditionError(where, f"operator '{op}' needs a value")
    elif op == Op.IN and not isinstance(value, list | tuple):
        raise ConditionError(where, f"operator 'in' needs a list of values, got {_kind(value)}")
    return Condition(path=path, op=op, value=value)


def _check_keys(data: Mapping[object, object], allowed: Collection[str], where: str) -> None:
    unknown = sorted(repr(key) for key in data if key not in allowed)
    if unknown:
        noun = "key" if len(unknown) == 1 else "keys"
        names = ", ".join(sorted(allowed))
        raise ConditionError(where, f"unknown {noun} {', '.join(unknown)}; use: {names}")


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
