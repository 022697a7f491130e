"""SCIM Provisioning pages: an organisation's SCIM tokens listed, created (shown once), revoked.

One console on SQLite serves the module (the directory console of
:mod:`.test_directory_support` with SCIM provisioning added); each test makes
its own hospitals and console users. Tokens the page creates are checked with
the real token service (they verify until revoked), and every refusal is
checked to have changed nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import cast

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from carewire.directory.model import SYSTEM_CALLER
from carewire.identity.scim.model import ScimToken, ScimTokenError
from carewire.identity.scim.service import SCIM_PATH, ScimProvisioning
from carewire.security.console_auth import Role
from carewire.storage.scim import SqlScimStore
from carewire.web.console import ConsoleServices, create_console
from tests.web.console.test_directory_support import (
    CLIENT_IP,
    Env,
    csrf_of,
    form_post,
    open_env,
    sqlite_url,
)

# One worker runs the module, so its console is built once.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("web/console/test_directory_scim_tokens.py"),
]

LINK_BASE = "https://console.carewire.test:8443"
_TOKEN = re.compile(r'id="new-token"[^>]*value="(cwscim_[A-Za-z0-9_-]{43})"')


class World:
    """The directory console with SCIM provisioning, and one without."""

    def __init__(self, env: Env, scim: ScimProvisioning, bare: httpx.ASGITransport) -> None:
        self.env = env
        self.scim = scim
        self.bare = bare

    async def tokens(self, organisation: int) -> list[ScimToken]:
        """The organisation's tokens, as the service lists them."""
        return await self.scim.tokens.list(SYSTEM_CALLER, organisation)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        env = await open_env(sqlite_url(tmp_path_factory.mktemp("scim-console")), stack)
        scim = ScimProvisioning(
            directory=env.directory,
            store=SqlScimStore(env.platform.db),
            audit=env.platform.audit,
            clock=env.clock,
        )
        bare = env.transport
        services = cast("ConsoleServices", cast("Starlette", bare.app).state.services)
        app = create_console(replace(services, scim=scim))
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40000))
        yield World(replace(env, transport=transport), scim, bare)


def created_token(html: str) -> str:
    """The token a creation's answer shows."""
    found = _TOKEN.search(html)
    assert found, html[:2000]
    return found.group(1)


async def test_an_administrator_creates_lists_and_revokes_a_token(world: World) -> None:
    env = world.env
    general = await env.hospital("Lakeside Hospital")
    admin = await env.browser("lakeside-admin", Role.ORG_ADMIN, organisation=general.id)
    path = f"/orgs/{general.id}/scim-tokens"
    org_page = await admin.get(f"/orgs/{general.id}")
    assert f'href="{path}"' in org_page.text  # linked from Update Organization
    empty = await admin.get(path)
    assert empty.status_code == 200 and "No SCIM tokens yet." in empty.text
    assert f'value="{LINK_BASE}{SCIM_PATH}"' in empty.text
    assert "LAKESIDE HOSPITAL / SCIM PROVISIONING" in empty.text

    r = await form_post(admin, path, path, {"name": "  entra-id ", "invite_users": "on"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = created_token(r.text)
    assert "Token entra-id created" in r.text and "it is shown only this once" in r.text
    assert f'id="new-base-url" class="cw-mono" value="{LINK_BASE}{SCIM_PATH}"' in r.text
    verified = await world.scim.tokens.verify(token)
    assert verified.organisation_id == general.id and verified.invite_users

    listed = await admin.get(path)
    assert token not in listed.text  # shown once
    row = re.search(r"<tr>\s*<th scope=\"row\">entra-id</th>(.*?)</tr>", listed.text, re.S)
    assert row, listed.text
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert cells[0] == "Yes" and cells[2] == "console:lakeside-admin"
    assert cells[3] != "Never" and cells[4] == "Active"  # the verify above used it
    (entry, *_) = await env.audit("scim.token.create")
    assert entry.event.actor == "console:lakeside-admin" and entry.event.remote_ip == CLIENT_IP
    assert entry.event.target == f"organisation:{general.id}"
    assert token not in str(entry.event.details)

    revoke = f"{path}/{verified.id}/revoke"
    confirm = await admin.get(revoke)
    assert confirm.status_code == 200
    assert "Revoke the SCIM token entra-id? The identity provider using it is refused" in (
        confirm.text
    )
    r = await admin.post(revoke, data={"csrf_token": csrf_of(confirm.text)})
    assert r.status_code == 303 and r.headers["location"] == f"{path}?m=revoked"
    shown = await admin.get(r.headers["location"])
    assert "The SCIM token was revoked." in shown.text and "Revoked " in shown.text
    assert f'href="{revoke}"' not in shown.text  # no Revoke link on a revoked token
    with pytest.raises(ScimTokenError, match="revoked"):
        await world.scim.tokens.verify(token)
    revocations = len(await env.audit("scim.token.revoke"))
    r = await form_post(admin, path, revoke, {})  # again: nothing more happens
    assert r.status_code == 303 and len(await env.audit("scim.token.revoke")) == revocations


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "A SCIM token name has 1 to 200 printable characters."),
        ("   ", "A SCIM token name has 1 to 200 printable characters."),
        ("x" * 201, "A SCIM token name has 1 to 200 printable characters."),
        ("tab\there", "A SCIM token name has 1 to 200 printable characters."),
        ("okta", "The organisation has a SCIM token named &#39;okta&#39;."),
    ],
)
async def test_a_refused_name_creates_nothing_and_keeps_the_form(
    world: World, name: str, message: str
) -> None:
    env = world.env
    slug = f"refusal{len(name)}{name[:1].strip()}"
    org = await env.hospital(f"Hospital {slug}", f"admin@{slug}.example")
    admin = await env.browser(f"{slug}-admin", Role.ORG_ADMIN, organisation=org.id)
    await world.scim.tokens.create(SYSTEM_CALLER, org.id, "okta")
    path = f"/orgs/{org.id}/scim-tokens"
    r = await form_post(admin, path, path, {"name": name})  # invite_users unchecked
    assert r.status_code == 400 and message in r.text
    assert 'aria-invalid="true"' in r.text and 'id="new-token"' not in r.text
    assert 'id="f-invite_users" name="invite_users">' in r.text  # left unchecked
    assert [t.name for t in await world.tokens(org.id)] == ["okta"]


async def test_a_token_without_invitations(world: World) -> None:
    env = world.env
    org = await env.hospital("Quiet Hospital")
    admin = await env.browser("quiet-admin", Role.ORG_ADMIN, organisation=org.id)
    path = f"/orgs/{org.id}/scim-tokens"
    r = await form_post(admin, path, path, {"name": "ldap-users"})
    assert r.status_code == 200
    assert not (await world.scim.tokens.verify(created_token(r.text))).invite_users
    assert "<td>No</td>" in (await admin.get(path)).text


async def test_an_auditor_only_reads(world: World) -> None:
    env = world.env
    org = await env.hospital("Audited Hospital")
    await world.scim.tokens.create(SYSTEM_CALLER, org.id, "idp")
    (token,) = await world.tokens(org.id)
    path = f"/orgs/{org.id}/scim-tokens"
    for username, organisation in (("org-auditor", org.id), ("global-auditor", None)):
        auditor = await env.browser(username, Role.AUDITOR, organisation=organisation)
        page = await auditor.get(path)
        assert page.status_code == 200 and '<th scope="row">idp</th>' in page.text
        assert "Your role can view the tokens but not create or revoke them." in page.text
        assert "Create Token" not in page.text and "/revoke" not in page.text
        csrf = csrf_of(page.text)  # the session's (sign-out form): a valid token
        r = await auditor.post(path, data={"name": "mine", "csrf_token": csrf})
        assert r.status_code == 403
        assert (await auditor.get(f"{path}/{token.id}/revoke")).status_code == 403
        r = await auditor.post(f"{path}/{token.id}/revoke", data={"csrf_token": csrf})
        assert r.status_code == 403
    (still,) = await world.tokens(org.id)
    assert still.name == "idp" and not still.is_revoked


async def test_another_organisations_tokens_are_not_found(world: World) -> None:
    env = world.env
    mine = await env.hospital("Mine Hospital")
    theirs = await env.hospital("Theirs Hospital")
    await world.scim.tokens.create(SYSTEM_CALLER, theirs.id, "their-idp")
    (their_token,) = await world.tokens(theirs.id)
    await world.scim.tokens.create(SYSTEM_CALLER, mine.id, "my-idp")  # a lax look-up would find it
    admin = await env.browser("mine-admin", Role.ORG_ADMIN, organisation=mine.id)
    own = f"/orgs/{mine.id}/scim-tokens"
    other = f"/orgs/{theirs.id}/scim-tokens"
    r = await admin.get(other)
    assert r.status_code == 404 and "Page not found" in r.text and "their-idp" not in r.text
    csrf = csrf_of((await admin.get(own)).text)
    r = await admin.post(other, data={"name": "sneaky", "csrf_token": csrf})
    assert r.status_code == 404
    for target in (f"{other}/{their_token.id}/revoke", f"{own}/{their_token.id}/revoke"):
        assert (await admin.get(target)).status_code == 404, target
        assert (await admin.post(target, data={"csrf_token": csrf})).status_code == 404, target
    assert (await admin.get(f"{own}/999999/revoke")).status_code == 404
    assert [(t.name, t.is_revoked) for t in await world.tokens(theirs.id)] == [("their-idp", False)]
    assert [(t.name, t.is_revoked) for t in await world.tokens(mine.id)] == [("my-idp", False)]
    # A system administrator manages any organisation's tokens.
    system = await env.browser("scim-system-admin", Role.SYSTEM_ADMIN)
    r = await form_post(system, other, other, {"name": "by-system", "invite_users": "on"})
    assert r.status_code == 200 and created_token(r.text)
    assert {t.created_by for t in await world.tokens(theirs.id)} >= {"console:scim-system-admin"}


async def test_posts_need_the_sessions_csrf_token(world: World) -> None:
    env = world.env
    org = await env.hospital("Guarded Hospital")
    await world.scim.tokens.create(SYSTEM_CALLER, org.id, "idp")
    (token,) = await world.tokens(org.id)
    admin = await env.browser("guarded-admin", Role.ORG_ADMIN, organisation=org.id)
    path = f"/orgs/{org.id}/scim-tokens"
    for data in ({"name": "forged"}, {"name": "forged", "csrf_token": "not-the-token"}):
        r = await admin.post(path, data=data)
        assert r.status_code == 403 and "This form has expired" in r.text
        r = await admin.post(f"{path}/{token.id}/revoke", data=data)
        assert r.status_code == 403
    (still,) = await world.tokens(org.id)
    assert still.name == "idp" and not still.is_revoked


async def test_signed_out_and_not_served(world: World) -> None:
    env = world.env
    org = await env.hospital("Plain Hospital")
    anonymous = await env.anonymous()
    r = await anonymous.get(f"/orgs/{org.id}/scim-tokens")
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    # A console built without SCIM provisioning has no such page.
    admin = await env.browser("plain-admin", Role.ORG_ADMIN, organisation=org.id)
    async with httpx.AsyncClient(transport=world.bare, base_url="https://test") as bare:
        bare.cookies = admin.cookies
        r = await bare.get(f"/orgs/{org.id}/scim-tokens")
        assert r.status_code == 404 and "Page not found" in r.text
