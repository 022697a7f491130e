"""``/groups``: create, rename, members, delete (permissions fall back to none), CSV import."""

from __future__ import annotations

from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, World, db_url, world

__all__ = ["db_url", "world"]


async def test_create_and_rename(world: World) -> None:
    org = await world.hospital("General")
    admin = await world.client("general", organisation=org)
    r = await admin.post("/groups", json={"name": "Physical Therapy"})
    assert r.status_code == 201, r.text
    pt = r.json()
    assert (pt["name"], pt["slug"], pt["member_count"]) == (
        "Physical Therapy",
        "physical-therapy",
        0,
    )
    assert pt["whole_group_messaging"] is False and pt["organisation_id"] == org
    assert_problem(
        await admin.post("/groups", json={"name": "physical THERAPY"}), 409, "name-taken"
    )
    for bad in ("", "   ", "x" * 65, "bell\x07"):
        problem = assert_problem(
            await admin.post("/groups", json={"name": bad}), 422, "invalid-field"
        )
        assert problem["field"] == "name"
    await admin.post("/groups", json={"name": "Cardiology"})
    r = await admin.patch(f"/groups/{pt['id']}", json={"name": "PT", "whole_group_messaging": True})
    assert (r.json()["name"], r.json()["slug"], r.json()["whole_group_messaging"]) == (
        "PT",
        "physical-therapy",
        True,
    )
    assert_problem(
        await admin.patch(f"/groups/{pt['id']}", json={"name": "cardiology"}), 409, "name-taken"
    )
    names = [g["name"] for g in (await admin.get("/groups")).json()["groups"]]
    assert names == ["Cardiology", "PT"]
    assert [
        g["name"] for g in (await admin.get("/groups", params={"name": "card"})).json()["groups"]
    ] == ["Cardiology"]
    entries = await world.audit("directory.group.update")
    assert entries[0].event.details["after"] == {"name": "PT", "whole_group_messaging": True}
    assert entries[0].event.remote_ip == CLIENT_IP


async def test_members_come_from_the_groups_organisation(world: World) -> None:
    org, other = await world.hospital("General"), await world.hospital("Other")
    for login, last in (("ann", "Zane"), ("bea", "Able")):
        await world.user(org, login, last=last)
    await world.user(other, "oscar")
    admin = await world.client("general", organisation=org)
    gid = (await admin.post("/groups", json={"name": "Nurses"})).json()["id"]
    r = await admin.post(f"/groups/{gid}/members", json={"logins": ["ann", "BEA"]})
    assert r.status_code == 200 and r.json()["member_count"] == 2
    assert_problem(
        await admin.post(f"/groups/{gid}/members", json={"logins": ["oscar"]}), 404, "unknown-user"
    )
    assert_problem(
        await admin.post(f"/groups/{gid}/members", json={"logins": ["ann", "ghost"]}),
        404,
        "unknown-user",
    )
    members = (await admin.get(f"/groups/{gid}/members")).json()["members"]
    assert [m["login"] for m in members] == ["bea", "ann"]  # by last name
    assert world.platform.directory.index.members_of(gid) == {"ann", "bea"}
    r = await admin.post(f"/groups/{gid}/members/remove", json={"logins": ["bea"]})
    assert r.json()["member_count"] == 1
    assert (await admin.delete(f"/groups/{gid}/members/ann")).status_code == 204
    assert (await admin.get(f"/groups/{gid}")).json()["member_count"] == 0
    assert (await admin.get("/users/ann")).status_code == 200  # still in the organisation
    assert_problem(
        await admin.post(f"/groups/{gid}/members", json={"logins": []}), 422, "invalid-request"
    )


async def test_deleting_a_permission_group_makes_the_affiliation_allow_no_one(world: World) -> None:
    h, other = await world.hospital("Hub"), await world.hospital("Spoke")
    await world.user(h, "hana")
    await world.user(other, "sam")
    community = await world.system.post(f"/communities/{h}/members", json={"organisation": other})
    assert community.status_code == 201
    aff = (await world.system.get("/affiliations", params={"organisation": h})).json()[
        "affiliations"
    ][0]
    group = await world.group(h, "Liaisons", "hana")
    body = {"organisation": h, "mode": "groups", "groups": [group.id]}
    r = await world.system.put(f"/affiliations/{aff['affiliation']['id']}/permission", json=body)
    assert r.status_code == 200, r.text
    assert world.platform.directory.may_message("hana", "sam")
    assert (await world.system.delete(f"/groups/{group.id}")).status_code == 204
    assert_problem(await world.system.get(f"/groups/{group.id}"), 404, "unknown-group")
    row = (await world.system.get("/affiliations", params={"organisation": h})).json()[
        "affiliations"
    ][0]
    assert row["permission"] == {"mode": "none", "groups": []}
    assert not world.platform.directory.may_message("hana", "sam")


async def test_csv_import_creates_groups_and_memberships(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "ann")
    await world.group(org, "Cardiology")
    admin = await world.client("general", organisation=org)
    csv = (
        "Department,Email\n"
        "Cardiology,ann@staff.example\n"
        "ICU,\n"
        ",ann@staff.example\n"
        "icu,stranger@else.example\n"
        "Oncology,not-an-address\n"
    )
    r = await admin.post("/groups/import", files={"file": ("groups.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["created"] == ["ICU"] and out["existing"] == ["Cardiology"]
    assert out["members_added"] == 1
    assert out["problems"] == [
        {"line": 4, "message": "Department is empty."},
        {"line": 5, "message": "stranger@else.example is not a user of this organisation."},
        {"line": 6, "message": "Invalid email address: not-an-address"},
    ]
    groups = {g["name"]: g["member_count"] for g in (await admin.get("/groups")).json()["groups"]}
    assert groups == {"Cardiology": 1, "ICU": 0}
    r = await admin.post(
        "/groups/import", files={"file": ("g.csv", b"Email\nann@staff.example\n", "text/csv")}
    )
    assert_problem(r, 422, "invalid-csv")


async def test_another_organisations_groups_are_not_found(world: World) -> None:
    mine, theirs = await world.hospital("Mine"), await world.hospital("Theirs")
    await world.user(theirs, "tom")
    group = await world.group(theirs, "Theirs Only", "tom")
    admin = await world.client("mine", organisation=mine)
    for method, path, body in (
        ("GET", f"/groups/{group.id}", None),
        ("PATCH", f"/groups/{group.id}", {"name": "Mine Now"}),
        ("DELETE", f"/groups/{group.id}", None),
        ("GET", f"/groups/{group.id}/members", None),
        ("POST", f"/groups/{group.id}/members", {"logins": ["tom"]}),
        ("POST", f"/groups/{group.id}/members/remove", {"logins": ["tom"]}),
        ("DELETE", f"/groups/{group.id}/members/tom", None),
    ):
        assert_problem(await admin.request(method, path, json=body), 404, "unknown-group")
    assert_problem(
        await admin.get("/groups", params={"organisation": theirs}), 404, "unknown-organisation"
    )
    files = {"file": ("g.csv", b"Department\nX\n", "text/csv")}
    r = await admin.post("/groups/import", data={"organisation": str(theirs)}, files=files)
    assert_problem(r, 404, "unknown-organisation")
    reader = await world.client("reader", role=Role.READ_ONLY, organisation=theirs)
    assert (await reader.get(f"/groups/{group.id}/members")).status_code == 200
    for c in (reader, world.auditor):
        assert_problem(await c.patch(f"/groups/{group.id}", json={"name": "X"}), 403, "forbidden")
        assert_problem(
            await c.post("/groups", json={"organisation": theirs, "name": "X"}), 403, "forbidden"
        )
    after = (await world.system.get(f"/groups/{group.id}")).json()
    assert (after["name"], after["member_count"]) == ("Theirs Only", 1)
