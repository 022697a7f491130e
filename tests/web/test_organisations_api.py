"""``/organisations`` and ``/communities``: hospitals, practices, settings, members, scoping."""

from __future__ import annotations

from typing import Any

from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, World, db_url, world

__all__ = ["db_url", "world"]

HOSPITAL: dict[str, Any] = {
    "name": "Abelard Medical Center",
    "office_number": "(408) 882-5830",
    "admin": {"email": "Chief@Abelard.example", "first_name": "Cora", "last_name": "Chief"},
}


async def test_a_system_administrator_creates_a_hospital_and_its_admin_is_invited(
    world: World,
) -> None:
    r = await world.system.post(
        "/organisations",
        json={**HOSPITAL, "settings": {"pin_length": 6, "message_expiration": "2w"}},
    )
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["kind"] == "hospital" and org["name"] == "Abelard Medical Center"
    assert org["settings"]["pin_length"] == 6
    assert org["settings"]["message_expiration_label"] == "2 Weeks"
    assert org["settings"]["high_priority_sound_seconds"] == 30
    assert org["settings"]["retention_value"] is None
    assert world.link_token("chief@abelard.example", "/register/")
    (entry,) = await world.audit("directory.organisation.create")
    assert entry.event.actor == "api:system" and entry.event.remote_ip == CLIENT_IP
    assert entry.event.target == f"organisation:{org['id']}"

    again = await world.system.post(
        "/organisations", json={**HOSPITAL, "name": "ABELARD medical center"}
    )
    assert_problem(again, 409, "name-taken")
    listed = (await world.system.get("/organisations")).json()["organisations"]
    assert [o["name"] for o in listed] == ["Abelard Medical Center"]


async def test_bad_hospital_fields_are_refused_by_field(world: World) -> None:
    await world.user(await world.hospital("Other"), "taken")
    cases = [
        ({**HOSPITAL, "name": "  "}, 422, "invalid-field", "name"),
        ({**HOSPITAL, "office_number": "call me"}, 422, "invalid-field", "office_number"),
        ({**HOSPITAL, "settings": {"high_priority_sound_seconds": 7}}, 422, "invalid-field", None),
        (
            {**HOSPITAL, "settings": {"default_time_zone": "Mars/Olympus"}},
            422,
            "invalid-field",
            None,
        ),
        ({**HOSPITAL, "settings": {"retention_value": 5}}, 422, "invalid-field", "retention_value"),
        (
            {**HOSPITAL, "admin": {**HOSPITAL["admin"], "email": "not-an-address"}},
            422,
            "invalid-email",
            "email",
        ),
        (
            {**HOSPITAL, "admin": {**HOSPITAL["admin"], "email": "taken@staff.example"}},
            409,
            "email-taken",
            None,
        ),
        ({**HOSPITAL, "kind": "practice"}, 422, "invalid-request", None),
    ]
    for body, status, code, field in cases:
        problem = assert_problem(await world.system.post("/organisations", json=body), status, code)
        if field is not None:
            assert problem["field"] == field, problem
    names = [o["name"] for o in (await world.system.get("/organisations")).json()["organisations"]]
    assert names == ["Other"]


async def test_only_a_system_administrator_creates_hospitals(world: World) -> None:
    mine = await world.hospital("Mine")
    admin = await world.client("mine-admin", organisation=mine)
    assert_problem(await admin.post("/organisations", json=HOSPITAL), 403, "forbidden")
    assert_problem(await world.auditor.post("/organisations", json=HOSPITAL), 403, "forbidden")
    assert len((await world.system.get("/organisations")).json()["organisations"]) == 1


async def test_an_organisation_token_sees_only_its_organisation(world: World) -> None:
    mine, theirs = await world.hospital("Mine"), await world.hospital("Theirs")
    await world.user(theirs, "tina", admin=True)
    admin = await world.client("mine-admin", organisation=mine)
    listed = (await admin.get("/organisations")).json()["organisations"]
    assert [o["id"] for o in listed] == [mine]
    for path in ("", "/members", "/administrators"):
        assert_problem(
            await admin.get(f"/organisations/{theirs}{path}"), 404, "unknown-organisation"
        )
    r = await admin.patch(f"/organisations/{theirs}", json={"office_number": "555-123-4567"})
    assert_problem(r, 404, "unknown-organisation")
    practice = {"name": "P", "office_number": "555-123-4567", "admin": HOSPITAL["admin"]}
    r = await admin.post(f"/organisations/{theirs}/practices", json=practice)
    assert_problem(r, 404, "unknown-organisation")
    theirs_now = (await world.system.get(f"/organisations/{theirs}")).json()
    assert theirs_now["office_number"] == "(555) 010-0000"
    names = (await admin.get("/organisation-names", params={"q": "i"})).json()["organisations"]
    assert [n["name"] for n in names] == ["Theirs"]  # the type-ahead: names only, not its own


async def test_update_changes_only_what_is_given(world: World) -> None:
    mine = await world.hospital("Mine")
    admin = await world.client("mine-admin", organisation=mine)
    r = await admin.patch(
        f"/organisations/{mine}",
        json={
            "settings": {
                "whole_org_messaging": True,
                "retention_value": 2,
                "retention_unit": "years",
            }
        },
    )
    assert r.status_code == 200, r.text
    s = r.json()["settings"]
    assert s["whole_org_messaging"] is True and (s["retention_value"], s["retention_unit"]) == (
        2,
        "years",
    )
    assert s["pin_length"] == 4 and s["default_time_zone"] == "America/New_York"
    r = await admin.patch(f"/organisations/{mine}", json={"name": "Mine Renamed"})
    assert (
        r.json()["name"] == "Mine Renamed" and r.json()["settings"]["whole_org_messaging"] is True
    )
    r = await admin.patch(
        f"/organisations/{mine}",
        json={"settings": {"retention_value": None, "retention_unit": None}},
    )
    assert r.json()["settings"]["retention_value"] is None
    assert_problem(
        await admin.patch(f"/organisations/{mine}", json={"settings": {"pin_length": 5}}),
        422,
        "invalid-field",
    )
    entries = await world.audit("directory.organisation.update")
    assert entries[-1].event.details["after"] == {
        "retention": "2 years",
        "whole_org_messaging": True,
    }
    assert all(e.event.actor == "api:mine-admin" for e in entries)


async def test_auditors_read_but_never_write(world: World) -> None:
    mine = await world.hospital("Mine")
    reader = await world.client("mine-reader", role=Role.READ_ONLY, organisation=mine)
    assert (await reader.get(f"/organisations/{mine}")).status_code == 200
    assert (await world.auditor.get(f"/organisations/{mine}/members")).status_code == 200
    for c in (reader, world.auditor):
        assert_problem(
            await c.patch(f"/organisations/{mine}", json={"name": "X"}), 403, "forbidden"
        )
    assert (await world.system.get(f"/organisations/{mine}")).json()["name"] == "Mine"
    assert not await world.audit("directory.organisation.update")
    refused = await world.audit("api.auth")
    assert {e.event.actor for e in refused} == {"api:mine-reader", "api:auditor"}


async def test_a_hospital_creates_a_practice_affiliated_at_once(world: World) -> None:
    mine = await world.hospital("Mine")
    admin = await world.client("mine-admin", organisation=mine)
    body: dict[str, Any] = {
        "name": "Corner Clinic",
        "office_number": "(408) 555-0100",
        "admin": {"email": "boss@corner.example", "first_name": "Bo", "last_name": "Ss"},
        "emails": ["nurse@corner.example"],
        "csv": "Email,First Name,Department\nmed@corner.example,Meg,Front Desk\nnot-an-email,X,\n",
    }
    r = await admin.post(f"/organisations/{mine}/practices", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["detail"] == "Practice Corner Clinic was created."
    practice = out["practice"]["id"]
    assert out["practice"]["kind"] == "practice" and out["admin_invitation"]["is_admin"] is True
    assert {i["email"] for i in out["users"]["invited"]} == {
        "nurse@corner.example",
        "med@corner.example",
    }
    assert out["users"]["problems"] == [
        {"line": 3, "message": "Invalid email address: not-an-email"}
    ]
    assert out["users"]["groups_created"] == ["Front Desk"]
    rows = (await admin.get("/affiliations")).json()["affiliations"]
    assert [(r["other"]["id"], r["direction"], r["label"]) for r in rows] == [
        (practice, "active", "boss@corner.example")
    ]
    # the practice's own token may not create practices
    p_admin = await world.client("practice-admin", organisation=practice)
    again = {**body, "name": "Another", "admin": {**body["admin"], "email": "b2@corner.example"}}
    del again["csv"]
    assert_problem(
        await p_admin.post(f"/organisations/{practice}/practices", json=again),
        409,
        "affiliation-refused",
    )


async def test_a_bad_typed_address_creates_no_practice(world: World) -> None:
    mine = await world.hospital("Mine")
    body = {
        "name": "Corner Clinic",
        "office_number": "(408) 555-0100",
        "admin": {"email": "boss@corner.example", "first_name": "Bo", "last_name": "Ss"},
        "emails": ["good@corner.example", "bad@"],
    }
    r = await world.system.post(f"/organisations/{mine}/practices", json=body)
    assert_problem(
        r, 422, "invalid-email", detail="Invalid email address: bad@. No invitations were sent."
    )
    assert len((await world.system.get("/organisations")).json()["organisations"]) == 1
    assert not world.mailer.to("good@corner.example")


async def test_members_are_paged_by_name_with_their_status(world: World) -> None:
    mine = await world.hospital("Mine")
    for i in range(12):
        await world.user(mine, f"u{i:02}", first=f"F{i:02}", last=f"L{11 - i:02}", admin=i == 3)
    r = await world.system.get(f"/organisations/{mine}/members")
    page = r.json()
    assert page["total"] == 12 and page["limit"] == 10 and len(page["members"]) == 10
    assert page["members"][0] == {"login": "u11", "name": "L00, F11", "status": "None"}
    rest = (await world.system.get(f"/organisations/{mine}/members", params={"offset": 10})).json()
    assert [m["login"] for m in rest["members"]] == ["u01", "u00"]
    assert_problem(
        await world.system.get(f"/organisations/{mine}/members", params={"limit": 0}),
        422,
        "invalid-request",
    )
    admins = (await world.system.get(f"/organisations/{mine}/administrators")).json()
    assert [a["login"] for a in admins["administrators"]] == ["u03"]


async def test_communities_hold_organisations_never_communities(world: World) -> None:
    h, other, third = (
        await world.hospital("Hub"),
        await world.hospital("Spoke"),
        await world.hospital("Third"),
    )
    r = await world.system.post(f"/communities/{h}/members", json={"community": other})
    assert_problem(
        r, 422, "not-a-community", detail="A community holds organisations, never other communities"
    )
    r = await world.system.post(f"/communities/{h}/members", json={"organisation": h})
    assert_problem(r, 422, "not-a-community")
    r = await world.system.post(f"/communities/{h}/members", json={"organisation": other})
    assert r.status_code == 201, r.text
    assert [m["name"] for m in r.json()["members"]] == ["Hub", "Spoke"]
    assert_problem(
        await world.system.post(f"/communities/{h}/members", json={"organisation": other}),
        409,
        "affiliation-refused",
    )
    practice = (
        await world.system.post(
            f"/organisations/{h}/practices",
            json={
                "name": "Clinic",
                "office_number": "555-123-4567",
                "admin": {"email": "p@clinic.example", "first_name": "P", "last_name": "Q"},
            },
        )
    ).json()["practice"]["id"]
    r = await world.system.post(f"/communities/{practice}/members", json={"organisation": third})
    assert_problem(r, 422, "not-a-community")
    assert_problem(await world.system.get(f"/communities/{practice}"), 404, "unknown-community")
    community = (await world.system.get(f"/communities/{h}")).json()
    assert [m["name"] for m in community["members"]] == ["Hub", "Clinic", "Spoke"]
    spoke = await world.client("spoke-admin", organisation=other)
    assert_problem(
        await spoke.post(f"/communities/{h}/members", json={"organisation": third}),
        403,
        "forbidden",
    )
    seen = (await spoke.get("/communities")).json()["communities"]
    assert [c["hospital"]["name"] for c in seen] == ["Hub", "Spoke"]
    third_admin = await world.client("third-admin", organisation=third)
    assert_problem(await third_admin.get(f"/communities/{h}"), 404, "unknown-community")
