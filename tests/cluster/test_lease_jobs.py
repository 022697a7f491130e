"""The job runner (server_jobs.py): ungated on one node, gated by the lease on a cluster."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from carewire.adapters.assignments import TickGate
from carewire.cluster.lease import Lease, LeaseTiming
from carewire.cluster.lease_gate import SingletonGate
from carewire.core.feature import PeriodicJob
from carewire.server_jobs import SINGLETON_JOBS, JobRunner
from carewire.storage import Database
from carewire.storage.cluster_fence import SqlFenceStore
from tests.cluster.lease_support import client, fence_database, until

TIMING = LeaseTiming.of(5.0, 1.0)


@pytest.fixture
async def fence_db() -> AsyncIterator[Database]:
    async with fence_database() as db:
        yield db


async def test_on_one_node_every_job_runs() -> None:
    runner = JobRunner()
    assert all([await runner.may_run(name) for name in (*SINGLETON_JOBS, "audit-checkpoint")])
    assert await runner.may_schedule() and await runner.may_tick_assignments()
    await runner.stop()  # nothing to release


async def test_the_assignment_tick_asks_its_gate() -> None:
    gate = TickGate()
    assert await gate.allows()

    async def never() -> bool:
        return False

    gate.check = never
    assert not await gate.allows()


async def test_on_a_cluster_singletons_run_on_the_leader_only_and_the_rest_everywhere(
    redis_url: str, redis_prefix: str, fence_db: Database
) -> None:
    fence = SqlFenceStore(fence_db)
    runners = []
    for node in ("node-a", "node-b"):
        lease = Lease(
            client(redis_url), name="singletons", node=node, prefix=redis_prefix, timing=TIMING
        )
        runners.append(JobRunner(SingletonGate(lease, fence)))
    runs: Counter[tuple[str, str]] = Counter()

    def job(name: str, node: str) -> PeriodicJob:
        async def run() -> None:
            runs[(name, node)] += 1

        return PeriodicJob(name, 0.01, run)

    tasks = []
    try:
        for runner, node in zip(runners, ("node-a", "node-b"), strict=True):
            runner.start()
            for name in ("retention-purge", "audit-checkpoint"):
                tasks.append(asyncio.create_task(runner.run(job(name, node))))
        assert await until(
            lambda: any(runs[("retention-purge", n)] >= 3 for n in ("node-a", "node-b")), within=10
        )
        assert await until(
            lambda: all(runs[("audit-checkpoint", n)] >= 3 for n in ("node-a", "node-b")),
            within=10,
        )
        leaders = {n for n in ("node-a", "node-b") if runs[("retention-purge", n)]}
        assert len(leaders) == 1  # the per-node job ran on both, the singleton on one
        (leader,) = leaders
        gate = runners[0 if leader == "node-a" else 1].gate
        assert gate is not None and gate.runs == runs[("retention-purge", leader)]
        assert await fence.current("singletons") == gate.lease.token
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in runners:
            await runner.stop()
            assert runner.gate is not None
            await runner.gate.lease._redis.aclose()
