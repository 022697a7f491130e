"""Group pages: Create Group, Update Group, Select users, Remove Selected, Delete, CSV import."""

from __future__ import annotations

import pytest

from carewire.directory.model import (
    SYSTEM_CALLER,
    PermissionMode,
    UnknownGroupError,
)
from carewire.security.console_auth import Role
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env"]


async def test_create_group_then_update_it(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.group(general.id, "Cardiology")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/groups/new"
    shown = await admin.get(page)
    assert "Create Group" in shown.text and "Group Details" in shown.text
    assert "Members can send messages to whole group" in shown.text
    assert "This field is disabled until the group has members." in shown.text
    for name, message in (
        ("", "Group name is required."),
        ("x" * 65, "Group name has at most 64 characters."),
        ("CARDIOLOGY", "CARDIOLOGY"),
    ):
        r = await form_post(admin, page, page, {"name": name})
        assert r.status_code == 400 and message in r.text, name
        assert 'aria-invalid="true"' in r.text
    r = await form_post(admin, page, page, {"name": "Physical Therapy"})
    assert r.status_code == 303
    location = r.headers["location"]
    group_page = await admin.get(location)
    assert "The group was created." in group_page.text and "Members (0)" in group_page.text
    assert "GENERAL HOSPITAL / PHYSICAL THERAPY" in group_page.text
    group_path = location.split("?")[0]
    r = await form_post(
        admin, group_path, group_path, {"name": "Physio", "whole_group_messaging": "yes"}
    )
    assert r.status_code == 303
    group_id = int(group_path.rsplit("/", 1)[1])
    group = await env.directory.groups.get(SYSTEM_CALLER, group_id)
    assert group.name == "Physio" and not group.whole_group_messaging  # no members yet: disabled
    r = await form_post(admin, group_path, group_path, {"name": "cardiology"})
    assert r.status_code == 400 and 'value="cardiology"' in r.text


async def test_members_add_and_remove(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    for login, first, last in (("ann", "Ann", "Lee"), ("bob", "Bob", "Ray"), ("cy", "Cy", "Zed")):
        await env.user(general.id, login, first=first, last=last)
    await env.user(other.id, "stranger", first="Str", last="Anger")
    group = await env.group(general.id, "Cardiology", "ann")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    base = f"/orgs/{general.id}/groups/{group.id}"
    add = await admin.get(f"{base}/add")
    assert "Select user(s) to add to group: Cardiology" in add.text
    assert "Hold Ctrl (or Command on Mac) to select multiple users." in add.text
    assert "Ray, Bob" in add.text and "Zed, Cy" in add.text
    assert "Lee, Ann" not in add.text  # already a member
    assert "Anger" not in add.text  # another organisation's user
    searched = await admin.get(f"{base}/add?q=ze")
    assert "Zed, Cy" in searched.text and "Ray, Bob" not in searched.text
    r = await form_post(admin, f"{base}/add", f"{base}/add", {"login": ["bob", "cy"]})
    assert r.status_code == 303
    shown = await admin.get(r.headers["location"])
    assert "Members (3)" in shown.text and "The users were added to the group." in shown.text
    r = await form_post(admin, f"{base}/add", f"{base}/add", {"login": ["stranger"]})
    assert r.status_code == 404
    r = await form_post(admin, base, f"{base}/remove", {})
    assert r.status_code == 400 and "Select the members to remove." in r.text
    r = await form_post(admin, base, f"{base}/remove", {"login": ["ann", "cy"]})
    assert r.status_code == 303
    shown = await admin.get(r.headers["location"])
    assert "Members (1)" in shown.text and "they remain in your organization" in shown.text
    members = await env.directory.groups.members(SYSTEM_CALLER, group.id)
    assert [m.login for m in members] == ["bob"]
    assert (await env.directory.users.get(SYSTEM_CALLER, "ann")).login == "ann"
    r = await form_post(admin, base, base, {"name": "Cardiology", "whole_group_messaging": "yes"})
    assert r.status_code == 303
    assert (await env.directory.groups.get(SYSTEM_CALLER, group.id)).whole_group_messaging


async def test_delete_group_falls_back_to_no_one(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    await env.directory.affiliations.add_community_member(SYSTEM_CALLER, general.id, other.id)
    group = await env.group(general.id, "Liaisons")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/affiliations/{other.id}/permissions"
    r = await form_post(admin, page, page, {"mode": "groups", "group": str(group.id)})
    assert r.status_code == 303
    base = f"/orgs/{general.id}/groups/{group.id}"
    confirm = await admin.get(f"{base}/delete")
    assert (
        "Delete group Liaisons? Affiliations that use it for permissions will allow no one "
        "until changed." in confirm.text
    )
    r = await admin.post(f"{base}/delete", data={"csrf_token": csrf_of(confirm.text)})
    assert r.status_code == 303
    assert "The group was deleted." in (await admin.get(r.headers["location"])).text
    with pytest.raises(UnknownGroupError):
        await env.directory.groups.get(SYSTEM_CALLER, group.id)
    view = next(
        v
        for v in await env.directory.affiliations.list_for(SYSTEM_CALLER, general.id)
        if v.other.id == other.id
    )
    assert view.permission.mode is PermissionMode.NONE


async def test_import_groups_from_csv(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "ann", first="Ann", last="Lee")
    await env.group(general.id, "Cardiology")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/groups/import"
    csv = (
        b"Department,Email\r\n"
        b"Cardiology,ann@staff.example\r\n"
        b"Oncology,\r\n"
        b"Oncology,nobody@general.example\r\n"
    )
    r = await form_post(admin, page, page, {}, files={"csv": ("g.csv", csv, "text/csv")})
    assert r.status_code == 200, r.text
    assert "The groups were imported." in r.text
    assert "Groups created: Oncology." in r.text and "Groups already there: Cardiology." in r.text
    assert "Members added: 1." in r.text
    assert "Line 4: nobody@general.example is not a user of this organisation." in r.text
    names = [g.name for g in await env.directory.groups.list_for(SYSTEM_CALLER, general.id)]
    assert names == ["Cardiology", "Oncology"]
    r = await form_post(admin, page, page, {})
    assert r.status_code == 400 and "Choose a CSV file" in r.text
    r = await form_post(
        admin, page, page, {}, files={"csv": ("g.csv", b"Email\r\na@b.example\r\n", "text/csv")}
    )
    assert r.status_code == 400
    r = await form_post(
        admin, page, page, {}, files={"csv": ("g.csv", b"\xff\xfe\x00bad", "text/csv")}
    )
    assert r.status_code == 400 and "UTF-8" in r.text


async def test_groups_of_another_organisation_and_auditors(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    theirs = await env.group(other.id, "Secret Unit")
    mine = await env.group(general.id, "Mine")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    token = csrf_of((await admin.get(f"/orgs/{general.id}")).text)
    for path in (
        f"/orgs/{general.id}/groups/{theirs.id}",
        f"/orgs/{other.id}/groups/{theirs.id}",
        f"/orgs/{general.id}/groups/{theirs.id}/add",
        f"/orgs/{general.id}/groups/{theirs.id}/delete",
    ):
        r = await admin.get(path)
        assert r.status_code == 404 and "Secret Unit" not in r.text, path
    for path in ("", "/delete", "/remove", "/add"):
        r = await admin.post(
            f"/orgs/{general.id}/groups/{theirs.id}{path}",
            data={"csrf_token": token, "name": "Mine now"},
        )
        assert r.status_code == 404, path
    assert (await env.directory.groups.get(SYSTEM_CALLER, theirs.id)).name == "Secret Unit"
    auditor = await env.browser("eve", Role.AUDITOR)
    shown = await auditor.get(f"/orgs/{general.id}/groups/{mine.id}")
    assert shown.status_code == 200 and "Remove Selected" not in shown.text
    assert "Delete Group" not in shown.text
    r = await auditor.post(
        f"/orgs/{general.id}/groups/{mine.id}/delete", data={"csrf_token": csrf_of(shown.text)}
    )
    assert r.status_code == 403
    assert (await auditor.get(f"/orgs/{general.id}/groups/new")).status_code == 403
