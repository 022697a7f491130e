"""Directory users and groups ⇄ SCIM resources (identity/scim/mapping.py), without I/O.

Tables of profiles and links rendered as User resources (the enterprise
extension's read-only ``employeeNumber`` is the StaffID), tables of resources
read back as profile, login state and what is kept for the identity provider,
the refusals with the attribute they name, and the round trip: a resource
served and sent back unchanged asks for no change at all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carewire.directory.model import DirectoryUser, OrganisationId, Profile, StaffType
from carewire.identity.scim import mapping
from carewire.identity.scim.model import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    MAX_EXTRA_CHARS,
    USER_SCHEMA,
    UserLink,
)
from carewire.identity.scim.store import GroupRef, MemberRef, StoredGroup, StoredUser

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
DOMAIN = "carewire.test"
FULL = Profile(
    title="Dr.",
    first_name="Wei",
    last_name="Chen",
    middle_name="Li",
    credentials="MD",
    job_title="Cardiologist",
    email="wei.chen@h.example",
    cell_number="(555) 010-0001",
    office_phone="(555) 010-0002",
    office_fax="(555) 010-0003",
    address1="1 Main St",
    address2="Suite 4",
    city="Springfield",
    state="IL",
    zip="62701",
    time_zone="America/Chicago",
    staff_type=StaffType.PHYSICIAN,
    specialty="Cardiology",  # no SCIM attribute: never rendered, never changed by SCIM
)
PLAIN = Profile(first_name="Ann", last_name="Lee", email="ann@h.example")


def stored(
    profile: Profile = FULL,
    *,
    link: UserLink | None = None,
    can_login: bool = True,
    groups: tuple[GroupRef, ...] = (),
    updated_at: datetime = AT,
) -> StoredUser:
    user = DirectoryUser(
        login="wchen",
        organisation_id=OrganisationId(7),
        staff_id=1042,
        profile=profile,
        can_login=can_login,
        created_at=AT - timedelta(days=30),
        updated_at=updated_at,
    )
    return StoredUser(user=user, link=link, groups=groups)


def link(**more: Any) -> UserLink:
    values: dict[str, Any] = {
        "login": "wchen",
        "organisation_id": 7,
        "user_name": "Wei.Chen@h.example",
        "updated_at": AT,
        **more,
    }
    return UserLink(**values)


# -- directory → SCIM --------------------------------------------------------------------------


def test_a_full_profile_renders_every_mapped_attribute() -> None:
    resource = mapping.user_resource(
        stored(link=link(external_id="00u-1"), groups=(GroupRef(id=3, name="Cardiology"),)),
        domain=DOMAIN,
    )
    meta = resource.pop("meta")
    assert resource == {
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "id": "wchen",
        "externalId": "00u-1",
        "userName": "Wei.Chen@h.example",
        "name": {
            "givenName": "Wei",
            "familyName": "Chen",
            "middleName": "Li",
            "honorificPrefix": "Dr.",
            "honorificSuffix": "MD",
        },
        "displayName": "Wei Chen, MD",
        "title": "Cardiologist",
        "userType": "Physician",
        "timezone": "America/Chicago",
        "active": True,
        "emails": [{"value": "wei.chen@h.example", "type": "work", "primary": True}],
        "phoneNumbers": [
            {"value": "(555) 010-0001", "type": "mobile"},
            {"value": "(555) 010-0002", "type": "work"},
            {"value": "(555) 010-0003", "type": "fax"},
        ],
        "addresses": [
            {
                "streetAddress": "1 Main St\nSuite 4",
                "locality": "Springfield",
                "region": "IL",
                "postalCode": "62701",
                "type": "work",
            }
        ],
        "ims": [{"value": "wchen@carewire.test", "type": "xmpp"}],
        "groups": [{"value": "3", "display": "Cardiology", "type": "direct"}],
        ENTERPRISE_SCHEMA: {"employeeNumber": "1042"},
    }
    assert meta["resourceType"] == "User"
    assert meta["created"] == (AT - timedelta(days=30)).isoformat()
    assert meta["lastModified"] == AT.isoformat()
    assert meta["version"] == mapping.version_of(resource)


@pytest.mark.parametrize(
    ("case", "user", "expected", "absent"),
    [
        (
            "never provisioned: the login is the userName",
            stored(PLAIN),
            {"userName": "wchen", "name": {"givenName": "Ann", "familyName": "Lee"}},
            {"externalId", "phoneNumbers", "addresses", "groups", "title"},
        ),
        (
            "disabled login",
            stored(PLAIN, can_login=False),
            {"active": False, "displayName": "Ann Lee"},
            set(),
        ),
        (
            "Non-Physician",
            stored(replace(PLAIN, staff_type=StaffType.NON_PHYSICIAN)),
            {"userType": "Non-Physician"},
            set(),
        ),
        (
            "one street line, no city",
            stored(replace(PLAIN, address1="9 Elm")),
            {"addresses": [{"streetAddress": "9 Elm", "type": "work"}]},
            set(),
        ),
        (
            "kept attributes merged: objects merged, lists after the directory's",
            stored(
                replace(PLAIN, cell_number="(555) 010-0009"),
                link=link(
                    extra={
                        "nickName": "Annie",
                        "name": {"formatted": "Ms Ann Lee"},
                        ENTERPRISE_SCHEMA: {"department": "ICU", "manager": {"value": "boss"}},
                        "phoneNumbers": [{"value": "77", "type": "pager"}],
                    }
                ),
            ),
            {
                "nickName": "Annie",
                "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Ms Ann Lee"},
                ENTERPRISE_SCHEMA: {
                    "employeeNumber": "1042",
                    "department": "ICU",
                    "manager": {"value": "boss"},
                },
                "phoneNumbers": [
                    {"value": "(555) 010-0009", "type": "mobile"},
                    {"value": "77", "type": "pager"},
                ],
            },
            set(),
        ),
        (
            "a displayName and userType the provider set win",
            stored(PLAIN, link=link(extra={"displayName": "Dr Ann", "userType": "Contractor"})),
            {"displayName": "Dr Ann", "userType": "Contractor"},
            set(),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_rendering(case: str, user: StoredUser, expected: dict[str, Any], absent: set[str]) -> None:
    resource = mapping.user_resource(user, domain=DOMAIN)
    for key, value in expected.items():
        assert resource[key] == value, (case, key)
    assert not absent & set(resource), case
    assert resource[ENTERPRISE_SCHEMA]["employeeNumber"] == "1042"  # always the StaffID


def test_the_version_follows_the_content_and_the_link() -> None:
    base = mapping.user_resource(stored(PLAIN), domain=DOMAIN)
    again = mapping.user_resource(stored(PLAIN, updated_at=AT + timedelta(hours=1)), domain=DOMAIN)
    assert again["meta"]["version"] == base["meta"]["version"]  # a timestamp alone: same content
    assert again["meta"]["lastModified"] != base["meta"]["lastModified"]
    changed = [
        stored(PLAIN, can_login=False),
        stored(replace(PLAIN, job_title="Nurse")),
        stored(PLAIN, groups=(GroupRef(id=1, name="ICU"),)),
        stored(PLAIN, link=link(extra={"nickName": "A"})),
    ]
    versions = {mapping.user_resource(u, domain=DOMAIN)["meta"]["version"] for u in changed}
    assert len(versions) == len(changed) and base["meta"]["version"] not in versions
    linked = mapping.user_resource(
        stored(PLAIN, link=link(updated_at=AT + timedelta(days=1))), domain=DOMAIN
    )
    assert linked["meta"]["lastModified"] == (AT + timedelta(days=1)).isoformat()
    assert mapping.version_of({**base, "meta": {"anything": 1}}) == base["meta"]["version"]
    assert base["meta"]["version"].startswith('W/"') and base["meta"]["version"].endswith('"')


# -- SCIM → directory --------------------------------------------------------------------------


def resource(**more: Any) -> dict[str, Any]:
    """A minimal User resource (``more`` replaces or adds attributes)."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": "ann.lee",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"value": "ann@h.example", "type": "work"}],
        **more,
    }


@pytest.mark.parametrize(
    ("case", "sent", "fields", "extra"),
    [
        ("minimal", resource(), {"email": "ann@h.example"}, {}),
        (
            "the primary address wins over the work one",
            resource(
                emails=[
                    {"value": "w@h.example", "type": "work"},
                    {"value": "p@h.example", "type": "other", "primary": True},
                ]
            ),
            {"email": "p@h.example"},
            {},  # the directory keeps one address; the others are not kept (docs/scim.md)
        ),
        (
            "the work address wins over the first",
            resource(
                emails=[
                    {"value": "o@h.example", "type": "other"},
                    {"value": "w@h.example", "type": "work"},
                ]
            ),
            {"email": "w@h.example"},
            {},
        ),
        (
            "no emails: a userName that is an address",
            resource(userName="Ann@H.example", emails=None),
            {"email": "Ann@H.example"},
            {},
        ),
        (
            "names, title, time zone",
            resource(
                name={
                    "givenName": "Wei",
                    "familyName": "Chen",
                    "middleName": "Li",
                    "honorificPrefix": "Dr.",
                    "honorificSuffix": "MD",
                    "formatted": "Dr. Wei Li Chen, MD",
                },
                title="Cardiologist",
                timezone="America/Denver",
            ),
            {
                "first_name": "Wei",
                "last_name": "Chen",
                "middle_name": "Li",
                "title": "Dr.",
                "credentials": "MD",
                "job_title": "Cardiologist",
                "time_zone": "America/Denver",
            },
            {"name": {"formatted": "Dr. Wei Li Chen, MD"}},
        ),
        (
            "userType in any case sets the staff type",
            resource(userType="non-physician"),
            {"staff_type": StaffType.NON_PHYSICIAN},
            {},
        ),
        (
            "another userType is kept, the staff type stays",
            resource(userType="Contractor"),
            {"staff_type": StaffType.PHYSICIAN},
            {"userType": "Contractor"},
        ),
        (
            "phones by type; other types and second ones kept",
            resource(
                phoneNumbers=[
                    {"value": "111", "type": "mobile"},
                    {"value": "222", "type": "work"},
                    {"value": "333", "type": "fax"},
                    {"value": "444", "type": "pager"},
                    {"value": "555", "type": "mobile"},
                ]
            ),
            {"cell_number": "111", "office_phone": "222", "office_fax": "333"},
            {
                "phoneNumbers": [
                    {"value": "444", "type": "pager"},
                    {"value": "555", "type": "mobile"},
                ]
            },
        ),
        (
            "a primary phone of a type wins",
            resource(
                phoneNumbers=[
                    {"value": "111", "type": "mobile"},
                    {"value": "999", "type": "mobile", "primary": True},
                ]
            ),
            {"cell_number": "999"},
            {"phoneNumbers": [{"value": "111", "type": "mobile"}]},
        ),
        (
            "the work address; its country and other addresses kept",
            resource(
                addresses=[
                    {
                        "type": "work",
                        "streetAddress": "1 Main St\nSuite 4\nBack door",
                        "locality": "Springfield",
                        "region": "IL",
                        "postalCode": "62701",
                        "country": "US",
                    },
                    {"type": "home", "locality": "Shelbyville"},
                ]
            ),
            {
                "address1": "1 Main St",
                "address2": "Suite 4\nBack door",
                "city": "Springfield",
                "state": "IL",
                "zip": "62701",
            },
            {
                "addresses": [
                    {"type": "home", "locality": "Shelbyville"},
                    {"country": "US", "type": "work"},
                ]
            },
        ),
        (
            "enterprise: employeeNumber is read-only and never kept; the rest is kept",
            resource(**{ENTERPRISE_SCHEMA: {"employeeNumber": "HR-77", "department": "ICU"}}),
            {},
            {ENTERPRISE_SCHEMA: {"department": "ICU"}},
        ),
        (
            "enterprise with employeeNumber alone: nothing kept",
            resource(**{ENTERPRISE_SCHEMA: {"employeeNumber": "1042"}}),
            {},
            {},
        ),
        (
            "the computed displayName is the directory's",
            resource(displayName="Ann Lee"),
            {},
            {},
        ),
        (
            "another displayName is kept for the provider",
            resource(displayName="Nurse Ann"),
            {},
            {"displayName": "Nurse Ann"},
        ),
        (
            "what every resource has, and read-only attributes, are never kept",
            resource(
                id="x",
                externalId="00u-9",
                meta={"version": 'W/"1"'},
                groups=[{"value": "1"}],
                ims=[{"value": "x@y", "type": "xmpp"}],
                password="a long passphrase",
                active=True,
                nickName="Annie",
                locale="en-US",
            ),
            {},
            {"nickName": "Annie", "locale": "en-US"},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_reading(
    case: str, sent: dict[str, Any], fields: dict[str, Any], extra: dict[str, Any]
) -> None:
    sent = {k: v for k, v in sent.items() if v is not None}
    wanted = mapping.user_input(sent, None)
    for name, value in fields.items():
        assert getattr(wanted.profile, name) == value, (case, name)
    assert wanted.extra == extra, case
    assert wanted.user_name == sent["userName"]


def test_what_is_not_in_the_resource() -> None:
    current = replace(FULL, specialty="Cardiology", home_page_url="https://h.example/wei")
    wanted = mapping.user_input(resource(), current)
    # The resource is the whole new state: mapped fields it leaves out are cleared …
    assert wanted.profile.middle_name == "" and wanted.profile.cell_number == ""
    assert wanted.profile.address1 == "" and wanted.profile.job_title == ""
    # … fields SCIM has no attribute for stay; an absent timezone keeps the current one.
    assert wanted.profile.specialty == "Cardiology"
    assert wanted.profile.home_page_url == "https://h.example/wei"
    assert wanted.profile.time_zone == FULL.time_zone
    assert wanted.can_login is None and wanted.password is None and wanted.external_id is None


@pytest.mark.parametrize(
    ("active", "password", "external_id", "expected"),
    [
        (True, None, None, (True, None, None)),
        (False, "a long passphrase", "00u-1", (False, "a long passphrase", "00u-1")),
        ("False", 12, "", (None, None, None)),  # not JSON booleans, not a string, empty
    ],
)
def test_login_state_password_and_external_id(
    active: object, password: object, external_id: str | None, expected: tuple[object, ...]
) -> None:
    wanted = mapping.user_input(
        resource(active=active, password=password, externalId=external_id), None
    )
    assert (wanted.can_login, wanted.password, wanted.external_id) == expected


@pytest.mark.parametrize(
    ("sent", "attribute"),
    [
        (resource(userName=""), "userName"),
        (resource(userName="   "), "userName"),
        (resource(userName="x" * 321), "userName"),
        (resource(externalId="x" * 321), "externalId"),
        (resource(name={"familyName": "Lee"}), "name"),
        (resource(name={"givenName": "Ann"}), "name"),
        (resource(name=None), "name"),
        (resource(emails=[]), "emails"),
        (resource(emails=[{"type": "work"}]), "emails"),  # no value
        (resource(nickName="x" * MAX_EXTRA_CHARS), ""),
    ],
)
def test_refusals_name_the_attribute(sent: dict[str, Any], attribute: str) -> None:
    with pytest.raises(mapping.MappingError) as refused:
        mapping.user_input(sent, None)
    assert refused.value.attribute == attribute


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"nickName": "Wei", "locale": "en-US"},
        {
            "displayName": "Dr Wei",  # the provider's own, not the computed one
            "userType": "Contractor",
            "name": {"formatted": "Dr. Wei Li Chen, MD"},
            "phoneNumbers": [{"value": "77", "type": "pager"}],
            "addresses": [{"type": "home", "locality": "Shelbyville"}],
            ENTERPRISE_SCHEMA: {"department": "ICU", "costCenter": "4130"},
        },
    ],
    ids=["nothing kept", "plain attributes", "every kind kept"],
)
def test_a_resource_sent_back_unchanged_changes_nothing(extra: dict[str, Any]) -> None:
    """The round trip a PATCH of an unrelated attribute makes: served, then sent back whole."""
    user = stored(link=link(external_id="00u-1", extra=extra))
    shown = mapping.user_resource(user, domain=DOMAIN)
    wanted = mapping.user_input(shown, user.user.profile, shown)
    assert wanted.profile == user.user.profile
    assert wanted.extra == extra
    assert (wanted.user_name, wanted.external_id) == ("Wei.Chen@h.example", "00u-1")


def test_the_computed_display_name_follows_a_new_name() -> None:
    """A provider that changes the family name sends back the old computed displayName."""
    user = stored(PLAIN, link=link())
    shown = mapping.user_resource(user, domain=DOMAIN)
    sent = {**shown, "name": {"givenName": "Ann", "familyName": "Moore"}}
    wanted = mapping.user_input(sent, PLAIN, shown)
    assert "displayName" not in wanted.extra and wanted.profile.last_name == "Moore"


# -- groups ------------------------------------------------------------------------------------


def test_a_group_renders_its_members_and_version() -> None:
    group = StoredGroup(
        id=12,
        organisation_id=7,
        name="Wound Care",
        external_id=None,
        created_at=AT,
        updated_at=AT + timedelta(minutes=5),
        members=(MemberRef(login="ann", display="Ann Lee"),),
    )
    rendered = mapping.group_resource(group)
    meta = rendered.pop("meta")
    assert rendered == {
        "schemas": [GROUP_SCHEMA],
        "id": "12",
        "displayName": "Wound Care",
        "members": [{"value": "ann", "display": "Ann Lee", "type": "User"}],
    }
    assert meta["resourceType"] == "Group" and meta["version"] == mapping.version_of(rendered)
    empty = mapping.group_resource(replace(group, members=(), external_id="g-1"))
    assert "members" not in empty and empty["externalId"] == "g-1"
    assert empty["meta"]["version"] != meta["version"]


@pytest.mark.parametrize(
    ("members", "logins"),
    [
        (None, []),
        ([], []),
        ([{"value": "bob"}, {"value": "ann", "type": "User"}, {"value": "bob"}], ["ann", "bob"]),
        ([{"display": "no value"}, "not an object", {"value": ""}], []),
        ([{"value": "cy", "type": "user"}], ["cy"]),
    ],
)
def test_member_logins(members: object, logins: list[str]) -> None:
    assert mapping.member_logins({"members": members}) == logins


@pytest.mark.parametrize(
    ("sent", "attribute"),
    [
        ({"members": [{"value": "5", "type": "Group"}]}, "members"),
        ({"members": [{"value": "5", "type": "GROUP"}]}, "members"),
    ],
)
def test_groups_of_groups_are_refused(sent: dict[str, Any], attribute: str) -> None:
    with pytest.raises(mapping.MappingError) as refused:
        mapping.member_logins(sent)
    assert refused.value.attribute == attribute


@pytest.mark.parametrize(
    ("external_id", "expected"), [(None, None), ("", None), ("g-1", "g-1"), (42, "42")]
)
def test_group_external_id(external_id: object, expected: str | None) -> None:
    assert mapping.group_external_id({"externalId": external_id}) == expected
    with pytest.raises(mapping.MappingError):
        mapping.group_external_id({"externalId": "g" * 321})
