"""The Coverage panel of Update User Profile: busy state, held messages, Release now.

The console here runs without the XMPP server, so its coverage desk reads the
database and Release now leaves a request for the server (the server's side:
tests/features/test_coverage_admin.py). SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from carewire.core.stores import BusyKind, BusyPeriod
from carewire.directory.model import Organisation
from carewire.features.coverage.desk import Released
from carewire.security.audit import Channel
from carewire.security.console_auth import Role
from carewire.web.console.directory.common import when
from carewire.web.console.directory.coverage import notice_of
from tests.web.console.test_directory_support import DOMAIN, Env, db_url, env, form_post

__all__ = ["db_url", "env"]

RELEASE_BUTTON = ">Release now</button>"


def _stanza(n: int) -> str:
    return (
        f"<message xmlns='jabber:client' type='chat' from='bob@{DOMAIN}/phone' "
        f"to='ann@{DOMAIN}'><body>PHI {n}: potassium 6.1</body></message>"
    )


async def _busy_ann(env: Env) -> Organisation:
    """Ann (of General Hospital) in Do Not Disturb for 30 minutes, two messages held for her."""
    general = await env.hospital("General Hospital")
    await env.user(general.id, "ann", first="Ann", last="Able")
    await env.user(general.id, "bob", first="Bob", last="Bond")
    stores = env.platform.stores
    until = env.clock.now() + timedelta(minutes=30)
    await stores.busy.put([BusyPeriod(login="ann", kind=BusyKind.DND, until=until, note="in OR")])
    for n in range(2):
        await stores.held.hold("ann", _stanza(n), stamp=env.clock.now(), reason="dnd")
    return general


async def test_the_panel_shows_why_until_when_and_who_sent_what_is_held(env: Env) -> None:
    general = await _busy_ann(env)
    admin = await env.browser("gh-admin", Role.ORG_ADMIN, organisation=general.id)
    page = await admin.get(f"/orgs/{general.id}/user/ann")
    assert page.status_code == 200, page.text
    text = page.text
    until = when(env.clock.now() + timedelta(minutes=30))
    assert 'id="coverage-heading">Coverage</h2>' in text
    assert f'id="coverage-state">Busy: Do Not Disturb until {until}</dd>' in text
    assert "<dd>in OR</dd>" in text
    assert 'id="coverage-held">2</dd>' in text
    row = f'<th scope="row">bob@{DOMAIN}</th><td>{when(env.clock.now())}</td><td>Do Not Disturb'
    assert text.count(row) == 2
    assert "PHI" not in text and "potassium" not in text  # clinical content stays in the store
    assert RELEASE_BUTTON in text


async def test_release_now_is_audited_and_left_for_the_running_server(env: Env) -> None:
    general = await _busy_ann(env)
    admin = await env.browser("sys")
    path = f"/orgs/{general.id}/user/ann"
    r = await form_post(admin, path, f"{path}/coverage/release", {})
    assert r.status_code == 303
    assert r.headers["location"] == f"{path}?m=release-requested#coverage"
    shown = await admin.get(r.headers["location"])
    assert "Release requested: the running server delivers the held messages" in shown.text
    kinds = {p.kind for p in await env.platform.stores.busy.of("ann")}
    assert kinds == {BusyKind.DND, BusyKind.RELEASE}
    [entry] = await env.audit("coverage.release")
    assert (entry.event.actor, entry.event.channel, entry.event.target) == (
        "console:sys",
        Channel.CONSOLE,
        "ann",
    )
    assert entry.event.details["held"] == 2


async def test_auditors_see_the_panel_but_cannot_release(env: Env) -> None:
    general = await _busy_ann(env)
    auditor = await env.browser("looker", Role.AUDITOR)
    path = f"/orgs/{general.id}/user/ann"
    page = await auditor.get(path)
    assert 'id="coverage-held">2</dd>' in page.text
    assert RELEASE_BUTTON not in page.text
    r = await form_post(auditor, path, f"{path}/coverage/release", {})
    assert r.status_code == 403
    assert await env.audit("coverage.release") == []
    assert {p.kind for p in await env.platform.stores.busy.of("ann")} == {BusyKind.DND}


async def test_another_organisations_administrator_gets_404(env: Env) -> None:
    general = await _busy_ann(env)
    other = await env.hospital("Other Hospital")
    stranger = await env.browser("oh-admin", Role.ORG_ADMIN, organisation=other.id)
    path = f"/orgs/{general.id}/user/ann"
    assert (await stranger.get(path)).status_code == 404
    own = f"/orgs/{other.id}/users"
    assert (await form_post(stranger, own, f"{path}/coverage/release", {})).status_code == 404
    assert await env.audit("coverage.release") == []


async def test_a_free_user_with_nothing_held(env: Env) -> None:
    general = await env.hospital("General Hospital")
    await env.user(general.id, "cy", first="Cy", last="Cole")
    admin = await env.browser("sys")
    path = f"/orgs/{general.id}/user/cy"
    page = await admin.get(path)
    assert 'id="coverage-state">Not busy</dd>' in page.text
    assert 'id="coverage-held">0</dd>' in page.text
    assert RELEASE_BUTTON not in page.text
    r = await form_post(admin, path, f"{path}/coverage/release", {})
    assert r.headers["location"] == f"{path}?m=nothing-held#coverage"
    assert await env.platform.stores.busy.of("cy") == []


def test_what_release_now_did_names_its_banner() -> None:
    def done(delivered: int = 0, *, waiting: bool = False, requested: bool = False) -> Released:
        return Released(
            login="ann", delivered=delivered, is_waiting=waiting, is_requested=requested
        )

    assert notice_of(done(3)) == "released"
    assert notice_of(done(waiting=True)) == "release-waiting"
    assert notice_of(done(requested=True)) == "release-requested"
    assert notice_of(done()) == "nothing-held"
