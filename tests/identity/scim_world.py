"""A world for the SCIM tests: a platform, organisations with SCIM tokens, HTTP clients.

The SCIM app is mounted at ``/scim/v2`` as the HTTPS app mounts it, and reached
with httpx through ASGI (the interop test reaches the real server over TLS).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_scim import scim_provisioning
from carewire.clock import FakeClock
from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, DirectoryEvent, NewHospital
from carewire.identity.scim.service import SCIM_PATH, ScimProvisioning
from carewire.mail import MemoryMailer
from carewire.web.scim import create_scim_app
from tests.hashing import CHEAP_HASHER

CLIENT_IP = "198.51.100.7"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


@dataclass(slots=True, kw_only=True)
class ScimWorld:
    """A platform serving SCIM, two organisations and a client for each.

    Attributes:
        platform: The services.
        scim: SCIM provisioning on them.
        app: The SCIM app, mounted at ``/scim/v2``.
        mailer: Every mail sent.
        events: Every directory event announced.
        general: The organisation most tests provision.
        other: Another organisation (its resources are never visible to ``client``).
        client: A client with a SCIM token of ``general``.
        other_client: A client with a SCIM token of ``other``.
        anonymous: A client without a token.
        stack: Closes the clients.
    """

    platform: Assembly
    scim: ScimProvisioning
    app: Starlette
    mailer: MemoryMailer
    events: list[DirectoryEvent]
    general: int
    other: int
    client: httpx.AsyncClient
    other_client: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    stack: AsyncExitStack

    async def token_client(self, organisation: int, name: str, **kwargs: Any) -> httpx.AsyncClient:
        """A client with a new SCIM token ``name`` of ``organisation``."""
        _, token = await self.scim.tokens.create(SYSTEM_CALLER, organisation, name, **kwargs)
        return await self.stack.enter_async_context(http_client(self.app, token))


def http_client(app: Starlette, token: str | None) -> httpx.AsyncClient:
    """A client of ``app`` from :data:`CLIENT_IP`, sending ``token`` as its bearer token."""
    headers = {"Content-Type": SCIM_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40001))
    return httpx.AsyncClient(
        transport=transport, base_url=f"https://test{SCIM_PATH}", headers=headers
    )


async def hospital(platform: Assembly, name: str) -> int:
    """A hospital made by the system; its id."""
    slug = name.lower().replace(" ", "")
    org = await platform.directory.organisations.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name=name,
            office_number="(555) 010-0000",
            admin=AdminInvitee(email=f"admin@{slug}.example", first_name="Ada", last_name="Min"),
        ),
    )
    return int(org.id)


@asynccontextmanager
async def scim_world(url: str) -> AsyncIterator[ScimWorld]:
    """The world on the database at ``url``."""
    mailer = MemoryMailer()
    platform = await assemble(
        Options(url=url, clock=FakeClock(), mailer=mailer, secret_hasher=CHEAP_HASHER)
    )
    events: list[DirectoryEvent] = []

    async def listen(event: DirectoryEvent) -> None:
        events.append(event)

    platform.directory.subscribe(listen)
    try:
        async with AsyncExitStack() as stack:
            general = await hospital(platform, "General")
            other = await hospital(platform, "Other")
            scim = scim_provisioning(platform)
            app = Starlette(routes=[Mount(SCIM_PATH, create_scim_app(scim))])
            _, token = await scim.tokens.create(SYSTEM_CALLER, general, "idp")
            _, other_token = await scim.tokens.create(SYSTEM_CALLER, other, "idp")
            yield ScimWorld(
                platform=platform,
                scim=scim,
                app=app,
                mailer=mailer,
                events=events,
                general=general,
                other=other,
                client=await stack.enter_async_context(http_client(app, token)),
                other_client=await stack.enter_async_context(http_client(app, other_token)),
                anonymous=await stack.enter_async_context(http_client(app, None)),
                stack=stack,
            )
    finally:
        await platform.close()


def new_user(user_name: str, **more: Any) -> dict[str, Any]:
    """A User resource: ``user_name``'s local part as names, its address as work e-mail."""
    local = user_name.split("@")[0]
    email = user_name if "@" in user_name else f"{user_name}@general.example"
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": local.title(), "familyName": "Tester"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        **more,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """A PatchOp of ``operations``."""
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def assert_error(response: httpx.Response, status: int, scim_type: str | None = None) -> str:
    """Check a SCIM error response (RFC 7644 §3.12); its detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type, body
    return str(body.get("detail", ""))
