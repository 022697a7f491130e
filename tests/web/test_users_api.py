"""``/users``: create, find, profile, type, Can Login, unlock, PINs, delete — and their scope."""

from __future__ import annotations

import pytest

from carewire.directory.model import UnknownUserError, WrongPinError
from carewire.security.tokens import Role
from tests.web.conftest import assert_problem
from tests.web.directory_world import CLIENT_IP, PASSWORD, World, db_url, world

__all__ = ["db_url", "world"]


def _new(email: str = "jane.doe@gen.example", **more: object) -> dict[str, object]:
    return {"first_name": "Jane", "last_name": "Doe", "email": email, "pin": "2580", **more}


async def test_create_a_registered_user_and_an_invited_one(world: World) -> None:
    org = await world.hospital("General")
    await world.system.patch(
        f"/organisations/{org}", json={"settings": {"default_time_zone": "America/Chicago"}}
    )
    admin = await world.client("general", organisation=org)
    r = await admin.post(
        "/users", json=_new(password=PASSWORD, credentials="MD", user_type="Non-Physician")
    )
    assert r.status_code == 201, r.text
    jane = r.json()
    assert jane["login"] == "jane.doe" and jane["organisation_id"] == org
    assert (
        jane["is_registered"] is True
        and jane["has_pin"] is True
        and jane["login_state"] == "Login Enabled"
    )
    assert (
        jane["profile"]["time_zone"] == "America/Chicago" and jane["profile"]["credentials"] == "MD"
    )
    assert jane["user_type"] == "Non-Physician" and jane["name"] == "Doe, Jane"
    r = await admin.post("/users", json=_new("Jane.Doe@other.example", login="jdoe2"))
    assert r.status_code == 201
    assert r.json()["is_registered"] is False
    assert world.link_token("jane.doe@other.example", "/register/")
    assert r.json()["staff_id"] > jane["staff_id"]
    (entry, _) = await world.audit("directory.user.create")
    assert entry.event.actor == "api:general" and entry.event.remote_ip == CLIENT_IP
    assert "2580" not in str(entry.event.details) and PASSWORD not in str(entry.event.details)


async def test_duplicates_and_bad_fields_are_refused(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    cases = [
        (_new("JANE@staff.example"), 409, "email-taken", None),
        (_new("x@gen.example", login="jane"), 409, "login-taken", None),
        (_new("not an address"), 422, "invalid-email", "email"),
        (_new("y@gen.example", first_name=""), 422, "invalid-field", "first_name"),
        (_new("y@gen.example", office_phone="call me"), 422, "invalid-field", "office_phone"),
        (_new("y@gen.example", password="short"), 422, None, None),
        (_new("y@gen.example", groups=[999]), 404, "unknown-group", None),
    ]
    for body, status, code, field in cases:
        r = await world.system.post("/users", json={**body, "organisation": org})
        assert r.status_code == status, (body, r.text)
        if code is not None:
            problem = assert_problem(r, status, code)
            if field is not None:
                assert problem["field"] == field
    page = (await world.system.get("/users", params={"organisation": org})).json()
    assert [u["login"] for u in page["users"]] == ["jane"]


@pytest.mark.parametrize("pin", ["1234", "4321", "1111", "1987", "2049", "12a4", "258", "25800"])
async def test_a_pin_breaking_the_policy_is_refused(world: World, pin: str) -> None:
    org = await world.hospital("General")
    r = await world.system.post("/users", json={**_new(pin=pin), "organisation": org})
    problem = assert_problem(r, 422, "weak-pin")
    assert problem["field"] == "pin"
    assert (await world.system.get("/users", params={"organisation": org})).json()["total"] == 0


async def test_find_filters_sorts_and_pages(world: World) -> None:
    org = await world.hospital("General")
    other = await world.hospital("Other")
    await world.user(other, "zed", first="Ann", last="Zed")
    for login, first, last in (
        ("a1", "Ann", "Able"),
        ("b1", "Bea", "Baker"),
        ("c1", "Anna", "Cole"),
    ):
        await world.user(org, login, first=first, last=last)
    await world.system.post("/users/b1/convert", json={"user_type": "Non-Physician"})

    async def logins(**params: str | int) -> list[str]:
        r = await world.system.get("/users", params={"organisation": org, **params})
        assert r.status_code == 200, r.text
        return [u["login"] for u in r.json()["users"]]

    assert await logins() == ["a1", "b1", "c1"]
    assert await logins(first_name="an") == ["a1", "c1"]
    assert await logins(first_name="AN", last_name="col") == ["c1"]
    assert await logins(email="B1@STAFF") == ["b1"]
    assert await logins(user_type="Non-Physician") == ["b1"]
    assert await logins(order="desc") == ["c1", "b1", "a1"]
    assert await logins(sort="user_type") == ["b1", "a1", "c1"]  # Non-Physician first
    page = (
        await world.system.get("/users", params={"organisation": org, "limit": 2, "offset": 2})
    ).json()
    assert (page["total"], [u["login"] for u in page["users"]]) == (3, ["c1"])
    assert_problem(
        await world.system.get("/users", params={"organisation": org, "sort": "pin"}),
        422,
        "invalid-request",
    )
    assert_problem(await world.system.get("/users"), 422, "organisation-required")
    admin = await world.client("general", organisation=org)
    assert [u["login"] for u in (await admin.get("/users")).json()["users"]] == ["a1", "b1", "c1"]
    assert_problem(
        await admin.get("/users", params={"organisation": other}), 404, "unknown-organisation"
    )


async def test_profile_type_and_can_login(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    admin = await world.client("general", organisation=org)
    r = await admin.patch("/users/jane", json={"first_name": "Janet", "job_title": "Charge Nurse"})
    assert r.status_code == 200, r.text
    assert r.json()["first_name"] == "Janet" and r.json()["profile"]["job_title"] == "Charge Nurse"
    assert r.json()["profile"]["last_name"] == "Doe"
    assert_problem(await admin.patch("/users/jane", json={"email": "bad"}), 422, "invalid-email")
    r = await admin.post("/users/jane/convert", json={"user_type": "Non-Physician"})
    assert r.json()["user_type"] == "Non-Physician"
    r = await admin.put("/users/jane/can-login", json={"can_login": False})
    assert (r.json()["can_login"], r.json()["login_state"]) == (False, "Login Disabled")
    assert (await world.system.get("/users/jane")).json()["can_login"] is False
    r = await admin.put("/users/jane/can-login", json={"can_login": True})
    assert r.json()["login_state"] == "Login Enabled"
    entries = await world.audit("directory.user.update")
    assert {e.event.actor for e in entries} == {"api:general"}


async def test_unlock_needs_a_new_pin_that_follows_the_policy(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    accounts = world.platform.accounts.stores.accounts
    for _ in range(10):
        await accounts.record_failure("jane", world.clock.now(), lock_after=10)
    locked = (await world.system.get("/users/jane")).json()
    assert locked["is_locked"] is True
    assert locked["login_state"] == "Invalid login hard limit reached. Delaying login attempts."
    assert_problem(
        await world.system.post("/users/jane/unlock", json={"pin": "1234"}), 422, "weak-pin"
    )
    assert (await world.system.get("/users/jane")).json()["is_locked"] is True
    r = await world.system.post("/users/jane/unlock", json={"pin": "3917", "is_temporary": True})
    assert r.status_code == 200, r.text
    assert (r.json()["is_locked"], r.json()["pin_is_temporary"]) == (False, True)
    check = await world.platform.directory.pins.verify("jane", "3917")
    assert check.must_change is True


async def test_an_administrator_sets_a_pin_or_mails_a_reset_link(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "jane")
    assert (await world.system.put("/users/jane/pin", json={"pin": "8264"})).status_code == 204
    await world.platform.directory.pins.verify("jane", "8264")
    with pytest.raises(WrongPinError):
        await world.platform.directory.pins.verify("jane", "2580")
    assert_problem(await world.system.put("/users/jane/pin", json={"pin": "0000"}), 422, "weak-pin")
    (entry,) = await world.audit("directory.pin.set")
    assert "8264" not in str(entry.event.details)
    r = await world.system.post("/users/jane/pin-reset")
    assert r.status_code == 202 and r.json() == {
        "detail": "Success. A PIN Reset email has been sent to the user."
    }
    assert world.link_token("jane@staff.example", "/pin-reset/")
    world.mailer.refuse.add("jane@staff.example")
    assert_problem(await world.system.post("/users/jane/pin-reset"), 502, "mail-failed")


async def test_delete_a_user_but_never_the_last_administrator(world: World) -> None:
    org = await world.hospital("General")
    await world.user(org, "boss", admin=True)
    await world.user(org, "jane")
    await world.group(org, "Nurses", "jane")
    assert [g["name"] for g in (await world.system.get("/users/jane/groups")).json()["groups"]] == [
        "Nurses"
    ]
    assert (await world.system.delete("/users/jane")).status_code == 204
    assert_problem(await world.system.get("/users/jane"), 404, "unknown-user")
    assert_problem(await world.system.delete("/users/jane"), 404, "unknown-user")
    assert_problem(await world.system.delete("/users/boss"), 409, "last-admin")
    assert_problem(
        await world.system.patch("/users/boss", json={"is_org_admin": False}), 409, "last-admin"
    )
    with pytest.raises(UnknownUserError):  # the account and its PIN are gone
        await world.platform.directory.pins.verify("jane", "2580")


async def test_another_organisations_user_is_not_found_and_auditors_cannot_write(
    world: World,
) -> None:
    mine, theirs = await world.hospital("Mine"), await world.hospital("Theirs")
    await world.user(theirs, "tom")
    admin = await world.client("mine", organisation=mine)
    for method, path, body in (
        ("GET", "/users/tom", None),
        ("PATCH", "/users/tom", {"first_name": "X"}),
        ("POST", "/users/tom/convert", {"user_type": "Physician"}),
        ("PUT", "/users/tom/can-login", {"can_login": False}),
        ("POST", "/users/tom/unlock", {"pin": "3917"}),
        ("PUT", "/users/tom/pin", {"pin": "3917"}),
        ("POST", "/users/tom/pin-reset", None),
        ("GET", "/users/tom/groups", None),
        ("GET", "/users/tom/devices", None),
        ("DELETE", "/users/tom", None),
    ):
        r = await admin.request(method, path, json=body)
        assert_problem(r, 404, "unknown-user")
    r = await admin.post("/users", json={**_new(), "organisation": theirs})
    assert_problem(r, 404, "unknown-organisation")
    reader = await world.client("reader", role=Role.READ_ONLY, organisation=theirs)
    assert (await reader.get("/users/tom")).status_code == 200
    for c in (reader, world.auditor):
        assert_problem(await c.patch("/users/tom", json={"first_name": "X"}), 403, "forbidden")
        assert_problem(
            await c.post("/users", json={**_new(), "organisation": theirs}), 403, "forbidden"
        )
        assert_problem(await c.delete("/users/tom"), 403, "forbidden")
    assert (await world.system.get("/users/tom")).json()["first_name"] == "Jane"
    assert not await world.audit("directory.user.update")
