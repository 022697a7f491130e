"""Throttle and lockout counters shared by the nodes of a cluster (cluster/counters.py).

Two "nodes" are two objects with their own Redis clients on one key prefix;
their clock is one fake clock (the nodes' clocks agree through NTP). Redis
going away is a private redis-server the test kills.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from carewire import storage
from carewire.clock import FakeClock
from carewire.cluster.counters import RedisCounters
from carewire.core.accounts import AccountInput, AccountService
from carewire.core.auth import Admission, Authenticator, LockoutPolicy, LoginAuditor
from carewire.core.stores import Stores
from carewire.security.audit import Channel
from carewire.security.envelope import ephemeral_keyring
from carewire.security.shared_counters import SharedCountersDown
from carewire.security.throttle import AuthThrottle, ThrottlePolicy
from carewire.storage import migrate
from tests.cluster.lease_support import client, private_redis
from tests.templates import prefill

POLICY = ThrottlePolicy(max_failures=6, window=timedelta(minutes=10))
ATTACKER = "203.0.113.66"


def counters(url: str, prefix: str) -> RedisCounters:
    return RedisCounters(client(url), prefix=prefix)


async def close(*cs: RedisCounters) -> None:
    for c in cs:
        await c._redis.aclose()


def throttle(clock: FakeClock, shared: RedisCounters | None) -> AuthThrottle:
    t = AuthThrottle(clock, None, POLICY)
    t.shared = shared
    return t


async def test_two_nodes_reach_the_throttle_limit_together(
    redis_url: str, redis_prefix: str
) -> None:
    clock = FakeClock()
    ca, cb = counters(redis_url, redis_prefix), counters(redis_url, redis_prefix)
    a, b = throttle(clock, ca), throttle(clock, cb)
    try:
        for n in range(POLICY.max_failures):  # spread over the two nodes: 3 failures each
            node = a if n % 2 else b
            assert await node.admit(ATTACKER, Channel.XMPP)
            await node.failed(ATTACKER, Channel.XMPP)
            clock.advance(1)
        assert not await a.admit(ATTACKER, Channel.XMPP)
        assert not await b.admit(ATTACKER, Channel.API)
        assert await a.admit("198.51.100.7", Channel.XMPP)  # another address is not affected
        # The period ends one window after the first failure, on both nodes; each audits
        # (here: logs) the refusals it answered.
        clock.advance(POLICY.window.total_seconds())
        assert await a.admit(ATTACKER, Channel.XMPP) and await b.admit(ATTACKER, Channel.XMPP)
        await a.failed(ATTACKER, Channel.XMPP)  # a fresh window: one failure is not a throttle
        assert await b.admit(ATTACKER, Channel.XMPP)
    finally:
        await close(ca, cb)


async def test_without_sharing_each_node_would_allow_the_limit_again(redis_url: str) -> None:
    """The control: what the shared counters prevent (one node's memory per node)."""
    clock = FakeClock()
    a, b = throttle(clock, None), throttle(clock, None)
    for node in (a, b):
        for _ in range(POLICY.max_failures - 1):
            await node.failed(ATTACKER, Channel.XMPP)
    assert await a.admit(ATTACKER, Channel.XMPP) and await b.admit(ATTACKER, Channel.XMPP)


async def test_concurrent_failures_on_two_nodes_are_each_counted_once(
    redis_url: str, redis_prefix: str
) -> None:
    clock = FakeClock()
    ca, cb = counters(redis_url, redis_prefix), counters(redis_url, redis_prefix)
    try:
        now = clock.now()
        verdicts = await asyncio.gather(
            *(
                c.add_failure(ATTACKER, now, window=POLICY.window, max_failures=40)
                for c in (ca, cb) * 15
            )
        )
        assert sorted(v.failures for v in verdicts) == list(range(1, 31))
        assert all(v.until is None for v in verdicts)
        started = await asyncio.gather(
            *(
                c.add_failure(ATTACKER, now, window=POLICY.window, max_failures=40)
                for c in (ca, cb) * 10
            )
        )
        assert sum(v.started for v in started) == 1  # exactly one failure began the period
        assert {v.until for v in started if v.until} == {now + POLICY.window}
    finally:
        await close(ca, cb)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    await migrate.upgrade(await prefill(url))
    db = await storage.Database.open(url)
    s = storage.build_stores(db, ephemeral_keyring())
    await AccountService(s).create(AccountInput(login="nurse", password="pw"))
    yield s
    await db.close()


async def test_an_unknown_logins_lockout_is_reached_across_nodes(
    redis_url: str, redis_prefix: str, stores: Stores
) -> None:
    clock = FakeClock()
    policy = LockoutPolicy(delay_after=3, delay=timedelta(minutes=3), lock_after=4)
    ca, cb = counters(redis_url, redis_prefix), counters(redis_url, redis_prefix)
    nodes = [Authenticator(stores, clock, LoginAuditor(stores), policy) for _ in range(2)]
    nodes[0].shared, nodes[1].shared = ca, cb
    kw: dict[str, Any] = {"remote_ip": ATTACKER, "transport": "c2s", "mechanism": "PLAIN"}
    try:
        for n in range(policy.lock_after):
            await nodes[n % 2].failed("ghost", **kw)
            clock.advance(1)
        for node in nodes:  # answered as a known account with four failures would be
            assert (await node.lookup("ghost", "PLAIN"))[0] is Admission.LOCKED
        assert (await nodes[0].lookup("someone-else", "PLAIN"))[0] is Admission.ALLOW
        # A known account's failures are in the database (shared already); the addresses
        # they came from are shared so no node grants the enrolled-device exception to them.
        await nodes[0].failed("nurse", **kw)
        assert await cb.failure_sources("nurse") == {ATTACKER}
        await nodes[1].lookup("nurse", "PLAIN")
        await nodes[1].succeeded("nurse", remote_ip="10.0.0.9", transport="c2s", mechanism="PLAIN")
        assert await ca.failure_sources("nurse") == frozenset()
    finally:
        await close(ca, cb)
        for node in nodes:
            await node.auditor.close()


async def test_with_redis_down_each_node_counts_locally_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    with private_redis() as redis:
        shared = RedisCounters(client(redis.url), prefix="cw-test:", retry_after=60)
        node = throttle(clock, shared)
        try:
            await node.failed(ATTACKER, Channel.XMPP)  # counted in Redis
            redis.kill()
            with caplog.at_level(logging.WARNING, logger="carewire.cluster.counters"):
                for _ in range(POLICY.max_failures):
                    assert await node.admit("198.51.100.7", Channel.XMPP)  # nobody locked out
                    await node.failed(ATTACKER, Channel.XMPP)
            assert not await node.admit(ATTACKER, Channel.XMPP)  # the local count decides
            said = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
            assert len(said) == 1 and shared.is_down
            with pytest.raises(SharedCountersDown):  # not asked again for a while: no waiting
                await shared.throttled_until(ATTACKER, clock.now())
        finally:
            await shared._redis.aclose()
