"""The job runner (server_jobs.py): ungated on one node, gated by the lease on a cluster."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.adapters.assignments import TickGate
from carewire.assembly import Options, assemble
from carewire.assembly_services import login_services
from carewire.cluster.lease import Lease, LeaseTiming
from carewire.cluster.lease_gate import SingletonGate
from carewire.config import load
from carewire.core.feature import PeriodicJob
from carewire.server_jobs import SINGLETON_JOBS, JobRunner, job_runner, share_counters
from carewire.storage import Database
from carewire.storage.cluster_fence import SqlFenceStore
from tests.cluster.lease_support import client, fence_database, until
from tests.templates import prefill

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


async def test_the_server_wiring_changes_nothing_on_one_node_and_gates_on_a_cluster(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    a = await assemble(Options(url=url))
    try:
        one = load(tmp_path, env={})
        runner = job_runner(one, a)
        _, auth = login_services(one, a)
        assert share_counters(one, runner, a, auth) is None
        assert runner.gate is None and runner.redis is None
        assert a.engine.may_schedule is None and a.assignment_ticks.check is None
        assert a.throttle.shared is None and auth.shared is None
        await runner.stop()

        clustered = load(
            tmp_path,
            env={
                "CAREWIRE_CLUSTER_REDIS_URL": redis_url,
                "CAREWIRE_CLUSTER_KEY_PREFIX": redis_prefix,
            },
        )
        runner = job_runner(clustered, a)
        _, auth = login_services(clustered, a)
        counters = share_counters(clustered, runner, a, auth)
        assert runner.gate is not None and counters is not None
        assert a.throttle.shared is counters and auth.shared is counters
        assert a.engine.may_schedule is not None and a.assignment_ticks.check is not None
        assert not await a.engine.may_schedule()  # the lease is not kept yet: not the leader
        runner.start()
        assert await until(runner.may_schedule, within=10)  # alone: it leads
        assert await runner.may_run("offline-purge") and await runner.may_run("ping-idle-sessions")
        await runner.stop()  # releases the lease and closes the client it made
        assert not runner.gate.lease.is_held()
    finally:
        await a.close()
