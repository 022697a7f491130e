"""The dashboard's system section: who sees it, the refresh that is not activity, the words."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from carewire.monitoring.model import Health, LatencySummary, SystemStatus
from carewire.security.console_auth import Role
from carewire.web.console import create_console
from carewire.web.console.system import age_text, ms_text, present
from tests.web.console.conftest import Console, client_for, sign_in

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def snapshot(*, p99: float | None = 0.42) -> SystemStatus:
    return SystemStatus(
        at=AT,
        online_users=3,
        devices=5,
        connections={"c2s": 4, "websocket": 1, "s2s": 0, "component": 0},
        open_alerts=(timedelta(minutes=75), timedelta(seconds=20)),
        failed_rule_deliveries=2,
        failed_message_deliveries=1,
        latency=LatencySummary(p50=0.08, p99=p99, count=12, objective=1.0),
        certificate_status="Expires Soon",
        certificate_expires=AT + timedelta(days=12),
        certificate_issuer="Hospital CA",
        versions=(("Carewire", "0.1.0"), ("Python", "3.11"), ("Database", "SQLite 3.45")),
        adapters=(Health(name="XMPP", is_up=True, state="running"),),
        listeners=(Health(name="c2s", is_up=False, state="down", detail="5222"),),
    )


@pytest.fixture
async def live(console: Console) -> AsyncIterator[Console]:
    async def status() -> SystemStatus:
        return snapshot()

    svc = dataclasses.replace(console.services, status=status)
    transport = httpx.ASGITransport(app=create_console(svc))
    async with client_for(transport) as client:
        yield dataclasses.replace(console, client=client, transport=transport, services=svc)


async def test_a_system_administrator_sees_the_figures(live: Console) -> None:
    await live.add_user("sam")
    await sign_in(live.client, "sam")
    page = (await live.client.get("/")).text
    for text in (
        'id="cw-system"',
        'data-refresh="/dashboard/status"',
        '<dd id="online-users">3</dd>',
        '<dd id="online-devices">5</dd>',
        "4 XMPP, 1 WebSocket, 0 federation",
        "(oldest 1 h 15 min)",
        "1 h 15 min, 20 s",
        "2 rule deliveries, 1 messages",
        "420 ms",
        "within objective",
        "p99 ≤ 1.0 s",
        "cw-status-expires_soon",
        "2026-03-13",
        "Hospital CA",
        "SQLite 3.45",
    ):
        assert text in page, text
    panel = await live.client.get("/dashboard/status")
    assert panel.status_code == 200
    assert 'id="cw-system"' in panel.text and "<nav" not in panel.text


async def test_an_organisation_administrator_does_not(live: Console) -> None:
    await live.add_user("olga", Role.ORG_ADMIN)
    await sign_in(live.client, "olga")
    assert 'id="cw-system"' not in (await live.client.get("/")).text
    assert (await live.client.get("/dashboard/status")).status_code == 404


async def test_the_refresh_does_not_keep_the_session_alive(live: Console) -> None:
    await live.add_user("ivy")
    await sign_in(live.client, "ivy")
    live.clock.advance(19 * 60)
    assert (await live.client.get("/dashboard/status")).status_code == 200
    live.clock.advance(2 * 60)
    r = await live.client.get("/dashboard/status")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")


async def test_anonymous_refresh_goes_to_sign_in(live: Console) -> None:
    r = await live.client.get("/dashboard/status")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")


def test_words() -> None:
    assert ms_text(None) == "—" and ms_text(0.0423) == "42 ms" and ms_text(2.25) == "2.2 s"
    assert age_text(timedelta(seconds=-3)) == "0 s"
    assert age_text(timedelta(minutes=12, seconds=5)) == "12 min"
    assert age_text(timedelta(hours=3, minutes=5)) == "3 h 5 min"
    over = present(snapshot(p99=1.5))
    assert (over["verdict"], over["verdict_class"]) == ("above objective", "expired")
    none = present(snapshot(p99=None))
    assert none["verdict"] == "no alert measured yet" and none["p99"] == "—"
