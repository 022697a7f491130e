"""Failed authentication per source address: the throttle, its bounded audit, lock notices.

The platform is assembled as the server assembles it (console, API and XMPP
share one throttle) on SQLite and PostgreSQL; lock notices go to a real SMTP
server (aiosmtpd on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_services import api_services
from carewire.clock import FakeClock
from carewire.mail import SmtpMailer
from carewire.security.audit import Channel
from carewire.security.console_auth import Role, SignInError
from carewire.security.enrolled import enrolled_device_check
from carewire.security.throttle import AuthThrottle, ThrottlePolicy
from carewire.security.tokens import Role as TokenRole
from carewire.web.api import create_api
from tests.hashing import CHEAP_HASHER
from tests.mailserver import SmtpServer
from tests.templates import prefill

POLICY = ThrottlePolicy(max_failures=5, window=timedelta(minutes=10))
ATTACKER = "203.0.113.66"
GOOD = "correct horse battery"


@dataclass(frozen=True, slots=True, kw_only=True)
class Platform:
    p: Assembly
    clock: FakeClock
    smtp: SmtpServer


@pytest.fixture
async def platform(db_url: str, smtp_server: SmtpServer) -> AsyncIterator[Platform]:
    clock = FakeClock()
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, starttls=False, sender="carewire@carewire.test"
    )
    p = await assemble(
        Options(
            url=await prefill(db_url),
            clock=clock,
            secret_hasher=CHEAP_HASHER,
            mailer=mailer,
            throttle=POLICY,
        )
    )
    try:
        yield Platform(p=p, clock=clock, smtp=smtp_server)
    finally:
        await p.close()


async def _actions(p: Assembly, action: str) -> list[dict[str, object]]:
    entries, _ = await p.audit.store.entries()
    return [
        {"target": e.event.target, "ip": e.event.remote_ip, **e.event.details}
        for e in entries
        if e.event.action == action
    ]


def test_pure_counting() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(
        clock, policy=ThrottlePolicy(max_failures=3, window=timedelta(seconds=60))
    )

    async def run() -> None:
        for _ in range(2):
            await throttle.failed("a", Channel.XMPP)
            clock.advance(40)
        await throttle.failed("a", Channel.XMPP)  # the first of the three left the window
        assert not throttle.is_throttled("a")
        await throttle.failed("a", Channel.API)
        assert throttle.is_throttled("a") and not throttle.is_throttled("b")
        assert not await throttle.admit("a", Channel.CONSOLE)
        assert await throttle.admit("b", Channel.CONSOLE)
        clock.advance(61)
        assert await throttle.admit("a", Channel.XMPP)
        await throttle.failed("", Channel.XMPP)  # no address: nothing to count

    asyncio.run(run())


async def test_a_console_flood_locks_nobody_and_the_audit_stays_bounded(
    platform: Platform,
) -> None:
    p = platform.p
    for n in range(3):
        await p.console.create_user(f"admin{n}", Role.SYSTEM_ADMIN, password=GOOD)
    for attempt in range(200):
        with pytest.raises(SignInError):
            await p.console.sign_in(f"admin{attempt % 3}", "guess", remote_ip=ATTACKER)
    failures = [e for e in await _actions(p, "login") if e["ip"] == ATTACKER]
    assert len(failures) == POLICY.max_failures  # then refused without a row each
    for user in await p.console.list_users():
        assert not user.is_locked and user.failed_logins <= 2
    # The rightful user, elsewhere, signs in at once.
    await p.console.sign_in("admin0", GOOD, remote_ip="10.0.0.5")
    platform.clock.advance(POLICY.window.total_seconds() + 1)
    assert await p.throttle.flush() == 1
    (period,) = await _actions(p, "auth.throttled")
    assert period["target"] == ATTACKER and period["refused"] == 200 - POLICY.max_failures
    assert period["channels"] == ["console"]


async def test_api_tokens_are_throttled_per_address(platform: Platform) -> None:
    p = platform.p
    _, token = await p.tokens.create("ops", TokenRole.ADMIN)
    app = create_api(api_services(p, None))
    transport = httpx.ASGITransport(app=app, client=(ATTACKER, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        statuses = [
            (await http.get("/datasets", headers={"Authorization": f"Bearer cw_{n:043d}"}))
            for n in range(12)
        ]
        assert [r.status_code for r in statuses] == [401] * 5 + [429] * 7
        assert statuses[-1].headers["retry-after"] == "60"
        assert statuses[-1].json()["code"] == "too-many-failures"
        # While throttled, the address is refused whatever it sends.
        r = await http.get("/datasets", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 429
    other = httpx.ASGITransport(app=app, client=("10.0.0.5", 4000))
    async with httpx.AsyncClient(transport=other, base_url="http://test") as http:
        r = await http.get("/datasets", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    assert len(await _actions(p, "api.auth")) == 5


async def test_a_lock_is_audited_and_mailed_to_system_administrators(platform: Platform) -> None:
    p = platform.p
    await p.console.create_user("chief", Role.SYSTEM_ADMIN, email="chief@h.test", password=GOOD)
    await p.console.create_user("other", Role.SYSTEM_ADMIN, password=GOOD)  # no address
    await p.console.create_user("olga", Role.ORG_ADMIN, email="olga@h.test", password=GOOD)
    await p.console.create_user("victim", Role.AUDITOR, password=GOOD)
    for n in range(p.console.policy.lock_after):
        with pytest.raises(SignInError):
            # Each from its own address: the throttle does not stop a distributed guess.
            await p.console.sign_in("victim", "guess", remote_ip=f"198.51.100.{n}")
        platform.clock.advance(181)
    await p.lockouts.drain()
    (lock,) = await _actions(p, "account.locked")
    assert lock["target"] == "victim" and lock["failed_logins"] == 10
    assert lock["ip"] == "198.51.100.9"
    inbox = platform.smtp.inbox
    assert [rcpt for _, rcpt in inbox.envelopes] == [["chief@h.test"]]
    (mail,) = inbox.messages
    assert mail["Subject"] == "Account locked: victim"
    assert "198.51.100.9" in mail.get_content() and "unlock" in mail.get_content()


async def test_enrolled_devices_are_found_by_user_and_address(platform: Platform) -> None:
    p = platform.p
    ana = await p.datasets.create("USERS", {"login": "ana"})
    await p.datasets.create("USERS", {"login": "bob"})
    device = {"status": "Registered", "vendor": "XMPP", "usr": ana.id}
    await p.datasets.create("DEVICES", {**device, "name": "ana/phone", "ip_address": "10.1.1.7"})
    wiped = {**device, "name": "ana/old", "ip_address": "10.1.1.8"}
    await p.datasets.create("DEVICES", {**wiped, "wipe_requested_at": platform.clock.now()})
    gone = {**device, "name": "ana/gone", "ip_address": "10.1.1.9", "status": "Unregistered"}
    await p.datasets.create("DEVICES", gone)
    check = enrolled_device_check(p.datasets)
    assert await check("ana", "10.1.1.7")
    assert not await check("ana", "10.1.1.8")  # wiped
    assert not await check("ana", "10.1.1.9")  # unregistered
    assert not await check("ana", "10.1.1.6")
    assert not await check("bob", "10.1.1.7")
    assert not await check("nobody", "10.1.1.7")
