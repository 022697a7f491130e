"""Organisation pages: the directory home, Organizations, Create Hospital, Update Organization."""

from __future__ import annotations

import re

from carewire.directory.model import SYSTEM_CALLER, MessageExpiration, RetentionUnit
from carewire.security.console_auth import Role
from tests.web.console.test_directory_support import GOOD, Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env"]

SETTINGS = {
    "default_time_zone": "America/Chicago",
    "whole_org_messaging": "yes",
    "non_user_messaging": "no",
    "high_priority_sound_seconds": "15",
    "message_expiration": "2w",
    "retention_value": "2",
    "retention_unit": "years",
    "pin_length": "6",
}


async def test_home_takes_each_role_to_its_organisation(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("root")
    r = await admin.get("/directory")
    assert r.status_code == 303 and r.headers["location"] == "/orgs"
    org_admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    r = await org_admin.get("/directory")
    assert r.headers["location"] == f"/orgs/{general.id}"
    r = await org_admin.get("/directory/users")
    assert r.headers["location"] == f"/orgs/{general.id}/users"
    r = await org_admin.get("/orgs")  # the list is for system administrators
    assert r.headers["location"] == f"/orgs/{general.id}"
    dashboard = await org_admin.get("/")
    assert "General Hospital" in dashboard.text and 'href="/directory"' in dashboard.text


async def test_anonymous_browsers_go_to_sign_in(env: Env) -> None:
    general = await env.hospital("General Hospital")
    browser = await env.anonymous()
    for path in ("/directory", "/orgs", f"/orgs/{general.id}", f"/orgs/{general.id}/users"):
        r = await browser.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/signin", path


async def test_system_admin_creates_a_hospital_and_its_admin_is_invited(env: Env) -> None:
    admin = await env.browser("root")
    page = await admin.get("/orgs")
    assert "Create Hospital" in page.text and "No organizations yet" in page.text
    data = {
        "name": "St. Dominic's Medical Center",
        "office_number": "(408) 882-5830",
        **SETTINGS,
        "admin_first_name": "Ada",
        "admin_last_name": "Lovelace",
        "admin_email": "Ada@StDominic.example",
    }
    r = await form_post(admin, "/orgs/new", "/orgs/new", data)
    assert r.status_code == 303, r.text
    org_id = int(r.headers["location"].split("/")[2].split("?")[0])
    org = await env.directory.organisations.get(SYSTEM_CALLER, org_id)
    assert org.name == "St. Dominic's Medical Center"
    assert org.settings.message_expiration is MessageExpiration.WEEKS_2
    assert org.settings.retention_unit is RetentionUnit.YEARS and org.settings.retention_value == 2
    assert org.settings.pin_length == 6 and org.settings.whole_org_messaging
    (mail,) = env.mailer.to("ada@stdominic.example")
    assert "/register/" in mail.body and "administrator" in mail.body
    page = await admin.get(r.headers["location"])
    assert "The hospital was created." in page.text
    assert "SYSTEM ADMIN / ST. DOMINIC&#39;S MEDICAL CENTER" in page.text


async def test_create_hospital_refusals(env: Env) -> None:
    await env.hospital("General Hospital")
    admin = await env.browser("root")
    base = {
        "name": "New Hospital",
        "office_number": "(408) 882-5830",
        **SETTINGS,
        "admin_first_name": "Ada",
        "admin_last_name": "Min",
        "admin_email": "ada@new.example",
    }
    cases = [
        ({"name": ""}, "Group name is required."),
        ({"name": "general hospital"}, "general hospital"),
        ({"office_number": "call us"}, "Office number must be a phone number"),
        ({"admin_email": "not-an-address"}, "is not a valid e-mail address"),
        ({"high_priority_sound_seconds": "7"}, "Choose a value from the list"),
        ({"retention_value": "many"}, "Message retention period must be a whole number"),
        ({"default_time_zone": "Mars/Olympus"}, "is not a known time zone"),
    ]
    for change, message in cases:
        r = await form_post(admin, "/orgs/new", "/orgs/new", {**base, **change})
        assert r.status_code == 400, change
        assert message in r.text.replace("&#39;", "'"), (change, r.text[:3000])
    orgs = await env.directory.organisations.list_visible(SYSTEM_CALLER)
    assert [o.name for o in orgs] == ["General Hospital"]


async def test_only_system_admins_create_hospitals(env: Env) -> None:
    general = await env.hospital("General Hospital")
    org_admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    assert (await org_admin.get("/orgs/new")).status_code == 403
    token = csrf_of((await org_admin.get(f"/orgs/{general.id}")).text)
    r = await org_admin.post("/orgs/new", data={"csrf_token": token, "name": "X"})
    assert r.status_code == 403
    auditor = await env.browser("eve", Role.AUDITOR)
    token = csrf_of((await auditor.get("/orgs")).text)
    r = await auditor.post("/orgs/new", data={"csrf_token": token, "name": "X"})
    assert r.status_code == 403


async def test_update_organization_shows_every_section(env: Env) -> None:
    general = await env.hospital("General Hospital")
    for n in range(12):
        await env.user(general.id, f"user{n:02}", first=f"F{n:02}", last=f"Last{n:02}")
    await env.user(general.id, "boss", first="Bo", last="Ss", admin=True)
    await env.group(general.id, "Cardiology")
    await env.group(general.id, "Physical Therapy")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = await admin.get(f"/orgs/{general.id}")
    text = page.text
    for label in (
        "Update Organization",
        "Organization Details",
        "Group name",
        "Office number",
        "Voice number",
        "Default time zone",
        "Secure Message Options",
        "Members can send messages to whole organization",
        "Allow messages to non-users via email and SMS",
        "Message retention period",
        "Message Expiration Time",
        "High Priority Notification Sound Length",
        "Carewire Administrators",
        "Members (13)",
        "Create User...",
        "Invite...",
        "Organizations with whom we can communicate",
        "Invite Existing Organization",
        "Create Practice",
        "Sub groups",
        "Create New Group",
    ):
        assert label in text, label
    assert "Ss, Bo" in text and "mailto:boss@staff.example" in text
    assert text.count("Status: None") == 10  # ten a page
    assert "Group ID" not in text  # system administrators only
    assert re.search(r'<option value="7d" selected>7 Days</option>', text)
    assert re.search(r'<option value="30" selected>30 Seconds</option>', text)
    second = await admin.get(f"/orgs/{general.id}?members_page=2")
    assert second.text.count("Status: None") == 3 and "Last11, F11" in second.text
    found = await admin.get(f"/orgs/{general.id}?group_search=card")
    assert "Cardiology" in found.text and "Physical Therapy" not in found.text
    root = await env.browser("root")
    assert "Group ID" in (await root.get(f"/orgs/{general.id}")).text


async def test_save_organization_and_refusals(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.hospital("Other Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}"
    data = {"name": "General Hospital East", "office_number": "(408) 555-1212", **SETTINGS}
    r = await form_post(admin, page, page, data)
    assert r.status_code == 303 and r.headers["location"] == f"{page}?m=saved"
    assert "The organization was saved." in (await admin.get(r.headers["location"])).text
    org = await env.directory.organisations.get(SYSTEM_CALLER, general.id)
    assert org.name == "General Hospital East" and org.settings.default_time_zone == (
        "America/Chicago"
    )
    r = await form_post(admin, page, page, {**data, "name": "other hospital"})
    assert r.status_code == 400 and "other hospital" in r.text
    assert 'value="other hospital"' in r.text  # the refused form as sent
    r = await form_post(admin, page, page, {**data, "pin_length": "5"})
    assert r.status_code == 400 and "Choose a value from the list for PIN length" in r.text
    r = await form_post(
        admin, page, page, {**data, "retention_value": "20", "retention_unit": "years"}
    )
    assert r.status_code == 400 and "3650 days" in r.text
    org = await env.directory.organisations.get(SYSTEM_CALLER, general.id)
    assert org.name == "General Hospital East"


async def test_another_organisations_pages_are_not_found(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    stranger = await env.user(other.id, "stranger")
    group = await env.group(other.id, "Secret Unit")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    token = csrf_of((await admin.get(f"/orgs/{general.id}")).text)
    o = f"/orgs/{other.id}"
    for path in (
        o,
        f"{o}/users",
        f"{o}/users/new",
        f"{o}/user/{stranger.login}",
        f"/orgs/{general.id}/user/{stranger.login}",
        f"{o}/invite",
        f"{o}/invitations",
        f"{o}/groups/{group.id}",
        f"/orgs/{general.id}/groups/{group.id}",
        f"{o}/practices/new",
        f"{o}/invite-organization",
        "/orgs/999999",
    ):
        r = await admin.get(path)
        assert r.status_code == 404, path
        assert "Page not found" in r.text and "Secret Unit" not in r.text
    for path in (o, f"{o}/groups/new", f"/orgs/{general.id}/user/{stranger.login}/delete"):
        r = await admin.post(path, data={"csrf_token": token, "name": "Mine now"})
        assert r.status_code == 404, path
    assert (await env.directory.users.get(SYSTEM_CALLER, stranger.login)).login == "stranger"
    org = await env.directory.organisations.get(SYSTEM_CALLER, other.id)
    assert org.name == "Other Hospital"


async def test_auditors_see_but_cannot_change(env: Env) -> None:
    general = await env.hospital("General Hospital")
    auditor = await env.browser("eve", Role.AUDITOR)
    page = await auditor.get(f"/orgs/{general.id}")
    assert page.status_code == 200
    assert "Your role can view this organization but change nothing." in page.text
    assert '<fieldset class="card" disabled>' in page.text
    assert ">Save</button>" not in page.text and "Create User..." not in page.text
    r = await auditor.post(
        f"/orgs/{general.id}",
        data={"csrf_token": csrf_of(page.text), "name": "Audited", "office_number": "5551234567"},
    )
    assert r.status_code == 403
    assert (await env.directory.organisations.get(SYSTEM_CALLER, general.id)).name == (
        "General Hospital"
    )


async def test_posts_without_the_csrf_token_are_refused(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    for path in (
        f"/orgs/{general.id}",
        f"/orgs/{general.id}/groups/new",
        f"/orgs/{general.id}/invite",
        f"/orgs/{general.id}/users/new",
        "/orgs/new",
    ):
        r = await admin.post(path, data={"name": "No token", "office_number": "5551234567"})
        assert r.status_code == 403 and "This form has expired" in r.text, path
        r = await admin.post(path, data={"name": "Bad", "csrf_token": "forged-token-value"})
        assert r.status_code == 403, path
    assert (await env.directory.groups.list_for(SYSTEM_CALLER, general.id)) == []


async def test_communities_for_system_admins(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    admin = await env.browser("root")
    page = await admin.get("/communities")
    assert "General Hospital" in page.text and "Add an organization" in page.text
    r = await form_post(
        admin, "/communities", f"/communities/{general.id}/members", {"organisation": str(other.id)}
    )
    assert r.status_code == 303
    page = await admin.get(r.headers["location"])
    assert "The organization joined the community." in page.text
    (community,) = [
        c
        for c in await env.directory.affiliations.communities(SYSTEM_CALLER)
        if c.hospital.id == general.id
    ]
    assert [m.name for m in community.members] == ["General Hospital", "Other Hospital"]
    r = await form_post(
        admin, "/communities", f"/communities/{general.id}/members", {"organisation": str(other.id)}
    )
    assert r.status_code == 400 and "already in" in r.text
    r = await form_post(
        admin,
        "/communities",
        f"/communities/{general.id}/members",
        {"organisation": str(general.id)},
    )
    assert r.status_code == 400
    assert "A community holds organisations, never other communities" in r.text
    org_admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = await org_admin.get("/communities")
    assert "Add an organization" not in page.text
    token = csrf_of(page.text)
    r = await org_admin.post(
        f"/communities/{general.id}/members", data={"csrf_token": token, "organisation": "1"}
    )
    assert r.status_code == 403


async def test_sign_in_returns_only_to_paths_of_this_console(env: Env) -> None:
    await env.console.create_user("root", Role.SYSTEM_ADMIN, password=GOOD, email=None)
    for target, expected in (
        ("/associations/7/invite?token=abc", "/associations/7/invite?token=abc"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ):
        browser = await env.anonymous()
        page = await browser.get("/signin", params={"next": target})
        r = await browser.post(
            "/signin",
            data={
                "username": "root",
                "password": GOOD,
                "csrf_token": csrf_of(page.text),
                "next": target,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == expected, target
