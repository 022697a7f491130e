"""SCIM filters and sort orders as storage conditions (identity/scim/query.py), without I/O.

Filters are parsed by scim2-models as the service parses them; each table row
says the condition the storage gets, or None: the filter is evaluated in memory
(tests/storage/test_scim_store.py checks that both ways select the same users).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from scim2_models import ScimFilter, User
from scim2_models.path import AttrPath, CompareOperator, Comparison, Present

from carewire.identity.scim.engine import StaffEnterpriseUser
from carewire.identity.scim.model import ENTERPRISE_SCHEMA, USER_SCHEMA
from carewire.identity.scim.query import (
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Has,
    Negate,
    UserField,
    UserSort,
    user_condition,
    user_sort,
)

MODEL = User[StaffEnterpriseUser]
F = UserField
NEW_YEAR = datetime(2020, 1, 1, tzinfo=UTC)


def condition_of(expression: str) -> Condition | None:
    return user_condition(ScimFilter[MODEL](expression).ast)  # type: ignore[valid-type]


COMPILED: list[tuple[str, Condition]] = [
    ('userName eq "Ann.Lee"', Compare(F.USER_NAME, "eq", "ann.lee")),
    ('USERNAME Eq "X"', Compare(F.USER_NAME, "eq", "x")),  # names and operators in any case
    (f'{USER_SCHEMA}:userName sw "A"', Compare(F.USER_NAME, "sw", "a")),
    ('userName gt "m"', Compare(F.USER_NAME, "gt", "m")),
    ('id eq "JDoe"', Compare(F.LOGIN, "eq", "JDoe")),  # caseExact (RFC 7643 §3.1)
    ('externalId eq "00u-AbC"', Compare(F.EXTERNAL_ID, "eq", "00u-AbC")),  # caseExact
    ('name.givenName ne "Ann"', Compare(F.GIVEN_NAME, "ne", "ann")),
    ('name.familyName co "EE"', Compare(F.FAMILY_NAME, "co", "ee")),
    ('emails eq "Ann@H.example"', Compare(F.EMAIL, "eq", "ann@h.example")),
    ('emails.value ew ".EXAMPLE"', Compare(F.EMAIL, "ew", ".example")),
    ('userType eq "Non-Physician"', Compare(F.USER_TYPE, "eq", "non-physician")),
    ("active eq false", Compare(F.ACTIVE, "eq", False)),
    ("active ne true", Compare(F.ACTIVE, "ne", True)),
    ('meta.created ge "2020-01-01T00:00:00Z"', Compare(F.CREATED, "ge", NEW_YEAR)),
    ('meta.created gt "2020-01-01"', Compare(F.CREATED, "gt", NEW_YEAR)),  # no zone: UTC
    (
        'meta.lastModified lt "2020-01-01T05:00:00+05:00"',
        Compare(F.MODIFIED, "lt", datetime(2020, 1, 1, 5, tzinfo=timezone(timedelta(hours=5)))),
    ),
    ('groups eq "7"', Compare(F.GROUP, "eq", "7")),
    ('groups.value ne "7"', Compare(F.GROUP, "ne", "7")),
    (f'{ENTERPRISE_SCHEMA}:employeeNumber eq "1042"', Compare(F.EMPLOYEE_NUMBER, "eq", 1042)),
    (f'{ENTERPRISE_SCHEMA}:employeeNumber ne "7"', Compare(F.EMPLOYEE_NUMBER, "ne", 7)),
    ("externalId pr", Has(F.EXTERNAL_ID)),
    ("groups pr", Has(F.GROUP)),
    ('not (externalId eq "x")', Negate(Compare(F.EXTERNAL_ID, "eq", "x"))),
    (
        'userName eq "a" and userName eq "b" and active eq true',
        AllOf(
            (
                Compare(F.USER_NAME, "eq", "a"),
                Compare(F.USER_NAME, "eq", "b"),
                Compare(F.ACTIVE, "eq", True),
            )
        ),
    ),
    (
        'userName eq "a" or (active eq true and not (externalId pr))',
        AnyOf(
            (
                Compare(F.USER_NAME, "eq", "a"),
                AllOf((Compare(F.ACTIVE, "eq", True), Negate(Has(F.EXTERNAL_ID)))),
            )
        ),
    ),
]

#: Filters naming something without a column, or a comparison the columns cannot keep.
IN_MEMORY: list[str] = [
    'nickName eq "Annie"',  # an attribute kept for the provider
    "title pr",  # a profile field, not a column
    'name.middleName eq "Li"',
    'emails[type eq "work"]',  # a value selection
    'emails[type eq "work" and value co "@h.example"]',
    'userName eq "a" and nickName eq "b"',  # one term in memory: the whole filter
    "not (nickName pr)",
    'userName eq "a" or emails[type eq "work"]',
    "name.givenName eq null",  # an unassigned value
    'groups gt "1"',  # group ids do not order
    'groups.display eq "ICU"',
    'meta.created co "2020"',  # substrings of a date
    f'{ENTERPRISE_SCHEMA}:employeeNumber gt "12"',  # a string: "9" > "12"; numbers disagree
    f'{ENTERPRISE_SCHEMA}:employeeNumber eq "HR-77"',  # never a StaffID
    f'{ENTERPRISE_SCHEMA}:department eq "ICU"',
    # Unqualified extension attributes are core names: nothing has a column (RFC 7644 §3.10:
    # clients SHOULD qualify extension attributes).
    'employeeNumber eq "1042"',
]


@pytest.mark.parametrize(("expression", "expected"), COMPILED, ids=[e for e, _ in COMPILED])
def test_filters_the_storage_evaluates(expression: str, expected: Condition) -> None:
    assert condition_of(expression) == expected


@pytest.mark.parametrize("expression", IN_MEMORY)
def test_filters_evaluated_in_memory(expression: str) -> None:
    assert condition_of(expression) is None


def path(attr: str, sub: str | None = None) -> AttrPath:
    return AttrPath(attr=attr, sub_attr=sub, uri=None)


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        # Values scim2-models' validation lets through only when the tree is made by hand.
        (Comparison(attr_path=path("userName"), op=CompareOperator.eq, value=12), None),
        (
            Comparison(attr_path=path("meta", "created"), op=CompareOperator.gt, value="soon"),
            None,
        ),
        (Comparison(attr_path=path("active"), op=CompareOperator.eq, value="true"), None),
        (Comparison(attr_path=path("active"), op=CompareOperator.gt, value=True), None),
        (Comparison(attr_path=path("meta", "created"), op=CompareOperator.eq, value=5), None),
        (
            Comparison(
                attr_path=AttrPath(attr="userName", sub_attr=None, uri="urn:example:other"),
                op=CompareOperator.eq,
                value="x",
            ),
            None,
        ),
        (Present(attr_path=path("meta", "lastModified")), Has(F.MODIFIED)),
    ],
)
def test_hand_made_trees(node: Comparison | Present, expected: Condition | None) -> None:
    assert user_condition(node) == expected


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        (None, UserSort.LOGIN),  # no sortBy: by id, so pages are stable
        ("id", UserSort.LOGIN),
        ("userName", UserSort.USER_NAME),
        ("  USERNAME ", UserSort.USER_NAME),
        (f"{USER_SCHEMA}:name.familyName", UserSort.FAMILY_NAME),
        ("name.givenName", UserSort.GIVEN_NAME),
        ("emails", UserSort.EMAIL),
        ("emails.value", UserSort.EMAIL),
        ("meta.created", UserSort.CREATED),
        ("meta.lastModified", UserSort.MODIFIED),
        (f"{ENTERPRISE_SCHEMA}:employeeNumber", UserSort.EMPLOYEE_NUMBER),
        ("employeeNumber", None),
        ("active", None),  # a column, but not an order the storage offers
        ("userType", None),
        ("groups", None),
        ("title", None),
        ("nickName", None),
        ("", None),
        ("a.b.c", None),
    ],
)
def test_sort_orders(sort_by: str | None, expected: UserSort | None) -> None:
    assert user_sort(sort_by) is expected
