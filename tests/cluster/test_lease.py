"""The singleton lease (cluster/lease.py) and its fencing (cluster/lease_gate.py).

Real Redis (the shared test server, or a private one the test kills) and real
PostgreSQL for the fence. Leases here last two seconds: a takeover after a
"crash" happens within them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from carewire.cluster.lease import Lease, LeaseTiming
from carewire.cluster.lease_gate import SingletonGate
from carewire.errors import ConfigError
from carewire.storage import Database
from carewire.storage.cluster_fence import SqlFenceStore
from tests.cluster.lease_support import client, fence_database, private_redis, until

TIMING = LeaseTiming.of(2.0, 0.5)


def lease(url: str, prefix: str, node: str, **kw: object) -> Lease:
    return Lease(client(url), name="singletons", node=node, prefix=prefix, timing=TIMING, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def fence_db() -> AsyncIterator[Database]:
    async with fence_database() as db:
        yield db


async def close(*leases: Lease) -> None:
    for one in leases:
        await one._redis.aclose()


def test_a_lease_that_cannot_be_renewed_in_time_is_refused() -> None:
    with pytest.raises(ConfigError, match="heartbeat_seconds"):
        LeaseTiming.of(1.0, 0.9)
    assert LeaseTiming.of(5.0, 1.0).margin == pytest.approx(1.0)


async def test_of_two_contenders_exactly_one_leads(redis_url: str, redis_prefix: str) -> None:
    a, b = lease(redis_url, redis_prefix, "node-a"), lease(redis_url, redis_prefix, "node-b")
    try:
        first = await asyncio.gather(a.step(), b.step())  # both try at the same moment
        assert sorted(first) == [False, True]
        leader = a if a.is_held() else b
        second = await asyncio.gather(a.step(), b.step())  # the leader renews, the other waits
        assert second == first and leader.is_held()
        assert await a.holder() == f"{leader.node}/{leader.token}"
    finally:
        await close(a, b)


async def test_a_killed_leader_is_replaced_within_the_ttl_with_a_larger_token(
    redis_url: str, redis_prefix: str
) -> None:
    a, b = lease(redis_url, redis_prefix, "node-a"), lease(redis_url, redis_prefix, "node-b")
    try:
        assert await a.step() and not await b.step()
        first = a.token
        assert first is not None
        # node-a "dies": it neither renews nor releases. node-b keeps trying.
        killed = time.monotonic()
        assert await until(b.step, within=TIMING.ttl + 2)
        assert b.token is not None and b.token > first
        assert time.monotonic() - killed >= TIMING.ttl - TIMING.margin  # not before it expired
        assert not await a.renew() and not a.is_held()  # it wakes up: the lease is not its own
    finally:
        await close(a, b)


async def test_a_stale_leaders_fenced_run_is_refused_by_postgresql(
    redis_url: str, redis_prefix: str, fence_db: Database
) -> None:
    frozen = [0.0]  # node-a's clock stands still: it believes it holds the lease for ever
    a = lease(redis_url, redis_prefix, "node-a", monotonic=lambda: frozen[0])
    b = lease(redis_url, redis_prefix, "node-b")
    fence = SqlFenceStore(fence_db)
    gate_a, gate_b = SingletonGate(a, fence), SingletonGate(b, fence)
    try:
        assert await a.step()
        assert await gate_a.may_run("retention-purge")
        assert await fence.current("singletons") == a.token
        assert await until(b.step, within=TIMING.ttl + 2)  # node-a's lease expired in Redis
        assert await gate_b.may_run("retention-purge")
        assert a.is_held()  # the stale leader still believes it leads …
        assert not await gate_a.may_run("retention-purge")  # … the database says no
        assert not a.is_held() and gate_a.refusals == 1  # and it stepped down
        assert await fence.current("singletons") == b.token
        assert await gate_b.may_run("offline-purge")  # the new leader goes on
    finally:
        await close(a, b)


async def test_a_new_leader_presents_its_token_at_once(
    redis_url: str, redis_prefix: str, fence_db: Database
) -> None:
    a = lease(redis_url, redis_prefix, "node-a")
    fence = SqlFenceStore(fence_db)
    SingletonGate(a, fence)
    try:
        assert await a.step()
        assert await fence.current("singletons") == a.token
    finally:
        await close(a)


async def test_the_fence_refuses_an_older_token_and_accepts_equal_and_newer(
    fence_db: Database,
) -> None:
    fence = SqlFenceStore(fence_db)
    assert await fence.current("x") is None
    assert await fence.advance("x", 5)
    assert await fence.advance("x", 5)
    assert not await fence.advance("x", 4)
    assert await fence.advance("x", 9) and await fence.current("x") == 9
    assert await fence.advance("y", 1)  # groups are independent
    results = await asyncio.gather(*(fence.advance("z", n) for n in (3, 7, 5)))
    assert results.count(True) >= 2 and await fence.current("z") == 7


async def test_a_clean_release_hands_over_at_once(redis_url: str, redis_prefix: str) -> None:
    a, b = lease(redis_url, redis_prefix, "node-a"), lease(redis_url, redis_prefix, "node-b")
    try:
        assert await a.step() and not await b.try_acquire()
        first = a.token
        await a.release()
        assert not a.is_held()
        assert await b.try_acquire()  # no waiting for the ttl
        assert b.token is not None and first is not None and b.token > first
        await a.release()  # releasing what it no longer holds touches nothing
        assert await b.holder() == f"node-b/{b.token}"
    finally:
        await close(a, b)


async def test_keep_renews_and_releases_when_cancelled(redis_url: str, redis_prefix: str) -> None:
    a, b = lease(redis_url, redis_prefix, "node-a"), lease(redis_url, redis_prefix, "node-b")
    changes: list[bool] = []
    a.listeners.append(changes.append)
    task = asyncio.create_task(a.keep())
    try:
        assert await until(a.is_held, within=2)
        await asyncio.sleep(TIMING.ttl * 1.2)  # longer than the ttl: only renewals keep it
        assert a.is_held() and not await b.try_acquire()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await b.try_acquire()
    assert changes == [True, False]  # told once each way
    await close(a, b)


async def test_with_redis_down_the_leader_steps_down_before_its_lease_expires(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="carewire.cluster.lease")
    with private_redis() as redis:
        a = lease(redis.url, "cw-test:", "node-a")
        b = lease(redis.url, "cw-test:", "node-b")
        try:
            assert await a.step()
            renewed = time.monotonic()
            assert await a.renew()  # Redis saw this after `renewed`: its key outlives renewed+ttl
            redis.kill()
            leaders: set[str] = set()
            while time.monotonic() < renewed + TIMING.ttl:
                for one in (a, b):
                    if await one.step():
                        leaders.add(one.node)
                await asyncio.sleep(0.02)
            # The earliest moment Redis could have let the key expire: nobody acts any more.
            assert not a.is_held() and not b.is_held()
            assert leaders <= {"node-a"}  # node-a led only while its holding was sure
            said = [r.getMessage() for r in caplog.records]
            assert sum("Redis does not answer" in m for m in said) == 2  # once per node
            assert sum("node-a no longer leads" in m for m in said) == 1
        finally:
            await close(a, b)
