"""Fixtures for the API tests: the real platform on a fresh database, and clients with tokens.

``api`` runs on SQLite and (with ``CAREWIRE_TEST_PG_URL``) PostgreSQL through the
storage tests' ``db_url``; ``sqlite_api`` only on SQLite, for tests whose
subject is the HTTP layer rather than the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.datasets.model import AttrType, RecordChanged
from carewire.security.tokens import Role
from carewire.web.api import ApiServices, create_api
from tests import world
from tests.storage.conftest import db_url
from tests.templates import prefill

__all__ = ["Api", "add_calls", "alert_rule", "api", "db_url", "sqlite_api", "update_rule"]

BASE_URL = "http://test"


@dataclass(frozen=True, slots=True, kw_only=True)
class Api:
    """The API on a platform, and clients for an admin, a read-only and no token.

    Attributes:
        platform: The services behind the API.
        app: The API application.
        admin: A client sending the admin token ``admin-token``.
        reader: A client sending the read-only token ``reader-token``.
        anonymous: A client sending no token.
        admin_token: The admin token itself.
        clock: The platform's clock.
        events: Every ``RecordChanged`` the platform announced.
    """

    platform: Assembly
    app: FastAPI
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    admin_token: str
    clock: FakeClock
    events: list[RecordChanged]


def client(app: ASGIApp, token: str | None = None) -> httpx.AsyncClient:
    """A client talking to ``app`` in process, with ``token`` as its bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


def services_of(platform: Assembly) -> ApiServices:
    """The API's services, taken from ``platform`` (as ``server.py`` does)."""
    return ApiServices(
        registry=platform.registry,
        datasets=platform.datasets,
        tokens=platform.tokens,
        adapters=platform.adapters,
        rules=platform.rules,
        engine=platform.engine,
    )


async def _open(url: str) -> AsyncIterator[Api]:
    clock = FakeClock()
    platform = await assemble(Options(url=await prefill(url), clock=clock))
    events: list[RecordChanged] = []
    platform.datasets.subscribe(events.append)
    try:
        _, admin_token = await platform.tokens.create("admin-token", Role.ADMIN)
        _, reader_token = await platform.tokens.create("reader-token", Role.READ_ONLY)
        app = create_api(services_of(platform))
        async with (
            client(app, admin_token) as admin,
            client(app, reader_token) as reader,
            client(app) as anonymous,
        ):
            yield Api(
                platform=platform,
                app=app,
                admin=admin,
                reader=reader,
                anonymous=anonymous,
                admin_token=admin_token,
                clock=clock,
                events=events,
            )
    finally:
        await platform.close()


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    """The API on a fresh database of each kind."""
    async for opened in _open(db_url):
        yield opened


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API on a fresh SQLite database."""
    async for opened in _open(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"):
        yield opened


def assert_problem(
    response: httpx.Response, status: int, code: str, *, detail: str | None = None
) -> dict[str, object]:
    """Check ``response`` is an RFC 9457 problem with ``status`` and ``code``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert isinstance(body, dict)
    assert body["type"] == f"urn:carewire:problem:{code}"
    assert body["status"] == status and body["code"] == code
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if detail is not None:
        assert detail in body["detail"], body["detail"]
    return body


#: The dataset and adapters the rules, adapters and deliveries tests share: the ward of
#: :mod:`tests.world`, with adapters of their own names.
CALLS = world.CALLS
UPDATES = "Data Updates"
XMPP = "Chat"


async def add_calls(platform: Assembly) -> None:
    """The world's datasets (CALLS with a numeric priority) and two enabled adapters.

    ``Data Updates`` is a DataUpdate adapter and ``Chat`` the XMPP adapter.
    """
    await world.define_ward(platform, priority=AttrType.INTEGER)
    await world.add_adapters(platform, updates=UPDATES, chat=XMPP, chat_domain="carewire.test")


def update_rule(name: str = "note open calls", **changes: object) -> dict[str, object]:
    """The world's ``note open calls`` rule on CALLS, acted on by ``Data Updates``."""
    return world.note_rule(name, **{"adapter": UPDATES, **changes})


def alert_rule(name: str = "alert on urgent calls", **changes: object) -> dict[str, object]:
    """The world's alert for calls of priority 3 or more, sent by ``Chat``."""
    return world.urgent_alert(name, **{"adapter": XMPP, **changes})
