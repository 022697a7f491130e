"""Manage Users: Find Users, Create User Profile, Update User Profile and the actions beside it."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest

from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    DeviceState,
    LoginState,
    StaffType,
    UnknownUserError,
)
from carewire.security.console_auth import Role
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env"]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def device(env: Env, login: str, resource: str = "phone") -> str:
    """A DEVICES record of ``login`` as clinical presence makes one; its name."""
    users = await env.platform.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
    )
    name = f"{login}/{resource}"
    await env.platform.datasets.create(
        "DEVICES",
        {
            "name": name,
            "status": "Registered",
            "vendor": "XMPP",
            "usr": users.records[0].id,
            "last_active_at": datetime(2026, 1, 1, 17, 3, 44, tzinfo=UTC),
        },
        origin=Origin(actor="test"),
    )
    return name


def profile_form(**changes: str) -> dict[str, str]:
    """Every field of the profile form, filled."""
    values = {
        "title": "Dr",
        "first_name": "Jane",
        "last_name": "Doe",
        "middle_name": "Q",
        "credentials": "MD",
        "job_title": "Cardiologist",
        "email": "jane.doe@general.example",
        "cell_number": "(555) 669-2750",
        "time_zone": "US/Pacific",
        "address1": "1 Main St",
        "address2": "Suite 2",
        "city": "San Jose",
        "state": "CA",
        "zip": "95110",
        "office_phone": "3105551212",
        "office_fax": "3105551213",
        "staff_type": "Physician",
        "specialty": "Cardiology",
        "medical_school": "State U",
        "residency": "General",
        "fellowship": "Heart",
        "practice_description": "Hearts, mostly.",
        "home_page_url": "https://example.org/jane",
        "pin": "5822",
        "pin_is_temporary": "no",
        "password": "",
        "password_confirm": "",
    }
    values.update(changes)
    return values


async def test_find_users_searches_sorts_and_pages(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    for n in range(12):
        await env.user(general.id, f"u{n:02}", first=f"Ann{n:02}", last=f"Zed{n:02}")
    await env.user(general.id, "bob", first="Bob", last="Adams")
    await env.user(other.id, "hidden", first="Ann", last="Hidden")
    await env.directory.users.convert(SYSTEM_CALLER, "bob", StaffType.NON_PHYSICIAN)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = await admin.get(f"/orgs/{general.id}/users")
    text = page.text
    for label in ("FIND USERS", "First Name", "Last Name", "User ID (Email)", "User Type"):
        assert label in text, label
    assert "Results per page" in text and "13 users" in text
    assert text.count('aria-label="View ') == 10  # ten a page by default
    assert text.index("Adams, Bob") < text.index("Zed00, Ann00")  # by Name
    assert "Hidden" not in text  # another hospital's user, not in the list
    second = await admin.get(f"/orgs/{general.id}/users?page=2")
    assert second.text.count('aria-label="View ') == 3
    by25 = await admin.get(f"/orgs/{general.id}/users?limit=25")
    assert by25.text.count('aria-label="View ') == 13
    down = await admin.get(f"/orgs/{general.id}/users?sort=-name&limit=25")
    assert down.text.index("Zed11, Ann11") < down.text.index("Adams, Bob")
    assert 'aria-sort="descending"' in down.text
    by_type = await admin.get(f"/orgs/{general.id}/users?sort=type&limit=25")
    assert by_type.text.index("Adams, Bob") < by_type.text.index("Zed00, Ann00")  # Non-Physician
    by_type = await admin.get(f"/orgs/{general.id}/users?sort=-type&limit=25")
    assert by_type.text.index("Adams, Bob") > by_type.text.index("Zed00, Ann00")
    found = await admin.get(f"/orgs/{general.id}/users?first_name=ann0&last_name=zed")
    assert "10 users" in found.text and "Adams" not in found.text
    found = await admin.get(f"/orgs/{general.id}/users?email=BOB@&staff_type=Non-Physician")
    assert "1 user" in found.text and "Adams, Bob" in found.text
    found = await admin.get(f"/orgs/{general.id}/users?first_name=ann&last_name=hidden")
    assert "No users match." in found.text


async def test_create_user_profile_with_every_field(env: Env) -> None:
    general = await env.hospital("General Hospital")
    cardio = await env.group(general.id, "Cardiology")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/users/new"
    shown = await admin.get(page)
    for label in (
        "Create User Profile",
        "Basic Information",
        "Credentials",
        "Job Title",
        "Cell (Private)",
        "PIN is Temporary (Change at next login)",
        "Select Time Zone",
        "Carewire Admin",
        "Office",
        "Office Fax",
        "Staff Type",
        "Medical School",
        "Home Page URL",
        "Send invitation",
        "Cardiology",
    ):
        assert label in shown.text, label
    data = profile_form(
        login="jdoe", password="correct horse battery", password_confirm="correct horse battery"
    )
    r = await form_post(admin, page, page, {**data, "group": str(cardio.id), "is_org_admin": "on"})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/orgs/{general.id}/user/jdoe?m=created"
    user = await env.directory.users.get(SYSTEM_CALLER, "jdoe")
    p = user.profile
    assert (p.title, p.credentials, p.job_title, p.city, p.office_fax) == (
        "Dr",
        "MD",
        "Cardiologist",
        "San Jose",
        "3105551213",
    )
    assert p.specialty == "Cardiology" and p.home_page_url == "https://example.org/jane"
    assert p.time_zone == "US/Pacific" and user.is_org_admin and user.is_registered
    assert [g.name for g in await env.directory.users.groups_of(SYSTEM_CALLER, "jdoe")] == [
        "Cardiology"
    ]
    assert env.mailer.to("jane.doe@general.example") == []  # registered: nothing to invite to


async def test_create_user_without_password_sends_the_invitation(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/users/new"
    r = await form_post(admin, page, page, {**profile_form(), "send_invitation": "on"})
    assert r.status_code == 303, r.text
    user = await env.directory.users.find_by_email(SYSTEM_CALLER, "jane.doe@general.example")
    assert user.login == "jane.doe" and not user.is_registered
    (mail,) = env.mailer.to("jane.doe@general.example")
    assert "/register/" in mail.body
    shown = await admin.get(r.headers["location"])
    assert "This user has not registered yet." in shown.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"first_name": ""}, "First Name is required."),
        ({"email": "not-an-address"}, "Invalid email address"),
        ({"pin": "1234"}, "PIN"),
        ({"pin": ""}, "PIN is required."),
        ({"pin": "12a4"}, "PIN"),
        ({"cell_number": "call me"}, "Cell (Private) must be a phone number"),
        ({"home_page_url": "ftp://x"}, "Home Page URL must be an http:// or https:// address."),
        ({"time_zone": "Nowhere/Land"}, "is not a known time zone"),
        ({"password": "short", "password_confirm": "short"}, "12"),
        ({"password": "correct horse battery", "password_confirm": "other"}, "differ"),
        ({"email": "taken@staff.example"}, "another user"),
        ({"login": "taken"}, "taken"),
    ],
)
async def test_create_user_refusals(env: Env, change: dict[str, str], message: str) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "taken")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/users/new"
    r = await form_post(admin, page, page, profile_form(**change))
    assert r.status_code == 400, r.text[:1000]
    assert message in r.text.replace("&#39;", "'"), r.text[:3000]
    assert 'aria-invalid="true"' in r.text
    assert 'value="Cardiologist"' in r.text  # the form as it was sent
    found = await env.directory.users.find(SYSTEM_CALLER, general.id)
    assert [u.login for u in found.items] == ["taken"]


async def test_update_user_profile(env: Env) -> None:
    general = await env.hospital("General Hospital")
    jane = await env.user(general.id, "jdoe", first="Jane", last="Doe")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/user/jdoe"
    shown = await admin.get(page)
    for label in (
        "Update User Profile",
        "EDIT USER",
        "StaffID",
        str(jane.staff_id),
        "Drop new profile image here to upload.",
        "Reset PIN",
        "Can Login",
        "Login Enabled",
        "User's Devices",
        "Convert to",
        "Non-Physician Staff",
        ">Update</button>",
        "Delete User",
    ):
        assert label in shown.text, label
    data = profile_form(email="jdoe@staff.example", first_name="Janet", pin="", can_login="yes")
    r = await form_post(admin, page, page, data, files={"photo": ("me.png", PNG, "image/png")})
    assert r.status_code == 303, r.text
    assert "The user profile was updated." in (await admin.get(r.headers["location"])).text
    user = await env.directory.users.get(SYSTEM_CALLER, "jdoe")
    assert user.profile.first_name == "Janet" and user.profile.photo_type == "image/png"
    photo = await admin.get(f"{page}/photo")
    assert photo.status_code == 200 and photo.content == PNG
    assert photo.headers["content-type"] == "image/png"
    r = await form_post(admin, page, page, {**data, "pin": "9731"})
    assert r.status_code == 303
    assert not (await env.directory.pins.verify("jdoe", "9731")).must_change
    r = await form_post(admin, page, page, {**data, "can_login": "no"})
    assert r.status_code == 303
    user = await env.directory.users.get(SYSTEM_CALLER, "jdoe")
    assert not user.can_login and user.login_state is LoginState.DISABLED
    assert "Login Disabled</option>" in (await admin.get(page)).text
    r = await form_post(admin, page, page, {**data, "first_name": ""})
    assert r.status_code == 400 and "First Name is required." in r.text
    r = await form_post(
        admin, page, page, data, files={"photo": ("x.txt", b"not an image", "text/plain")}
    )
    assert r.status_code == 400 and "The photo must be a PNG, JPEG, GIF or WebP image." in r.text


async def test_locked_user_is_unlocked_with_a_new_pin(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "jdoe")
    for _ in range(10):
        await env.platform.core.accounts.stores.accounts.record_failure(
            "jdoe", env.clock.now(), lock_after=10
        )
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/user/jdoe"
    shown = await admin.get(page)
    assert "Invalid login hard limit reached. Delaying login attempts." in shown.text
    data = profile_form(email="jdoe@staff.example", pin="", can_login="yes")
    r = await form_post(admin, page, page, data)
    assert r.status_code == 400 and "Give a new PIN to unlock the user." in r.text
    r = await form_post(admin, page, page, {**data, "pin": "1111"})
    assert r.status_code == 400  # the PIN policy refuses it; still locked
    assert (await env.directory.users.get(SYSTEM_CALLER, "jdoe")).is_locked
    r = await form_post(admin, page, page, {**data, "pin": "5822", "pin_is_temporary": "yes"})
    assert r.status_code == 303, r.text
    user = await env.directory.users.get(SYSTEM_CALLER, "jdoe")
    assert not user.is_locked and user.login_state is LoginState.ENABLED
    assert user.pin_is_temporary
    assert (await env.directory.pins.verify("jdoe", "5822")).must_change


async def test_reset_pin_convert_groups_and_delete(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "boss", admin=True)
    await env.user(general.id, "jdoe")
    cardio = await env.group(general.id, "Cardiology", "jdoe")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/user/jdoe"
    r = await form_post(admin, page, f"{page}/reset-pin", {})
    assert r.status_code == 303
    done = await admin.get(r.headers["location"])
    assert "Success. A PIN Reset email has been sent to the user." in done.text
    (mail,) = env.mailer.to("jdoe@staff.example")
    assert "/pin-reset/" in mail.body
    r = await form_post(admin, page, f"{page}/convert", {"staff_type": "Non-Physician"})
    assert r.status_code == 303
    shown = await admin.get(r.headers["location"])
    assert "The user account is converted to the new type." in shown.text
    assert "No additional attributes are available for non-physicians." in shown.text
    assert (await env.directory.users.get(SYSTEM_CALLER, "jdoe")).profile.staff_type is (
        StaffType.NON_PHYSICIAN
    )
    assert "Cardiology" in shown.text and "Subgroup" in shown.text and "Organization" in shown.text
    r = await form_post(admin, page, f"{page}/groups/{cardio.id}/remove", {})
    assert r.status_code == 303
    assert await env.directory.users.groups_of(SYSTEM_CALLER, "jdoe") == []
    confirm = await admin.get(f"{page}/delete")
    assert (
        "Delete Jane Doe? The user will be removed from the organization, all groups and the "
        "directory. Messages already sent are kept until purged by retention." in confirm.text
    )
    r = await admin.post(f"{page}/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert r.status_code == 303
    with pytest.raises(UnknownUserError):
        await env.directory.users.get(SYSTEM_CALLER, "jdoe")
    assert (await admin.get(page)).status_code == 404
    boss = f"/orgs/{general.id}/user/boss"
    r = await form_post(admin, boss, f"{boss}/delete", {})
    assert r.status_code == 409 and "at least one administrator" in r.text


async def test_devices_disable_enable_wipe_and_delete(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "jdoe")
    name = await device(env, "jdoe")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/user/jdoe"
    shown = await admin.get(page)
    assert "Device is active. Push notification active." in shown.text
    assert "Thu Jan 01 17:03:44 UTC 2026" in shown.text
    assert "Disable Notification" in shown.text and "Wipe Device" in shown.text
    assert "Delete Device Info" not in shown.text
    r = await form_post(admin, page, f"{page}/devices/push", {"device": name, "enabled": "no"})
    assert r.status_code == 303
    shown = await admin.get(page)
    assert "Device is active. Push notifications not active." in shown.text
    assert "Enable Notification" in shown.text
    r = await form_post(admin, page, f"{page}/devices/push", {"device": name, "enabled": "yes"})
    assert r.status_code == 303
    confirm = await admin.get(f"{page}/devices/wipe?device={name}")
    assert "Wipe jdoe/phone?" in confirm.text
    assert (await admin.get(f"{page}/devices/wipe?device=jdoe/other")).status_code == 404
    r = await admin.post(
        f"{page}/devices/wipe", data={"csrf_token": csrf_of(confirm.text), "device": name}
    )
    assert r.status_code == 303
    shown = await admin.get(r.headers["location"])
    assert "Remote wipe requested." in shown.text and "Delete Device Info" in shown.text
    (found,) = await env.directory.devices.list_for(SYSTEM_CALLER, "jdoe")
    assert found.state is DeviceState.WIPE_REQUESTED
    r = await form_post(admin, page, f"{page}/devices/delete", {"device": name})
    assert r.status_code == 303
    assert await env.directory.devices.list_for(SYSTEM_CALLER, "jdoe") == []
    assert "No devices" in (await admin.get(page)).text


async def test_auditor_sees_profiles_but_changes_nothing(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "jdoe")
    await device(env, "jdoe")
    auditor = await env.browser("eve", Role.AUDITOR)
    page = f"/orgs/{general.id}/user/jdoe"
    shown = await auditor.get(page)
    assert shown.status_code == 200 and "Your role can view this profile but change nothing." in (
        shown.text
    )
    assert ">Update</button>" not in shown.text and "Disable Notification" not in shown.text
    assert re.search(r'<fieldset class="cw-plain-fieldset" disabled>', shown.text)
    token = csrf_of(shown.text)
    for path in ("", "/reset-pin", "/delete", "/devices/wipe", "/convert"):
        r = await auditor.post(page + path, data={"csrf_token": token, "device": "jdoe/phone"})
        assert r.status_code == 403, path
    assert (await auditor.get(f"/orgs/{general.id}/users/new")).status_code == 403
    (found,) = await env.directory.devices.list_for(SYSTEM_CALLER, "jdoe")
    assert found.state is DeviceState.ACTIVE_PUSH
    assert env.mailer.to("jdoe@staff.example") == []


async def test_org_admin_cannot_see_another_hospitals_users(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    await env.user(general.id, "mine", first="Mine", last="Own")
    await env.user(other.id, "theirs", first="Their", last="Secret")
    await device(env, "theirs")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    listed = await admin.get(f"/orgs/{general.id}/users?limit=100")
    assert "Own, Mine" in listed.text and "Secret" not in listed.text
    members = await admin.get(f"/orgs/{general.id}")
    assert "Own, Mine" in members.text and "Secret" not in members.text
    token = csrf_of(listed.text)
    for path in (
        f"/orgs/{other.id}/user/theirs",
        f"/orgs/{general.id}/user/theirs",
        f"/orgs/{general.id}/user/theirs/photo",
        f"/orgs/{general.id}/user/theirs/delete",
        f"/orgs/{general.id}/user/theirs/devices/wipe?device=theirs/phone",
    ):
        r = await admin.get(path)
        assert r.status_code == 404 and "Secret" not in r.text, path
    for path in ("", "/reset-pin", "/devices/wipe", "/delete"):
        r = await admin.post(
            f"/orgs/{general.id}/user/theirs{path}",
            data={"csrf_token": token, "device": "theirs/phone"},
        )
        assert r.status_code == 404, path
    (found,) = await env.directory.devices.list_for(SYSTEM_CALLER, "theirs")
    assert found.state is DeviceState.ACTIVE_PUSH
    assert (await env.directory.users.get(SYSTEM_CALLER, "theirs")).login == "theirs"
    assert env.mailer.to("theirs@staff.example") == []
