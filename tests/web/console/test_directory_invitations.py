"""Invite Users and the Invitations page: CSV and typed lists, filters, Resend and Delete."""

from __future__ import annotations

import re

from carewire.directory.model import (
    SAMPLE_CSV,
    SYSTEM_CALLER,
    InvitationFilter,
    InvitationStatus,
)
from carewire.security.console_auth import Role
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env"]

INTRO = (
    "This page lets you invite users into your Carewire organization.",
    "Use the CSV option to pre-populate fields such as name and department. Any departments "
    "listed will be automatically created as groups within your organization if they don&#39;t "
    "already exist.",
    "Use the Email Addresses option to specify a simple list of email addresses.",
    "Each recipient will receive an invitation via email. The message will contain a link which "
    "will let them register for a Carewire profile. When they sign up, they will be "
    "automatically added to your organization.",
)


async def _invitations(env: Env, org: int) -> dict[str, InvitationStatus]:
    found = await env.directory.invitations.find(SYSTEM_CALLER, org, InvitationFilter())
    return {i.email: i.status for i in found.items}


async def test_invite_users_page_and_sample(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = await admin.get(f"/orgs/{general.id}/invite")
    for sentence in INTRO:
        assert sentence in page.text, sentence
    for label in (
        "INVITE USERS",
        "Upload CSV File",
        "Download sample CSV file",
        "Email Addresses Separated By Spaces Or Carriage Returns",
        ">Invite</button>",
        "Cancel",
    ):
        assert label in page.text, label
    sample = await admin.get("/directory/sample.csv")
    assert sample.status_code == 200 and sample.text == SAMPLE_CSV
    assert sample.headers["content-type"].startswith("text/csv")
    assert "attachment" in sample.headers["content-disposition"]


async def test_a_malformed_address_sends_nothing(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/invite"
    r = await form_post(
        admin, page, page, {"emails": "a@general.example\nbad@@x b@general.example"}
    )
    assert r.status_code == 400
    assert "Invalid email address: bad@@x. No invitations were sent." in r.text
    assert "bad@@x" in r.text and 'aria-invalid="true"' in r.text
    assert await _invitations(env, general.id) == {
        "admin@generalhospital.example": (InvitationStatus.EMAIL_SENT)
    }
    assert env.mailer.to("a@general.example") == []
    r = await form_post(admin, page, page, {"emails": "  "})
    assert r.status_code == 400 and "Choose a CSV file or type some e-mail addresses." in r.text


async def test_csv_and_typed_addresses_are_merged(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "jdoe")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/invite"
    csv = (
        b"Email,First Name,Last Name,Department\r\n"
        b"ann@general.example,Ann,Lee,Cardiology\r\n"
        b"not-an-address,Bad,Row,\r\n"
        b",,,Physical Therapy\r\n"
        b"JDOE@staff.example,Jane,Doe,\r\n"
    )
    r = await form_post(
        admin,
        page,
        page,
        {"emails": "typed@general.example Typed@General.example"},
        files={"csv": ("staff.csv", csv, "text/csv")},
    )
    assert r.status_code == 200, r.text
    assert "Invitations have been sent successfully." in r.text
    assert "Line 3:" in r.text and "not-an-address" in r.text  # the bad row, by line
    assert "Already users, not invited: jdoe@staff.example" in r.text
    assert "Given more than once (invited once): typed@general.example" in r.text
    assert "Groups created: Cardiology, Physical Therapy" in r.text
    statuses = await _invitations(env, general.id)
    assert statuses["ann@general.example"] is InvitationStatus.EMAIL_SENT
    assert statuses["typed@general.example"] is InvitationStatus.EMAIL_SENT
    assert "jdoe@staff.example" not in statuses
    groups = [g.name for g in await env.directory.groups.list_for(SYSTEM_CALLER, general.id)]
    assert groups == ["Cardiology", "Physical Therapy"]
    (mail,) = env.mailer.to("ann@general.example")
    assert "/register/" in mail.body
    r = await form_post(
        admin, page, page, {}, files={"csv": ("x.csv", b"no header here\r\n", "text/csv")}
    )
    assert r.status_code == 400


async def test_invitations_page_filters_and_statuses(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    env.mailer.refuse.add("bounce@general.example")
    page = f"/orgs/{general.id}/invite"
    csv = (
        b"Email,First Name,Last Name\r\n"
        b"astafford@general.example,Amy,Stafford\r\n"
        b"kmaster@general.example,Ken,Master\r\n"
        b"zed@general.example,Zoe,Zed\r\n"
    )
    r = await form_post(
        admin,
        page,
        page,
        {"emails": "bounce@general.example"},
        files={"csv": ("c.csv", csv, "text/csv")},
    )
    assert "The mail could not be sent to: bounce@general.example" in r.text
    listed = await admin.get(f"/orgs/{general.id}/invitations")
    text = listed.text
    for label in (
        "INVITATIONS",
        "Email Address",
        "Last Name",
        "First Name",
        "Status",
        "Last Updated",
        "Selected:",
        "Resend",
        "Delete",
        "Select all displayed invitations",
    ):
        assert label in text, label
    assert "5 invitations" in text and "Failure" in text and "Email Sent" in text
    assert re.search(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M UTC", text)
    found = await admin.get(f"/orgs/{general.id}/invitations?email=AST")
    assert "astafford@general.example" in found.text and "kmaster@general.example" in found.text
    assert "zed@general.example" not in found.text and "2 invitations" in found.text
    found = await admin.get(f"/orgs/{general.id}/invitations?last_name=zed&first_name=zo")
    assert "1 invitation," in found.text and "zed@general.example" in found.text
    found = await admin.get(f"/orgs/{general.id}/invitations?status=Failure")
    assert "bounce@general.example" in found.text and "1 invitation," in found.text
    found = await admin.get(f"/orgs/{general.id}/invitations?status=Registered")
    assert "No invitations match." in found.text


async def test_resend_and_delete_selected(env: Env) -> None:
    general = await env.hospital("General Hospital")
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/invite"
    await form_post(admin, page, page, {"emails": "a@general.example b@general.example"})
    found = await env.directory.invitations.find(SYSTEM_CALLER, general.id, InvitationFilter())
    ids = {i.email: str(i.id) for i in found.items}
    first_link = env.link("a@general.example", "/register/")
    listing = f"/orgs/{general.id}/invitations"
    r = await form_post(admin, listing, listing, {"action": "resend"})
    assert r.status_code == 303
    assert "Select at least one invitation first." in (await admin.get(r.headers["location"])).text
    r = await form_post(
        admin, listing, listing, {"action": "resend", "id": [ids["a@general.example"]]}
    )
    assert r.status_code == 200
    assert "Are you sure you want to resend the selected invitations?" in r.text
    assert (
        "Note: invitations already in the &#39;Registered&#39; state will not be resent." in r.text
    )
    assert ">Resend</button>" in r.text and "Cancel" in r.text
    r = await admin.post(
        f"{listing}/resend", data={"csrf_token": csrf_of(r.text), "id": ids["a@general.example"]}
    )
    assert r.status_code == 303
    done = await admin.get(r.headers["location"])
    assert "were sent again (1)" in done.text
    assert len(env.mailer.to("a@general.example")) == 2
    anonymous = await env.anonymous()
    assert (await anonymous.get(first_link)).status_code == 410  # the old link died
    r = await form_post(
        admin, listing, listing, {"action": "delete", "id": [ids["b@general.example"]]}
    )
    assert "Are you sure you want to delete the selected invitations?" in r.text
    b_link = env.link("b@general.example", "/register/")
    r = await admin.post(
        f"{listing}/delete", data={"csrf_token": csrf_of(r.text), "id": ids["b@general.example"]}
    )
    assert r.status_code == 303
    listed = await admin.get(r.headers["location"])
    assert "were deleted (1)" in listed.text and "b@general.example" not in listed.text
    assert (await anonymous.get(b_link)).status_code == 410


async def test_invitations_of_another_organisation_are_untouched(env: Env) -> None:
    general = await env.hospital("General Hospital")
    other = await env.hospital("Other Hospital")
    found = await env.directory.invitations.find(SYSTEM_CALLER, other.id, InvitationFilter())
    (theirs,) = found.items
    mails_before = len(env.mailer.sent)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    listing = f"/orgs/{general.id}/invitations"
    shown = await admin.get(listing)
    assert theirs.email not in shown.text
    for action in ("resend", "delete"):
        r = await admin.post(
            f"{listing}/{action}", data={"csrf_token": csrf_of(shown.text), "id": str(theirs.id)}
        )
        assert r.status_code == 303 and "(0)" in (await admin.get(r.headers["location"])).text
    still = await env.directory.invitations.get(SYSTEM_CALLER, theirs.id)
    assert still.status is theirs.status and len(env.mailer.sent) == mails_before
    r = await admin.post(
        f"/orgs/{other.id}/invitations/delete",
        data={"csrf_token": csrf_of(shown.text), "id": str(theirs.id)},
    )
    assert r.status_code == 404


async def test_auditor_sees_invitations_but_cannot_act(env: Env) -> None:
    general = await env.hospital("General Hospital")
    auditor = await env.browser("eve", Role.AUDITOR)
    listing = f"/orgs/{general.id}/invitations"
    shown = await auditor.get(listing)
    assert shown.status_code == 200 and "admin@generalhospital.example" in shown.text
    assert 'name="id"' not in shown.text and "Selected:" not in shown.text
    token = csrf_of(shown.text)
    for path in (listing, f"{listing}/resend", f"{listing}/delete"):
        r = await auditor.post(path, data={"csrf_token": token, "id": "1", "action": "resend"})
        assert r.status_code == 403, path
    assert (await auditor.get(f"/orgs/{general.id}/invite")).status_code == 403
    r = await auditor.post(
        f"/orgs/{general.id}/invite", data={"csrf_token": token, "emails": "x@general.example"}
    )
    assert r.status_code == 403 and env.mailer.to("x@general.example") == []
