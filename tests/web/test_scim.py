"""``/scim/v2`` over HTTP: the compliance cases of RFC 7644 and the directory they provision.

One platform (SQLite) serves the whole module; each test provisions users of its
own names. The filter grammar, every PATCH form, paging edges, ETags and the error
bodies (``status``, ``scimType``) are checked against the RFCs' text; what an
identity provider does shows up in the directory at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import SYSTEM_CALLER, UnknownUserError, UserDisabled
from carewire.identity.scim.model import MAX_BODY_BYTES
from tests.identity.scim_world import (
    CLIENT_IP,
    ENTERPRISE,
    GROUP,
    USER,
    ScimWorld,
    assert_error,
    new_user,
    patch,
    scim_world,
)

# One worker runs the module, so its platform is built once.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("web/test_scim.py"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScimWorld]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('scim') / 'carewire.db'}"
    async with scim_world(url) as opened:
        yield opened


async def create(world: ScimWorld, user_name: str, **more: Any) -> dict[str, Any]:
    r = await world.client.post("/Users", json=new_user(user_name, **more))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# -- discovery, authentication --------------------------------------------------------------------


async def test_discovery_describes_what_is_served(world: ScimWorld) -> None:
    r = await world.anonymous.get("/ServiceProviderConfig")  # RFC 7644 §4: no token needed
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/scim+json")
    config = r.json()
    assert config["patch"]["supported"] and config["etag"]["supported"]
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["bulk"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = (await world.client.get("/ResourceTypes")).json()["Resources"]
    user = next(t for t in types if t["id"] == "User")
    assert user["endpoint"] == "/Users"
    assert user["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    schemas = {s["id"]: s for s in (await world.client.get("/Schemas")).json()["Resources"]}
    assert {USER, GROUP, ENTERPRISE} <= set(schemas)
    number = next(a for a in schemas[ENTERPRISE]["attributes"] if a["name"] == "employeeNumber")
    assert number["mutability"] == "readOnly"  # the StaffID
    r = await world.client.get(f"/Schemas/{USER}")
    assert r.status_code == 200 and r.json()["id"] == USER


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer cwscim_" + "A" * 43,  # well-formed, unknown
        "Bearer cw_" + "A" * 43,  # a REST API token's shape: never a SCIM token
        "Bearer not-a-token",
    ],
)
async def test_requests_without_a_valid_token_are_401(
    world: ScimWorld, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = await world.anonymous.get("/Users", headers=headers)
    assert_error(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    entries, _ = await world.platform.audit.store.entries(action="scim.auth", limit=100)
    assert entries[0].event.remote_ip == CLIENT_IP
    assert "AAAA" not in str(entries[0].event.details)  # never the token


async def test_a_revoked_token_stops_at_once(world: ScimWorld) -> None:
    client = await world.token_client(world.general, "short-lived")
    assert (await client.get("/Users", params={"count": "0"})).status_code == 200
    await world.scim.tokens.revoke(SYSTEM_CALLER, world.general, "short-lived")
    assert "revoked" in assert_error(await client.get("/Users"), 401)


# -- create, read, uniqueness, bad input ----------------------------------------------------------


async def test_create_makes_a_directory_user_with_no_pin_and_an_invitation(
    world: ScimWorld,
) -> None:
    r = await world.client.post(
        "/Users",
        json=new_user(
            "Ann.Lee@general.example",
            externalId="00u-ann",
            title="Charge Nurse",
            userType="Non-Physician",
            timezone="America/Chicago",
            name={"givenName": "Ann", "familyName": "Lee", "honorificSuffix": "RN"},
            phoneNumbers=[
                {"value": "(555) 010-1234", "type": "mobile"},
                {"value": "1234", "type": "pager"},
            ],
            nickName="Annie",
            **{ENTERPRISE: {"department": "ICU", "employeeNumber": "HR-77"}},
        ),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{body['id']}")
    assert r.headers["etag"] == body["meta"]["version"] and body["meta"]["version"].startswith(
        'W/"'
    )
    assert body["id"] == "ann.lee" and body["userName"] == "Ann.Lee@general.example"
    assert body["externalId"] == "00u-ann" and body["active"] is True
    assert body["displayName"] == "Ann Lee, RN" and body["nickName"] == "Annie"
    assert body["ims"] == [{"value": "ann.lee@carewire.localhost", "type": "xmpp"}]
    assert body["phoneNumbers"] == [
        {"value": "(555) 010-1234", "type": "mobile"},
        {"value": "1234", "type": "pager"},
    ]
    # employeeNumber is the StaffID: what the provider sent is ignored (readOnly, RFC 7643 §2.2).
    user = await world.platform.directory.users.get(SYSTEM_CALLER, "ann.lee")
    assert body[ENTERPRISE] == {"employeeNumber": str(user.staff_id), "department": "ICU"}
    assert "password" not in body
    p = user.profile
    assert (p.first_name, p.last_name, p.credentials, p.job_title) == (
        "Ann",
        "Lee",
        "RN",
        "Charge Nurse",
    )
    assert (p.email, p.cell_number, p.time_zone) == (
        "ann.lee@general.example",
        "(555) 010-1234",
        "America/Chicago",
    )
    assert p.staff_type.value == "Non-Physician" and user.organisation_id == world.general
    assert not user.has_pin and not user.is_registered  # the invitation sets password and PIN
    assert world.mailer.to("ann.lee@general.example")
    entries, _ = await world.platform.audit.store.entries(action="directory.user.create", limit=10)
    assert entries[0].event.actor == f"scim:{world.general}/idp"
    assert entries[0].event.remote_ip == CLIENT_IP
    r = await world.client.get("/Users/ann.lee")
    assert (
        r.status_code == 200 and r.json() == body and r.headers["etag"] == body["meta"]["version"]
    )


async def test_a_password_makes_a_complete_user_and_is_never_returned(world: ScimWorld) -> None:
    body = await create(world, "pat", password="correct horse battery")
    assert "password" not in body
    user = await world.platform.directory.users.get(SYSTEM_CALLER, "pat")
    assert user.is_registered and not world.mailer.to("pat@general.example")
    entries, _ = await world.platform.audit.store.entries(limit=20)
    assert all("correct horse" not in str(e.event.details) for e in entries)
    r = await world.client.post("/Users", json=new_user("pat2", password="short"))
    assert_error(r, 400, "invalidValue")


async def test_a_token_that_does_not_invite_leaves_mail_alone(world: ScimWorld) -> None:
    client = await world.token_client(world.general, "ldap-signin", invite_users=False)
    r = await client.post("/Users", json=new_user("quiet"))
    assert r.status_code == 201
    assert not world.mailer.to("quiet@general.example")


async def test_user_names_and_addresses_are_unique(world: ScimWorld) -> None:
    await create(world, "uma@general.example")
    r = await world.client.post("/Users", json=new_user("UMA@general.example"))
    assert_error(r, 409, "uniqueness")
    r = await world.client.post(
        "/Users", json=new_user("uma-2", emails=[{"value": "Uma@General.example"}])
    )
    assert_error(r, 409, "uniqueness")
    # A user the console made answers to its login as userName.
    await world.platform.directory.users.create(
        SYSTEM_CALLER, world.general, _console_user("console.made")
    )
    assert_error(
        await world.client.post("/Users", json=new_user("Console.Made")), 409, "uniqueness"
    )
    # Another organisation's names do not clash (userName is unique per organisation).
    r = await world.other_client.post(
        "/Users", json=new_user("uma@general.example", emails=[{"value": "uma@other.example"}])
    )
    assert r.status_code == 201 and r.json()["id"] != "uma"


def _console_user(login: str) -> Any:
    from carewire.directory.model import NewUser, Profile

    return NewUser(
        profile=Profile(first_name="Con", last_name="Sole", email=f"{login}@general.example"),
        login=login,
        pin=None,
        send_invitation=False,
    )


@pytest.mark.parametrize(
    ("body", "status", "scim_type"),
    [
        (b"{not json", 400, "invalidSyntax"),
        (b"[]", 400, "invalidSyntax"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}', 400, "invalidValue"),
        (b'{"schemas": [], "userName": "x"}', 400, "invalidSyntax"),
    ],
)
async def test_malformed_bodies_are_400(
    world: ScimWorld, body: bytes, status: int, scim_type: str
) -> None:
    r = await world.client.post("/Users", content=body)
    assert r.status_code == status, r.text
    assert r.json()["status"] == str(status) and r.json()["scimType"] in (
        scim_type,
        "invalidSyntax",
        "invalidValue",
    )


@pytest.mark.parametrize(
    ("more", "scim_type", "says"),
    [
        ({"favouriteColour": "teal"}, "invalidSyntax", "favouriteColour"),
        ({"name": {"givenName": "Only"}}, "invalidValue", "familyName"),
        ({"emails": [{"value": "not an address"}]}, "invalidValue", "email"),
        ({"name": {"givenName": "x" * 65, "familyName": "Long"}}, "invalidValue", "givenName"),
        ({"timezone": "Mars/Olympus"}, "invalidValue", "timezone"),
        ({"phoneNumbers": [{"value": "call me", "type": "work"}]}, "invalidValue", "phoneNumbers"),
        ({"externalId": "e" * 321}, "invalidValue", "externalId"),
        ({"active": "maybe"}, "invalidValue", "active"),
        ({"members": []}, "invalidSyntax", "members"),
    ],
)
async def test_bad_attributes_are_400_with_a_scim_type(
    world: ScimWorld, more: dict[str, Any], scim_type: str, says: str
) -> None:
    detail = assert_error(
        await world.client.post("/Users", json=new_user("bad-input", **more)), 400, scim_type
    )
    assert says in detail


async def test_an_oversized_body_is_413_with_a_scim_error(world: ScimWorld) -> None:
    big = new_user("big", nickName="x" * MAX_BODY_BYTES)
    assert_error(await world.client.post("/Users", json=big), 413)


async def test_unknown_paths_and_methods_are_scim_errors(world: ScimWorld) -> None:
    assert_error(await world.client.get("/Nope"), 404)
    assert_error(await world.client.get("/Users/no-such-user"), 404)
    assert (await world.client.post("/Bulk", json={})).status_code in (400, 501)


# -- another organisation -------------------------------------------------------------------------


async def test_a_token_reaches_only_its_organisation(world: ScimWorld) -> None:
    mine = await create(world, "olga")
    other = world.other_client
    assert_error(await other.get(f"/Users/{mine['id']}"), 404)
    assert_error(
        await other.patch(
            f"/Users/{mine['id']}", json=patch({"op": "replace", "path": "active", "value": False})
        ),
        404,
    )
    assert_error(await other.delete(f"/Users/{mine['id']}"), 404)
    found = (await other.get("/Users", params={"filter": 'userName eq "olga"'})).json()
    assert found["totalResults"] == 0
    group = (await other.post("/Groups", json={"schemas": [GROUP], "displayName": "Theirs"})).json()
    r = await other.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": "olga"}]}),
    )
    assert_error(r, 400, "invalidValue")
    assert_error(await world.client.get(f"/Groups/{group['id']}"), 404)
    assert (await world.platform.directory.users.get(SYSTEM_CALLER, "olga")).can_login


# -- filters --------------------------------------------------------------------------------------

POPULATION: dict[str, dict[str, Any]] = {
    "flt-ada": {
        "name": {"givenName": "Ada", "familyName": "Zed"},
        "title": "Nurse",
        "externalId": "E1",
    },
    "flt-bob": {
        "name": {"givenName": "Bob", "familyName": "Young"},
        "title": "Physician",
        "active": False,
    },
    "flt-cy": {
        "name": {"givenName": "Cy", "familyName": "Xu"},
        "userType": "Non-Physician",
        "phoneNumbers": [{"value": "(555) 010-2222", "type": "work"}],
    },
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def population(world: ScimWorld) -> dict[str, dict[str, Any]]:
    made = {}
    for user_name, more in POPULATION.items():
        made[user_name] = await create(world, user_name, **more)
    return made


FILTERS = [
    ('userName eq "flt-ada"', {"flt-ada"}),
    ('USERNAME EQ "FLT-ADA"', {"flt-ada"}),  # attribute names and operators: any case
    ('userName sw "flt-" and not (userName eq "flt-bob")', {"flt-ada", "flt-cy"}),
    (
        'userName sw "flt-" and (name.givenName eq "ada" or name.familyName eq "young")',
        {"flt-ada", "flt-bob"},
    ),
    ('userName co "t-c"', {"flt-cy"}),
    ('userName ew "-bob"', {"flt-bob"}),
    ('userName sw "flt-" and userName ne "flt-ada"', {"flt-bob", "flt-cy"}),
    ('userName sw "flt-" and userName gt "flt-b"', {"flt-bob", "flt-cy"}),
    ('userName sw "flt-" and userName ge "flt-bob"', {"flt-bob", "flt-cy"}),
    ('userName sw "flt-" and userName lt "flt-bob"', {"flt-ada"}),
    ('userName sw "flt-" and userName le "flt-bob"', {"flt-ada", "flt-bob"}),
    ('externalId eq "E1"', {"flt-ada"}),
    ('externalId eq "e1"', set()),  # externalId is caseExact
    ('userName sw "flt-" and externalId pr', {"flt-ada"}),
    ('userName sw "flt-" and not (externalId pr)', {"flt-bob", "flt-cy"}),
    ('userName sw "flt-" and active eq false', {"flt-bob"}),
    ('emails.value eq "flt-cy@general.example"', {"flt-cy"}),
    ('emails co "flt-ada@"', {"flt-ada"}),
    ('userName sw "flt-" and emails[type eq "work" and value ew "cy@general.example"]', {"flt-cy"}),
    ('userName sw "flt-" and title eq "nurse"', {"flt-ada"}),  # in memory: a profile JSON field
    ('userName sw "flt-" and phoneNumbers[type eq "work"]', {"flt-cy"}),
    ('userName sw "flt-" and userType eq "Non-Physician"', {"flt-cy"}),
    (
        'userName sw "flt-" and meta.created ge "2000-01-01T00:00:00Z"',
        {"flt-ada", "flt-bob", "flt-cy"},
    ),
    ('userName sw "flt-" and meta.lastModified lt "2000-01-01T00:00:00Z"', set()),
    (f'userName sw "flt-" and {ENTERPRISE}:employeeNumber pr', {"flt-ada", "flt-bob", "flt-cy"}),
    (f'{USER}:userName eq "flt-bob"', {"flt-bob"}),
]


@pytest.mark.parametrize(("expression", "expected"), FILTERS, ids=[f for f, _ in FILTERS])
async def test_filters_select_what_rfc_7644_says(
    world: ScimWorld, population: dict[str, Any], expression: str, expected: set[str]
) -> None:
    r = await world.client.get("/Users", params={"filter": expression})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {u["userName"] for u in body["Resources"]} == expected
    assert body["totalResults"] == len(expected)


INVALID_FILTERS = [
    'userName eq "unterminated',
    "userName eq",
    'userName xx "a"',
    '(userName eq "a"',
    'userName eq "a" and',
    'nosuchattribute eq "a"',
    'emails[type eq "work"',
    'name.givenName.extra eq "a"',
    "active gt true",
    'userName eq "a" or or userName eq "b"',
]


@pytest.mark.parametrize("expression", INVALID_FILTERS)
async def test_invalid_filters_are_400_invalid_filter(world: ScimWorld, expression: str) -> None:
    r = await world.client.get("/Users", params={"filter": expression})
    assert_error(r, 400, "invalidFilter")


async def test_search_with_post_dot_search(world: ScimWorld, population: dict[str, Any]) -> None:
    r = await world.client.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": 'userName sw "flt-"',
            "attributes": ["userName"],
            "sortBy": "userName",
            "sortOrder": "descending",
        },
    )
    assert r.status_code == 200, r.text
    assert [u["userName"] for u in r.json()["Resources"]] == ["flt-cy", "flt-bob", "flt-ada"]


# -- paging, sorting, attributes ------------------------------------------------------------------


async def test_paging_edges(world: ScimWorld, population: dict[str, Any]) -> None:
    async def page(**params: str) -> dict[str, Any]:
        r = await world.client.get(
            "/Users", params={"filter": 'userName sw "flt-"', "sortBy": "userName", **params}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    first = await page(startIndex="1", count="2")
    assert [u["userName"] for u in first["Resources"]] == ["flt-ada", "flt-bob"]
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (3, 1, 2)
    last = await page(startIndex="3", count="2")
    assert [u["userName"] for u in last["Resources"]] == ["flt-cy"] and last["startIndex"] == 3
    beyond = await page(startIndex="10")
    assert beyond["totalResults"] == 3 and beyond.get("Resources", []) == []
    zero = await page(count="0")  # RFC 7644 §3.4.2.4: only the total
    assert zero["totalResults"] == 3 and zero.get("Resources", []) == []
    below = await page(startIndex="0", count="1")  # "less than 1 … interpreted as 1"
    assert [u["userName"] for u in below["Resources"]] == ["flt-ada"]
    negative = await page(count="-5")  # a negative count is 0
    assert negative.get("Resources", []) == []
    capped = await world.client.get("/Users", params={"count": "100000"})
    assert capped.status_code == 200 and capped.json()["itemsPerPage"] <= 200
    descending = await page(sortOrder="descending", count="1")
    assert [u["userName"] for u in descending["Resources"]] == ["flt-cy"]
    by_title = await page(sortBy="title")  # sorted in memory: not a column
    assert [u["userName"] for u in by_title["Resources"]] == ["flt-ada", "flt-bob", "flt-cy"]
    assert_error(await world.client.get("/Users", params={"count": "many"}), 400, "invalidValue")


async def test_attributes_and_excluded_attributes(
    world: ScimWorld, population: dict[str, Any]
) -> None:
    r = await world.client.get("/Users/flt-ada", params={"attributes": "userName,name.givenName"})
    assert r.json() == {
        "schemas": [USER],
        "id": "flt-ada",
        "userName": "flt-ada",
        "name": {"givenName": "Ada"},
    }
    r = await world.client.get(
        "/Users/flt-ada", params={"excludedAttributes": "emails,groups,meta"}
    )
    body = r.json()
    assert "emails" not in body and "meta" not in body and body["userName"] == "flt-ada"


# -- PATCH (RFC 7644 §3.5.2) ----------------------------------------------------------------------


async def test_a_patch_keeps_the_providers_display_name(world: ScimWorld) -> None:
    """A PATCH of another attribute sends the whole resource back: the override must survive."""
    await create(world, "dora", displayName="Dr Dora")
    r = await world.client.patch(
        "/Users/dora", json=patch({"op": "replace", "path": "title", "value": "Nurse"})
    )
    assert r.status_code in (200, 204), r.text
    body = (await world.client.get("/Users/dora")).json()
    assert body["title"] == "Nurse" and body["displayName"] == "Dr Dora"


async def test_every_patch_operation_form(world: ScimWorld) -> None:
    await create(
        world,
        "pam",
        phoneNumbers=[
            {"value": "(555) 010-3333", "type": "mobile"},
            {"value": "77", "type": "pager"},
        ],
    )

    async def apply(*ops: dict[str, Any]) -> dict[str, Any]:
        r = await world.client.patch("/Users/pam", json=patch(*ops))
        assert r.status_code in (200, 204), r.text
        body: dict[str, Any] = (await world.client.get("/Users/pam")).json()
        return body

    body = await apply({"op": "add", "path": "title", "value": "Pharmacist"})
    assert body["title"] == "Pharmacist"
    body = await apply({"op": "add", "value": {"nickName": "P", "name": {"middleName": "Q"}}})
    assert body["nickName"] == "P" and body["name"]["middleName"] == "Q"
    body = await apply({"op": "replace", "path": "name.familyName", "value": "Moore"})
    assert body["name"]["familyName"] == "Moore" and body["displayName"] == "Pam Moore"
    body = await apply({"op": "Replace", "value": {"title": "Lead Pharmacist"}})  # Entra's case
    assert body["title"] == "Lead Pharmacist"
    body = await apply(
        {
            "op": "replace",
            "path": 'emails[type eq "work"].value',
            "value": "pam.moore@general.example",
        }
    )
    assert body["emails"] == [
        {"value": "pam.moore@general.example", "type": "work", "primary": True}
    ]
    body = await apply(
        {
            "op": "add",
            "path": "phoneNumbers",
            "value": [{"value": "(555) 010-4444", "type": "work"}],
        }
    )
    assert {"value": "(555) 010-4444", "type": "work"} in body["phoneNumbers"]
    body = await apply({"op": "remove", "path": 'phoneNumbers[type eq "mobile"]'})
    assert {p["type"] for p in body["phoneNumbers"]} == {"work", "pager"}
    body = await apply({"op": "remove", "path": "nickName"})
    assert "nickName" not in body
    body = await apply({"op": "add", "path": f"{ENTERPRISE}:department", "value": "Pharmacy"})
    assert body[ENTERPRISE]["department"] == "Pharmacy"
    profile = (await world.platform.directory.users.get(SYSTEM_CALLER, "pam")).profile
    assert (profile.last_name, profile.job_title, profile.email) == (
        "Moore",
        "Lead Pharmacist",
        "pam.moore@general.example",
    )
    assert (profile.office_phone, profile.cell_number, profile.middle_name) == (
        "(555) 010-4444",
        "",
        "Q",
    )


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "nosuch", "value": 1}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type eq "work"', "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "id", "value": "other"}, "mutability"),
        ({"op": "replace", "path": "groups", "value": []}, "mutability"),
        ({"op": "replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "1"}, "mutability"),
        ({"op": "add", "path": "title"}, "invalidValue"),
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "replace", "path": "name.familyName", "value": ""}, "invalidValue"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
    ],
)
async def test_bad_patch_operations_are_refused_and_change_nothing(
    world: ScimWorld, operation: dict[str, Any], scim_type: str
) -> None:
    if (await world.client.get("/Users/patchy")).status_code == 404:
        await create(world, "patchy")
    before = (await world.client.get("/Users/patchy")).json()
    r = await world.client.patch("/Users/patchy", json=patch(operation))
    assert r.status_code == 400, r.text
    assert r.json()["scimType"] in (scim_type, "invalidSyntax", "invalidValue"), r.text
    assert (await world.client.get("/Users/patchy")).json() == before


# -- PUT ------------------------------------------------------------------------------------------


async def test_put_replaces_and_clears_what_it_leaves_out(world: ScimWorld) -> None:
    body = await create(
        world,
        "rita",
        title="Nurse",
        nickName="R",
        phoneNumbers=[{"value": "(555) 010-5555", "type": "work"}],
    )
    replacement = new_user("rita", name={"givenName": "Rita", "familyName": "Ray"}, id="ignored-id")
    r = await world.client.put("/Users/rita", json=replacement)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["id"] == "rita" and after["name"]["familyName"] == "Ray"
    assert "title" not in after and "nickName" not in after and "phoneNumbers" not in after
    assert after[ENTERPRISE]["employeeNumber"] == body[ENTERPRISE]["employeeNumber"]
    profile = (await world.platform.directory.users.get(SYSTEM_CALLER, "rita")).profile
    assert profile.job_title == "" and profile.office_phone == ""


# -- ETags (RFC 7644 §3.14) -----------------------------------------------------------------------


async def test_etags_guard_writes_and_answer_304(world: ScimWorld) -> None:
    body = await create(world, "eve")
    version = body["meta"]["version"]
    r = await world.client.get("/Users/eve", headers={"If-None-Match": version})
    assert r.status_code == 304 and r.headers["etag"] == version
    stale = 'W/"0000"'
    op = patch({"op": "replace", "path": "title", "value": "Doctor"})
    assert_error(await world.client.patch("/Users/eve", json=op, headers={"If-Match": stale}), 412)
    assert_error(
        await world.client.put("/Users/eve", json=new_user("eve"), headers={"If-Match": stale}), 412
    )
    assert_error(await world.client.delete("/Users/eve", headers={"If-Match": stale}), 412)
    r = await world.client.patch("/Users/eve", json=op, headers={"If-Match": version})
    assert r.status_code in (200, 204)
    changed = r.headers["etag"]
    assert changed != version
    # A change made in the console (the directory itself) changes the version too.
    await world.platform.directory.users.convert(SYSTEM_CALLER, "eve", _non_physician())
    r = await world.client.get("/Users/eve", headers={"If-None-Match": changed})
    assert r.status_code == 200 and r.headers["etag"] != changed
    r = await world.client.get("/Users/eve", headers={"If-None-Match": r.headers["etag"]})
    assert r.status_code == 304
    assert (await world.client.delete("/Users/eve", headers={"If-Match": "*"})).status_code == 204


def _non_physician() -> Any:
    from carewire.directory.model import StaffType

    return StaffType.NON_PHYSICIAN


# -- deactivation and deletion --------------------------------------------------------------------


async def test_active_false_disables_and_true_enables(world: ScimWorld) -> None:
    await create(world, "dan")
    before = len(world.events)
    r = await world.client.patch(
        "/Users/dan", json=patch({"op": "replace", "value": {"active": False}})
    )
    assert r.status_code in (200, 204)
    assert not (await world.platform.directory.users.get(SYSTEM_CALLER, "dan")).can_login
    assert any(isinstance(e, UserDisabled) and e.login == "dan" for e in world.events[before:])
    entries, _ = await world.platform.audit.store.entries(action="directory.user.update", limit=5)
    changes: Any = entries[0].event.details["changes"]
    assert changes["after"] == {"can_login": False}
    assert entries[0].event.actor == f"scim:{world.general}/idp"
    # Entra ID sends booleans as strings ("True"); they are read as booleans.
    await world.client.patch(
        "/Users/dan", json=patch({"op": "Replace", "path": "active", "value": "True"})
    )
    assert (await world.platform.directory.users.get(SYSTEM_CALLER, "dan")).can_login
    created_inactive = await create(world, "ina", active=False)
    assert created_inactive["active"] is False


async def test_delete_removes_the_user_and_keeps_the_message_history(world: ScimWorld) -> None:
    await create(world, "del")
    assert (await world.client.delete("/Users/del")).status_code == 204
    assert_error(await world.client.get("/Users/del"), 404)
    assert_error(await world.client.delete("/Users/del"), 404)
    with pytest.raises(UnknownUserError):
        await world.platform.directory.users.get(SYSTEM_CALLER, "del")
    page = await world.platform.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value="del"),))
    )
    assert [r.values["email"] for r in page.records] == [None]  # kept, without the address
    # RFC 7644 §3.6: the deleted resource does not make the same userName a conflict.
    again = await create(world, "del")
    assert again["id"] != "del" and again["userName"] == "del"


# -- groups ---------------------------------------------------------------------------------------


async def test_groups_are_the_directory_groups(world: ScimWorld) -> None:
    for name in ("gina", "gus", "gil"):
        await create(world, name)
    r = await world.client.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Wound Care",
            "externalId": "g-1",
            "members": [{"value": "gina"}, {"value": "gus"}],
        },
    )
    assert r.status_code == 201, r.text
    group = r.json()
    gid = int(group["id"])
    assert group["externalId"] == "g-1" and {m["value"] for m in group["members"]} == {
        "gina",
        "gus",
    }
    directory = world.platform.directory
    assert [g.name for g in await directory.users.groups_of(SYSTEM_CALLER, "gina")] == [
        "Wound Care"
    ]
    user = (await world.client.get("/Users/gina")).json()
    assert user["groups"] == [{"value": str(gid), "display": "Wound Care", "type": "direct"}]
    ops = patch(
        {"op": "add", "path": "members", "value": [{"value": "gil"}]},
        {"op": "remove", "path": 'members[value eq "gus"]'},
        {"op": "replace", "path": "displayName", "value": "Wound Care Team"},
    )
    r = await world.client.patch(f"/Groups/{gid}", json=ops)
    assert r.status_code in (200, 204), r.text
    members = {u.login for u in await directory.groups.members(SYSTEM_CALLER, gid)}
    assert members == {"gina", "gil"}
    assert (await directory.groups.get(SYSTEM_CALLER, gid)).name == "Wound Care Team"
    found = (
        await world.client.get("/Groups", params={"filter": 'displayName eq "wound care team"'})
    ).json()
    assert [g["id"] for g in found["Resources"]] == [str(gid)]
    found = (
        await world.client.get(
            "/Groups", params={"filter": 'members[value eq "gil"]', "excludedAttributes": "members"}
        )
    ).json()
    assert [g["id"] for g in found["Resources"]] == [str(gid)] and "members" not in found[
        "Resources"
    ][0]
    dup = await world.client.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "WOUND CARE TEAM"}
    )
    assert_error(dup, 409, "uniqueness")
    bad = await world.client.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": "Ghosts", "members": [{"value": "nobody"}]},
    )
    assert_error(bad, 400, "invalidValue")
    assert "Ghosts" not in [
        g.name for g in await directory.groups.list_for(SYSTEM_CALLER, world.general)
    ]
    nested = await world.client.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Nest",
            "members": [{"value": str(gid), "type": "Group"}],
        },
    )
    assert_error(nested, 400, "invalidValue")
    r = await world.client.put(
        f"/Groups/{gid}", json={"schemas": [GROUP], "displayName": "Wound Care Team"}
    )
    assert r.status_code == 200 and "members" not in r.json()
    assert await directory.groups.members(SYSTEM_CALLER, gid) == []
    assert (await world.client.delete(f"/Groups/{gid}")).status_code == 204
    assert_error(await world.client.get(f"/Groups/{gid}"), 404)
