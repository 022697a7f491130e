"""The Integrations page: LDAP settings, status, Sync Users Now, Import Results, reports, sign-in.

Against the real slapd (one per worker, tests/identity/conftest.py), each
test in a unit (``ou``) of its own. Permissions as everywhere in the
directory pages: an organisation administrator sees their organisation's
page only (another's is a 404), an auditor reads and changes nothing.
"""

from __future__ import annotations

import re

import httpx
import pytest

from carewire.directory.model import SYSTEM_CALLER, UserUpdate
from carewire.identity.ldap.model import RunState
from carewire.security.console_auth import Role
from carewire.security.console_model import DIRECTORY_UNAVAILABLE
from carewire.web.console.directory import ldapform, profileform
from tests.identity.conftest import slapd, unit
from tests.ldapserver import BIND_DN, BIND_PW, Slapd, free_port, password_of
from tests.web.console.test_directory_support import Env, csrf_of, db_url, env, form_post

__all__ = ["db_url", "env", "slapd"]
pytestmark = pytest.mark.slow


def settings_form(slapd: Slapd, base: str, **changes: str) -> dict[str, str]:
    """The settings form filled in for the test slapd's unit ``base`` (StartTLS, its CA)."""
    values = ldapform.settings_values(None)
    values.update(
        url=slapd.url,
        bind_dn=BIND_DN,
        bind_secret=BIND_PW,
        base_dn=base,
        group_base_dn=base,
        ca_file=str(slapd.ca_file),
    )
    values.update(changes)
    return {k: v for k, v in values.items() if v != ""}  # an unchecked box is not sent


async def saved_form(env: Env, org: int, **changes: str) -> dict[str, str]:
    """The settings form as the page shows the saved settings, with ``changes``."""
    values = ldapform.settings_values(await env.ldap.settings(SYSTEM_CALLER, org))
    values.update(changes)
    return {k: v for k, v in values.items() if v != ""}


def input_tag(html: str, name: str) -> str:
    """The ``<input>`` tag of the field ``name``."""
    found = re.search(r'<input[^>]* name="' + re.escape(name) + r'"[^>]*>', html)
    assert found, name
    return found.group(0)


async def configured(
    env: Env, slapd: Slapd, people: int = 3, **changes: str
) -> tuple[int, httpx.AsyncClient, list[str]]:
    """A hospital, its administrator's browser, settings saved from the page: (org, it, uids)."""
    general = await env.hospital("General Hospital")
    base, uids = unit(slapd, people)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/integrations"
    r = await form_post(admin, page, page, settings_form(slapd, base, **changes))
    assert r.status_code == 303, r.text[:3000]
    return general.id, admin, uids


async def test_settings_sync_import_results_and_report(env: Env, slapd: Slapd) -> None:
    general = await env.hospital("General Hospital")
    base, uids = unit(slapd, 3)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = f"/orgs/{general.id}/integrations"
    org_page = (await admin.get(f"/orgs/{general.id}")).text
    assert f'href="{page}"' in org_page and 'href="/directory/integrations"' in org_page
    assert (await admin.get("/directory/integrations")).headers["location"] == page
    first = await admin.get(page)
    assert first.status_code == 200
    assert "Not configured" in first.text and "No imports yet." in first.text
    assert "Sync Users Now</button>" not in first.text  # nothing to sync yet
    # A refused form is shown again as sent, the field marked, the password not echoed.
    r = await form_post(admin, page, page, settings_form(slapd, base, url="http://x"))
    assert r.status_code == 400
    assert "The server URL must be ldaps://" in r.text
    assert 'id="f-url" name="url" value="http://x"' in r.text and 'aria-invalid="true"' in r.text
    assert BIND_PW not in r.text
    r = await form_post(admin, page, page, settings_form(slapd, base, max_disable_percent="ten"))
    assert r.status_code == 400 and "whole percentage" in r.text
    no_secret = settings_form(slapd, base)
    del no_secret["bind_secret"]
    r = await form_post(admin, page, page, no_secret)
    assert r.status_code == 400 and "The bind password is required." in r.text
    r = await form_post(admin, page, page, settings_form(slapd, base))
    assert r.status_code == 303 and r.headers["location"] == f"{page}?m=saved"
    shown = (await admin.get(r.headers["location"])).text
    assert "Status: Connected." in shown and "Connected</span>" in shown
    assert 'id="f-bind_secret-state">Set</strong>' in shown and BIND_PW not in shown
    assert "Sync Users Now</button>" in shown
    # Saved again without the password: it is kept.
    r = await form_post(admin, page, page, no_secret)
    assert r.status_code == 303 and r.headers["location"].endswith("m=saved")
    r = await form_post(admin, page, f"{page}/sync", {})
    assert r.status_code == 303 and r.headers["location"] == f"{page}?m=done"
    shown = (await admin.get(r.headers["location"])).text
    assert "The sync finished" in shown and "1 import, the most recent first" in shown
    runs, _ = await env.ldap.runs(SYSTEM_CALLER, general.id)
    assert runs[0].counts.created == 3 and runs[0].state is RunState.DONE
    assert f"{page}/runs/{runs[0].id}" in shown
    report = await admin.get(f"{page}/runs/{runs[0].id}")
    assert report.status_code == 200 and "Import User Process" in report.text
    assert report.text.count("<td>CREATED</td>") == 3
    assert "Given0 Family0" in report.text and f"/orgs/{general.id}/user/{uids[0]}" in report.text
    # Every act is audited with the console user as the actor.
    (created,) = await env.audit("directory.ldap.settings.create")
    assert created.event.actor == "console:gh-admin" and created.event.channel.value == "console"
    assert BIND_PW not in str(created.event.details)
    synced = await env.audit("directory.ldap.sync")
    assert synced[0].event.actor == "console:gh-admin" and synced[0].event.details["created"] == 3


async def test_the_status_refresh_does_not_keep_the_session_alive(env: Env, slapd: Slapd) -> None:
    org, admin, _ = await configured(env, slapd)
    status = await admin.get(f"/orgs/{org}/integrations/status")
    assert status.status_code == 200
    assert status.text.lstrip().startswith("{#") is False and "<html" not in status.text
    assert 'id="ldap-status"' in status.text and "Connected</span>" in status.text
    assert 'data-refresh-seconds="10"' in status.text
    env.clock.advance(15 * 60)
    assert (await admin.get(f"/orgs/{org}/integrations/status")).status_code == 200
    env.clock.advance(6 * 60)  # 21 minutes after the last page the user asked for
    r = await admin.get(f"/orgs/{org}/integrations")
    assert r.status_code == 303 and r.headers["location"] == "/signin?m=inactive"


async def test_a_wrong_secret_or_an_unreachable_server_is_not_connected(
    env: Env, slapd: Slapd
) -> None:
    org, admin, _ = await configured(env, slapd)
    page = f"/orgs/{org}/integrations"
    form = await saved_form(env, org, bind_secret="wrong secret")
    r = await form_post(admin, page, page, form)
    assert r.headers["location"] == f"{page}?m=saved-not-connected"
    shown = (await admin.get(r.headers["location"])).text
    assert "Not Connected</span>" in shown and 'id="ldap-error"' in shown
    r = await form_post(admin, page, f"{page}/sync", {})
    assert r.headers["location"] == f"{page}?m=failed"
    shown = (await admin.get(r.headers["location"])).text
    assert "The sync failed: nothing was changed." in shown
    assert (await env.ldap.status(SYSTEM_CALLER, org)).linked_users == 0
    form = await saved_form(env, org, bind_secret=BIND_PW, url=f"ldap://127.0.0.1:{free_port()}")
    r = await form_post(admin, page, page, form)
    assert r.headers["location"] == f"{page}?m=saved-not-connected"
    assert "Not Connected</span>" in (await admin.get(f"{page}/status")).text


async def test_a_held_mass_disable_is_confirmed_from_the_page(env: Env, slapd: Slapd) -> None:
    org, admin, uids = await configured(env, slapd, people=4)
    page = f"/orgs/{org}/integrations"
    r = await form_post(admin, page, f"{page}/sync", {})
    assert r.headers["location"].endswith("m=done")
    assert (await admin.get(f"{page}/confirm")).headers["location"] == page  # nothing held
    form = await saved_form(env, org, user_filter="(uid=nobody-at-all)")  # every user would go
    r = await form_post(admin, page, page, form)
    assert r.status_code == 303
    r = await form_post(admin, page, f"{page}/sync", {})
    assert r.headers["location"] == f"{page}?m=held"
    shown = (await admin.get(r.headers["location"])).text
    assert 'id="ldap-held"' in shown and "would disable 4 of 4 synced users" in shown
    for login in uids:
        assert (await env.directory.users.get(SYSTEM_CALLER, login)).can_login
    ask = await admin.get(f"{page}/confirm")
    assert ask.status_code == 200 and "Disable the users who left the directory?" in ask.text
    r = await form_post(admin, f"{page}/confirm", f"{page}/confirm", {})
    assert r.headers["location"] == f"{page}?m=done"
    for login in uids:
        assert not (await env.directory.users.get(SYSTEM_CALLER, login)).can_login
    runs, total = await env.ldap.runs(SYSTEM_CALLER, org)
    assert runs[0].counts.disabled == 4 and "ldap-held" not in (await admin.get(page)).text
    # Confirming again (a second click, a stale page) runs nothing.
    r = await form_post(admin, page, f"{page}/confirm", {})
    assert r.headers["location"] == page
    assert (await env.ldap.runs(SYSTEM_CALLER, org))[1] == total


async def test_auditors_read_and_change_nothing(env: Env, slapd: Slapd) -> None:
    org, admin, _ = await configured(env, slapd)
    await form_post(admin, f"/orgs/{org}/integrations", f"/orgs/{org}/integrations/sync", {})
    auditor = await env.browser("eve", Role.AUDITOR, organisation=org)
    page = f"/orgs/{org}/integrations"
    shown = await auditor.get(page)
    assert shown.status_code == 200 and "Connected</span>" in shown.text
    assert "can view this integration but change nothing" in shown.text
    assert "Sync Users Now</button>" not in shown.text
    assert '<fieldset class="card" disabled>' in shown.text
    runs, _ = await env.ldap.runs(SYSTEM_CALLER, org)
    assert (await auditor.get(f"{page}/runs/{runs[0].id}")).status_code == 200
    token = csrf_of(shown.text)
    for path in (page, f"{page}/sync", f"{page}/confirm"):
        r = await auditor.post(path, data={"csrf_token": token, "url": "ldaps://evil.example"})
        assert r.status_code == 403, path
    assert (await auditor.get(f"{page}/confirm")).status_code == 403
    saved = await env.ldap.settings(SYSTEM_CALLER, org)
    assert saved is not None and saved.url == slapd.url
    assert len((await env.ldap.runs(SYSTEM_CALLER, org))[0]) == 1


async def test_another_organisation_gets_404(env: Env, slapd: Slapd) -> None:
    org, admin, _ = await configured(env, slapd)
    await form_post(admin, f"/orgs/{org}/integrations", f"/orgs/{org}/integrations/sync", {})
    (run,), _ = await env.ldap.runs(SYSTEM_CALLER, org)
    other = await env.hospital("Other Hospital")
    stranger = await env.browser("other-admin", Role.ORG_ADMIN, organisation=other.id)
    page = f"/orgs/{org}/integrations"
    for path in (page, f"{page}/status", f"{page}/runs/{run.id}", f"{page}/confirm"):
        assert (await stranger.get(path)).status_code == 404, path
    # Their own page does not show another's run either.
    assert (await stranger.get(f"/orgs/{other.id}/integrations/runs/{run.id}")).status_code == 404
    assert (await admin.get(f"{page}/runs/{run.id + 1000}")).status_code == 404
    token = csrf_of((await stranger.get(f"/orgs/{other.id}/integrations")).text)
    assert (await stranger.post(f"{page}/sync", data={"csrf_token": token})).status_code == 404
    r = await stranger.post(f"/orgs/{other.id}/integrations/sync", data={"csrf_token": token})
    assert r.status_code == 400 and "Save the settings first" in r.text
    assert (await stranger.get("/directory/integrations")).headers["location"] == (
        f"/orgs/{other.id}/integrations"
    )
    assert len((await env.ldap.runs(SYSTEM_CALLER, org))[0]) == 1


async def test_synced_fields_are_read_only_on_the_user_page(env: Env, slapd: Slapd) -> None:
    org, admin, uids = await configured(env, slapd)
    await form_post(admin, f"/orgs/{org}/integrations", f"/orgs/{org}/integrations/sync", {})
    path = f"/orgs/{org}/user/{uids[0]}"
    shown = (await admin.get(path)).text
    assert 'id="synced-hint"' in shown
    for name in ("first_name", "last_name", "email", "job_title", "office_phone"):
        assert " readonly" in input_tag(shown, name), name
    for name in ("middle_name", "credentials", "address2"):
        assert " readonly" not in input_tag(shown, name), name
    # A hand-made POST changing a synced field is refused next to the field.
    user = await env.directory.users.get(SYSTEM_CALLER, uids[0])
    sent = {**profileform.profile_values(user), "last_name": "Edited", "middle_name": "Q"}
    r = await form_post(admin, path, path, sent)
    assert r.status_code == 400 and "last_name is synced from the organisation" in r.text
    assert 'aria-invalid="true"' in input_tag(r.text, "last_name")
    assert (await env.directory.users.get(SYSTEM_CALLER, uids[0])).profile.last_name == "Family0"
    # Fields the directory does not fill stay editable.
    del sent["last_name"]
    r = await form_post(admin, path, path, {**sent, "last_name": "Family0"})
    assert r.status_code == 303, r.text[:2000]
    assert (await env.directory.users.get(SYSTEM_CALLER, uids[0])).profile.middle_name == "Q"


async def test_console_sign_in_with_the_directory_password(env: Env, slapd: Slapd) -> None:
    org, admin, uids = await configured(env, slapd, is_sign_in_enabled="on")
    await form_post(admin, f"/orgs/{org}/integrations", f"/orgs/{org}/integrations/sync", {})
    await env.directory.users.update(SYSTEM_CALLER, uids[1], UserUpdate(is_org_admin=True))
    email = (await env.directory.users.get(SYSTEM_CALLER, uids[1])).profile.email
    browser = await env.anonymous()
    page = await browser.get("/signin")
    fields = {"username": email, "csrf_token": csrf_of(page.text)}
    r = await browser.post("/signin", data={**fields, "password": "not it"})
    assert r.status_code == 401 and "Invalid username or password" in r.text
    r = await browser.post("/signin", data={**fields, "password": password_of(uids[1])})
    assert r.status_code == 303 and r.headers["location"] == "/"  # no password to change
    assert (await browser.get(f"/orgs/{org}/integrations")).status_code == 200
    password_page = await browser.get("/account/password")
    assert "change it in the directory" in password_page.text
    assert 'name="current"' not in password_page.text
    # The directory cannot be reached: said, and not counted.
    form = await saved_form(env, org, url=f"ldap://127.0.0.1:{free_port()}")
    await env.ldap.save(SYSTEM_CALLER, ldapform.settings_of(form, org), None)
    other = await env.anonymous()
    page = await other.get("/signin")
    fields = {"username": email, "csrf_token": csrf_of(page.text)}
    r = await other.post("/signin", data={**fields, "password": password_of(uids[1])})
    assert r.status_code == 503
    assert DIRECTORY_UNAVAILABLE.replace("'", "&#39;") in r.text
    (account,) = [u for u in await env.console.list_users() if u.username == email]
    assert account.failed_logins == 0
