"""Affiliation pages: Invite Organization, the mailed Invitation, Permissions, Delete, practices."""

from __future__ import annotations

from urllib.parse import unquote

from carewire.directory.model import (
    SYSTEM_CALLER,
    AffiliationStatus,
    OrgKind,
    PermissionMode,
)
from carewire.security.console_auth import Role
from tests.web.console.conftest import GOOD, sign_in
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env"]


async def _invite(env: Env, inviter: int, invitee: int) -> str:
    """Invite ``invitee`` from ``inviter``'s page; the mailed link's path."""
    admin = await env.browser(f"inviter{inviter}-{invitee}", Role.ORG_ADMIN, organisation=inviter)
    page = f"/orgs/{inviter}/invite-organization"
    r = await form_post(admin, page, page, {"invitee": str(invitee)})
    assert r.status_code == 303, r.text
    return env.link("oadmin@staff.example", "/s/org/0/associations/")


async def test_invite_an_existing_organisation(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    await env.user(other.id, "oadmin", first="Olga", last="Admin", admin=True)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    base = f"/orgs/{general.id}"
    page = await admin.get(f"{base}/invite-organization?q=hosp")
    assert "Enter the name of the organization to invite." in page.text
    assert "If there is already a pending invitation for the same organization" in page.text
    assert (
        "Other Hospital (hospital)" in page.text and "General Hospital (hospital)" not in page.text
    )
    found = await admin.get(f"{base}/organization-search?q=OTH")
    assert found.json() == {
        "organizations": [{"id": other.id, "name": "Other Hospital", "kind": "hospital"}]
    }
    r = await form_post(
        admin, f"{base}/invite-organization", f"{base}/invite-organization", {"invitee": ""}
    )
    assert r.status_code == 400 and "Choose the organization to invite" in r.text
    r = await form_post(
        admin,
        f"{base}/invite-organization",
        f"{base}/invite-organization",
        {"invitee": str(general.id)},
    )
    assert r.status_code == 409 or r.status_code == 400
    assert "cannot invite itself" in r.text
    r = await form_post(
        admin,
        f"{base}/invite-organization",
        f"{base}/invite-organization",
        {"invitee": str(other.id)},
    )
    assert r.status_code == 303
    done = await admin.get(r.headers["location"])
    assert "Invitations have been sent to the Carewire administrators for Other Hospital." in (
        done.text
    )
    (mail,) = env.mailer.to("oadmin@staff.example")
    assert mail.subject == "Invitation to join General Hospital's Carewire network"
    assert "has invited your organization to join their Carewire network." in mail.body
    assert "/s/org/0/associations/" in mail.body and "This link will expire on" in mail.body
    org_page = await admin.get(base)
    assert "Other Hospital (pending)" in org_page.text


async def test_accept_for_some_users_after_signing_in(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    await env.user(other.id, "oadmin", first="Olga", last="Admin", admin=True)
    link = await _invite(env, general.id, other.id)
    browser = await env.anonymous()
    r = await browser.get(link)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=")
    assert unquote(r.headers["location"].split("next=")[1]) == link
    signin = await browser.get(r.headers["location"])
    r = await browser.post(
        "/signin",
        data={
            "username": "OAdmin@Staff.example",  # the console user name is the e-mail address
            "password": GOOD,
            "csrf_token": csrf_of(signin.text),
            "next": link,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == link
    page = await browser.get(link)
    assert page.status_code == 200
    for label in (
        "Invitation",
        "All your users",
        "Only some of your users",
        "Create a new subgroup",
    ):
        assert label in page.text
    assert ">Accept</button>" in page.text and ">Decline</button>" in page.text
    path = link.split("?")[0]
    token = link.split("token=")[1]
    r = await browser.post(
        path,
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "users": "some",
            "subgroup": "",
            "decision": "accept",
        },
    )
    assert r.status_code == 400 and "Choose a group or type a new group name" in r.text
    r = await browser.post(
        path,
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "users": "some",
            "subgroup": "Liaisons",
            "decision": "accept",
        },
    )
    assert r.status_code == 303 and f"/orgs/{other.id}/groups/" in r.headers["location"]
    group_page = await browser.get(r.headers["location"])
    assert "You can now add members by clicking &#39;Add Members&#39; button below" in (
        group_page.text
    )
    assert "Members (0)" in group_page.text and "Add..." in group_page.text
    (view,) = await env.directory.affiliations.list_for(SYSTEM_CALLER, other.id)
    assert view.affiliation.status is AffiliationStatus.ACTIVE
    assert view.permission.mode is PermissionMode.GROUPS
    (theirs,) = await env.directory.affiliations.list_for(SYSTEM_CALLER, general.id)
    assert theirs.permission.mode is PermissionMode.ORGANISATION
    again = await browser.get(link)  # answered: the link is used up
    assert again.status_code == 410 and "not valid any more" in again.text


async def test_accept_for_all_users_and_decline(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    third = await env.hospital("Third Hospital")
    await env.user(other.id, "oadmin", first="Olga", last="Admin", admin=True)
    link = await _invite(env, general.id, other.id)
    other_admin = await env.anonymous()
    assert (await sign_in(other_admin, "oadmin@staff.example")).status_code == 303
    page = await other_admin.get(link)
    path, token = link.split("?")[0], link.split("token=")[1]
    outsider = await env.browser("third-admin", Role.ORG_ADMIN, organisation=third.id)
    assert (await outsider.get(link)).status_code == 404  # not the invited organisation
    r = await other_admin.post(
        path,
        data={
            "csrf_token": csrf_of(page.text),
            "token": token,
            "users": "all",
            "decision": "accept",
        },
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/orgs/{other.id}?m=accepted")
    shown = await other_admin.get(r.headers["location"])
    assert "General Hospital" in shown.text and "Permissions" in shown.text
    (view,) = await env.directory.affiliations.list_for(SYSTEM_CALLER, other.id)
    assert view.permission.mode is PermissionMode.ORGANISATION
    # A second invitation, from the third hospital, declined.
    await env.user(third.id, "tadmin", first="Tom", last="Admin", admin=True)
    third_admin = await env.browser("t2", Role.ORG_ADMIN, organisation=third.id)
    invite_page = f"/orgs/{third.id}/invite-organization"
    r = await form_post(third_admin, invite_page, invite_page, {"invitee": str(other.id)})
    assert r.status_code == 303
    link = env.link("oadmin@staff.example", "/s/org/0/associations/")
    page = await other_admin.get(link)
    r = await other_admin.post(
        link.split("?")[0],
        data={
            "csrf_token": csrf_of(page.text),
            "token": link.split("token=")[1],
            "decision": "decline",
        },
    )
    assert r.status_code == 303 and "m=declined" in r.headers["location"]
    assert (await other_admin.get(link)).status_code == 410
    views = await env.directory.affiliations.list_for(SYSTEM_CALLER, third.id)
    assert all(v.affiliation.status is not AffiliationStatus.PENDING for v in views)
    r = await other_admin.get(link.split("token=")[0] + "token=wrong")
    assert r.status_code == 410


async def test_permissions_and_delete(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    await env.directory.affiliations.add_community_member(SYSTEM_CALLER, general.id, other.id)
    cardio = await env.group(general.id, "Cardiology")
    theirs = await env.group(other.id, "Their Group")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/affiliations/{other.id}/permissions"
    shown = await admin.get(page)
    assert "Edit which groups can communicate with Other Hospital" in shown.text
    assert "None" in shown.text and "Cardiology" in shown.text
    r = await form_post(admin, page, page, {"mode": "groups"})
    assert r.status_code == 400 and "Choose at least one group" in r.text
    r = await form_post(admin, page, page, {"mode": "groups", "group": str(theirs.id)})
    assert r.status_code == 404  # another organisation's group does not exist here
    r = await form_post(admin, page, page, {"mode": "groups", "group": str(cardio.id)})
    assert r.status_code == 303
    assert "Permissions updated successfully" in (await admin.get(r.headers["location"])).text
    view = next(
        v
        for v in await env.directory.affiliations.list_for(SYSTEM_CALLER, general.id)
        if v.other.id == other.id
    )
    assert view.permission.mode is PermissionMode.GROUPS and view.permission.groups == {cardio.id}
    r = await form_post(admin, page, page, {"mode": "none"})
    assert r.status_code == 303
    auditor = await env.browser("eve", Role.AUDITOR)
    assert (await auditor.get(page)).status_code == 200
    assert (
        await auditor.get(f"/orgs/{general.id}/affiliations/{other.id}/delete")
    ).status_code == 403
    confirm = await admin.get(f"/orgs/{general.id}/affiliations/{other.id}/delete")
    assert (
        "Are you sure you want to stop communicating with Other Hospital? "
        "They must be invited again to restore communication." in confirm.text
    )
    r = await admin.post(
        f"/orgs/{general.id}/affiliations/{other.id}/delete",
        data={"csrf_token": csrf_of(confirm.text)},
    )
    assert r.status_code == 303
    assert await env.directory.affiliations.list_for(SYSTEM_CALLER, general.id) == []
    assert await env.directory.affiliations.list_for(SYSTEM_CALLER, other.id) == []
    assert (await admin.get(page)).status_code == 404


async def test_create_practice(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/practices/new"
    shown = await admin.get(page)
    for label in (
        "Practice Details",
        "Practice Name",
        "Practice Carewire Administrator",
        "Initial Standard Users",
        "Email addresses (separated by spaces or carriage returns)",
        "...or select CSV file containing email addresses",
        "Download Sample CSV File",
    ):
        assert label in shown.text, label
    data = {
        "name": "Hillside Practice",
        "office_number": "(408) 555-0100",
        "admin_first_name": "Pat",
        "admin_last_name": "Smith",
        "admin_email": "pat@hillside.example",
        "emails": "a@hillside.example bad-address",
    }
    r = await form_post(admin, page, page, data)
    assert r.status_code == 400
    assert "Invalid email address: bad-address. No invitations were sent." in r.text
    assert len(await env.directory.organisations.list_visible(SYSTEM_CALLER)) == 1
    csv = (
        b"Email,First Name,Last Name,Department\r\n"
        b"c@hillside.example,Cy,Doe,Front Desk\r\n"
        b"nope,,,\r\n"
    )
    r = await form_post(
        admin,
        page,
        page,
        {**data, "emails": "a@hillside.example\nb@hillside.example"},
        files={"csv": ("users.csv", csv, "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert "Practice Hillside Practice was created." in r.text
    assert "pat@hillside.example was invited to administer Hillside Practice." in r.text
    assert "Line 3:" in r.text  # the CSV's bad row, by line
    assert "pat@hillside.example" in r.text  # the list shows the invited administrator
    practice = next(
        o
        for o in await env.directory.organisations.list_visible(SYSTEM_CALLER)
        if o.kind is OrgKind.PRACTICE
    )
    assert env.mailer.to("pat@hillside.example") and env.mailer.to("c@hillside.example")
    assert env.mailer.to("a@hillside.example") and env.mailer.to("b@hillside.example")
    practice_admin = await env.browser("pat", Role.ORG_ADMIN, organisation=practice.id)
    org_page = await practice_admin.get(f"/orgs/{practice.id}")
    assert "Create Practice" not in org_page.text and "General Hospital" in org_page.text
    assert (await practice_admin.get(f"/orgs/{practice.id}/practices/new")).status_code == 403


async def test_create_practice_refusals(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "taken", first="Tak", last="En")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/practices/new"
    data = {
        "name": "Hillside Practice",
        "office_number": "(408) 555-0100",
        "admin_first_name": "Pat",
        "admin_last_name": "Smith",
        "admin_email": "pat@hillside.example",
    }
    for change, message in (
        ({"name": ""}, "Group name is required."),
        ({"admin_first_name": ""}, "First Name is required."),
        ({"admin_email": "taken@staff.example"}, "must be a new user"),
        ({"admin_email": "pat@"}, "is not a valid e-mail address"),
        ({"admin_email": ""}, "Email Address is required."),
    ):
        r = await form_post(admin, page, page, {**data, **change})
        assert r.status_code in (400, 409), change
        assert message in r.text, (change, r.text[:2000])
    assert len(await env.directory.organisations.list_visible(SYSTEM_CALLER)) == 1
