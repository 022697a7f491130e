"""SCIM provisioning against the real server: HTTPS, then real XMPP clients over TLS.

An identity provider (httpx over TLS to ``/scim/v2``) creates a user with a
password: the user signs in with slixmpp at once. A group it creates puts a
colleague on the user's roster live. Deactivating the user (``active: false``)
ends the live session at once, and the next sign-in is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = [pytest.mark.interop]

Slix = Callable[..., Awaitable[SlixClient]]
PASSWORD = "correct horse battery staple"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TIMEOUT = 10.0


@pytest.fixture
async def idp(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An identity provider's client: a hospital of its own and a SCIM token of it."""
    name = f"SCIM Hospital {id(server)}-{asyncio.get_running_loop().time():.0f}"
    r = server.cli(
        "org", "create-hospital", name, "--office", "555-123-4567",
        "--admin-email", "chief@scim-hospital.example", "--admin-first", "C", "--admin-last", "C",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    org = r.stdout.split()[2].rstrip(":")
    r = server.cli("scim", "token", "create", org, "idp", "--no-invite")
    assert r.returncode == 0, r.stderr
    base = f"https://127.0.0.1:{server.ports['https']}/scim/v2"
    headers = {
        "Authorization": f"Bearer {r.stdout.strip()}",
        "Content-Type": "application/scim+json",
    }
    async with httpx.AsyncClient(base_url=base, headers=headers, verify=False, timeout=10) as c:
        yield c


def user(login: str, **more: Any) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"{login}@scim-hospital.example",
        "name": {"givenName": login.title(), "familyName": "Scim"},
        "emails": [{"value": f"{login}@scim-hospital.example", "primary": True}],
        "password": PASSWORD,
        **more,
    }


async def test_provision_sign_in_group_and_deactivate(
    server: RunningServer, idp: httpx.AsyncClient, slix: Slix
) -> None:
    r = await idp.post("/Users", json=user("sam"))
    assert r.status_code == 201, r.text
    sam = r.json()
    assert r.headers["location"].endswith(f"/scim/v2/Users/{sam['id']}")
    found = await idp.get("/Users", params={"filter": 'userName eq "SAM@scim-hospital.example"'})
    assert [u["id"] for u in found.json()["Resources"]] == [sam["id"]]
    colleague = (await idp.post("/Users", json=user("sue"))).json()

    client = await slix(server, sam["id"], PASSWORD)
    await client.xmpp.get_roster(timeout=TIMEOUT)
    client.xmpp.send_presence()
    r = await idp.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Night Shift",
            "members": [{"value": sam["id"]}, {"value": colleague["id"]}],
        },
    )
    assert r.status_code == 201, r.text
    push = await client.next(client.roster_pushes)  # the directory's group, live on the roster
    item = push["roster"]["items"][server.jid(colleague["id"])]
    assert item["groups"] == ["Night Shift"] and item["subscription"] == "both"

    ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    client.xmpp.add_event_handler(
        "disconnected", lambda _e: None if ended.done() else ended.set_result(None)
    )
    r = await idp.patch(
        f"/Users/{sam['id']}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert r.status_code in (200, 204), r.text
    await asyncio.wait_for(ended, TIMEOUT)  # the session ended at once
    with pytest.raises(AssertionError, match="authentication failed"):
        await slix(server, sam["id"], PASSWORD, resource="again")
    r = await idp.get(f"/Users/{sam['id']}")
    assert r.json()["active"] is False
