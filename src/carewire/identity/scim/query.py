"""Filters and sort orders of a search, as conditions the storage evaluates (RFC 7644 §3.4.2).

Theory of operation. scim2-models parses a filter into its syntax tree
(:mod:`scim2_models.path`) and can evaluate it on a resource in memory; most
searches an identity provider makes (``userName eq "…"``, ``externalId eq
"…"``, ``emails.value eq "…"``, ``active eq false``, dates) name attributes the
directory keeps in indexed columns. :func:`user_condition` turns such a tree
into a :data:`Condition` over :class:`UserField` for the storage to compile to
SQL; a tree naming anything else (the profile's JSON fields, value selections
such as ``emails[type eq "work"]``, ``null``) gives None, and the caller
evaluates the filter in memory instead. Both ways answer the same: a comparison
with an unassigned value matches only ``ne`` (as scim2-models does), strings
compare case-insensitively except ``id`` and ``externalId`` (RFC 7643 §4.1).
No I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from carewire.identity.scim.model import ENTERPRISE_SCHEMA, USER_SCHEMA

if TYPE_CHECKING:  # scim2-models is imported where a filter is read: half a second at start-up
    from scim2_models.path import AttrPath, Comparison, FilterNode


class UserField(enum.StrEnum):
    """What a condition on users can test; the storage knows each one's column."""

    LOGIN = "id"
    USER_NAME = "userName"
    EXTERNAL_ID = "externalId"
    GIVEN_NAME = "name.givenName"
    FAMILY_NAME = "name.familyName"
    EMAIL = "emails.value"
    ACTIVE = "active"
    CREATED = "meta.created"
    MODIFIED = "meta.lastModified"
    USER_TYPE = "userType"
    EMPLOYEE_NUMBER = "employeeNumber"
    GROUP = "groups.value"


#: Fields whose strings compare exactly (RFC 7643: ``id`` and ``externalId`` are caseExact).
CASE_EXACT = frozenset({UserField.LOGIN, UserField.EXTERNAL_ID, UserField.GROUP})
#: Fields that may be unassigned.
NULLABLE = frozenset({UserField.EXTERNAL_ID})

_CORE: dict[str, UserField] = {
    "id": UserField.LOGIN,
    "username": UserField.USER_NAME,
    "externalid": UserField.EXTERNAL_ID,
    "name.givenname": UserField.GIVEN_NAME,
    "name.familyname": UserField.FAMILY_NAME,
    "emails": UserField.EMAIL,
    "emails.value": UserField.EMAIL,
    "active": UserField.ACTIVE,
    "meta.created": UserField.CREATED,
    "meta.lastmodified": UserField.MODIFIED,
    "usertype": UserField.USER_TYPE,
    "groups": UserField.GROUP,
    "groups.value": UserField.GROUP,
}
_ENTERPRISE: dict[str, UserField] = {"employeenumber": UserField.EMPLOYEE_NUMBER}

_STRINGS = frozenset(
    {
        UserField.LOGIN,
        UserField.USER_NAME,
        UserField.EXTERNAL_ID,
        UserField.GIVEN_NAME,
        UserField.FAMILY_NAME,
        UserField.EMAIL,
        UserField.USER_TYPE,
        UserField.GROUP,
    }
)
_DATES = frozenset({UserField.CREATED, UserField.MODIFIED})
_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})
#: Operators each non-string field can be compiled for.
_NUMBER_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; strings arrive lower-cased unless the field is case-exact."""

    field: UserField
    op: str
    value: str | bool | int | datetime


@dataclass(frozen=True, slots=True)
class Has:
    """``field pr``: the field is assigned and not empty."""

    field: UserField


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every term holds."""

    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one term holds."""

    terms: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    """The term does not hold."""

    term: Condition


Condition = Compare | Has | AllOf | AnyOf | Negate


def user_field(path: AttrPath) -> UserField | None:
    """The field an attribute path of the User resource names, if it has a column."""
    name = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
    uri = (path.uri or "").lower()
    if uri in ("", USER_SCHEMA.lower()):
        return _CORE.get(name)
    if uri == ENTERPRISE_SCHEMA.lower():
        return _ENTERPRISE.get(name)
    return None


def user_condition(node: FilterNode) -> Condition | None:
    """The condition a filter's tree states over columns, or None if it names anything else."""
    from scim2_models.path import Comparison, LogicalExpr, LogicalOperator, Not, Present

    if isinstance(node, LogicalExpr):
        terms = [user_condition(term) for term in node.terms]
        if any(term is None for term in terms):
            return None
        kept = tuple(term for term in terms if term is not None)
        return AllOf(kept) if node.op == LogicalOperator.and_ else AnyOf(kept)
    if isinstance(node, Not):
        inner = user_condition(node.expr)
        return None if inner is None else Negate(inner)
    if isinstance(node, Present):
        field = user_field(node.attr_path)
        return None if field is None else Has(field)
    if isinstance(node, Comparison):
        return _comparison(node)
    return None  # a value selection (emails[type eq "work"]): evaluated in memory


def _comparison(node: Comparison) -> Condition | None:
    field = user_field(node.attr_path)
    op = node.op.value
    value = node.value
    if field is None or value is None:
        return None
    if field in _STRINGS:
        if not isinstance(value, str) or (field is UserField.GROUP and op in _ORDERING):
            return None
        return Compare(field, op, value if field in CASE_EXACT else value.lower())
    if op not in _NUMBER_OPS:
        return None
    if field is UserField.ACTIVE:
        return Compare(field, op, value) if isinstance(value, bool) and op in ("eq", "ne") else None
    if field is UserField.EMPLOYEE_NUMBER:
        return _employee_number(op, value)
    if field in _DATES and isinstance(value, str):
        moment = _datetime(value)
        return None if moment is None else Compare(field, op, moment)
    return None


def _employee_number(op: str, value: object) -> Condition | None:
    # StaffIDs are numbers; employeeNumber is a string, so only equality keeps its meaning.
    if op not in ("eq", "ne") or not isinstance(value, str) or not value.isdigit():
        return None
    return Compare(UserField.EMPLOYEE_NUMBER, op, int(value))


def _datetime(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UserSort(enum.StrEnum):
    """Sort orders the storage can give (``sortBy``); anything else sorts in memory."""

    LOGIN = "id"
    USER_NAME = "userName"
    GIVEN_NAME = "name.givenName"
    FAMILY_NAME = "name.familyName"
    EMAIL = "emails.value"
    CREATED = "meta.created"
    MODIFIED = "meta.lastModified"
    EMPLOYEE_NUMBER = "employeeNumber"


_SORTS = {
    UserField.LOGIN: UserSort.LOGIN,
    UserField.USER_NAME: UserSort.USER_NAME,
    UserField.GIVEN_NAME: UserSort.GIVEN_NAME,
    UserField.FAMILY_NAME: UserSort.FAMILY_NAME,
    UserField.EMAIL: UserSort.EMAIL,
    UserField.CREATED: UserSort.CREATED,
    UserField.MODIFIED: UserSort.MODIFIED,
    UserField.EMPLOYEE_NUMBER: UserSort.EMPLOYEE_NUMBER,
}


def user_sort(sort_by: str | None) -> UserSort | None:
    """The storage's order for a ``sortBy`` (by id without one; None: sort in memory)."""
    from scim2_models.path import AttrPath

    if sort_by is None:
        return UserSort.LOGIN
    text, uri = sort_by.strip(), None
    for prefix in (USER_SCHEMA, ENTERPRISE_SCHEMA):
        if text.lower().startswith(prefix.lower() + ":"):
            text, uri = text[len(prefix) + 1 :], prefix
    attr, _, sub = text.partition(".")
    try:
        field = user_field(AttrPath(attr=attr, sub_attr=sub or None, uri=uri))
    except ValueError:
        return None
    return None if field is None else _SORTS.get(field)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSearch:
    """One page of a search the storage answers alone.

    Attributes:
        organisation_id: Whose users.
        condition: What they must satisfy (None: everyone).
        sort: By what (then by id).
        is_descending: ``sortOrder=descending``.
        offset: Matching users skipped (``startIndex`` − 1).
        limit: At most this many (``count``).
    """

    organisation_id: int
    condition: Condition | None
    sort: UserSort = UserSort.LOGIN
    is_descending: bool = False
    offset: int = 0
    limit: int
