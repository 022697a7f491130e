"""The server's periodic jobs on a cluster: which run on one node only; the shared counters.

Single node (``[cluster] redis_url`` empty): every job runs here, as always;
no Redis, no fencing writes. Clustered: the jobs in :data:`SINGLETON_JOBS`
(and the rules scheduler's deferred firings) run only on the node holding
the ``singletons`` lease, each run fenced by PostgreSQL
(:mod:`carewire.cluster.lease_gate`); every other job stays per node,
because it works on this node's sessions, memory or files (see
docs/cluster-singletons.md for the list and why). :func:`share_counters`
moves the authentication throttle and the login's in-memory lockout counters
to Redis (:mod:`carewire.cluster.counters`) on a cluster.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from carewire.assembly import Assembly
from carewire.cluster.counters import RedisCounters
from carewire.cluster.lease import Lease, LeaseTiming
from carewire.cluster.lease_gate import SingletonGate
from carewire.config import Config
from carewire.config_cluster import is_clustered, node_name
from carewire.core.auth import Authenticator
from carewire.core.feature import PeriodicJob
from carewire.storage.cluster_fence import SqlFenceStore

log = logging.getLogger(__name__)

#: The lease (and fence) name of the cluster-wide singletons: one leader runs them all.
SINGLETONS = "singletons"

#: Jobs that act on shared state: one node of the cluster runs them.
SINGLETON_JOBS = frozenset(
    {
        "retention-purge",  # the nightly purge per organisation (server.py)
        "offline-purge",  # expired offline messages (features/offline.py)
        "conversation-expiry",  # tracked conversations past their ttl (features/tracking/)
        "upload-sweep",  # expired uploads, files and rows (features/upload.py)
        "ldap-sync",  # scheduled directory sync per organisation (identity/ldap)
        "ldap-status",  # the integrations' reachability, written to the database
    }
)


class JobRunner:
    """Runs periodic jobs; asks the gate (when clustered) before each singleton run."""

    def __init__(
        self,
        gate: SingletonGate | None = None,
        *,
        redis: Redis | None = None,
        owned: Redis | None = None,
    ) -> None:
        """Without a gate (one node) every job runs on this node; ``owned`` is closed at stop."""
        self.gate = gate
        self.redis = redis  # the cluster's Redis client (None on one node)
        self._owned = owned
        self._lease_task: asyncio.Task[None] | None = None

    async def may_run(self, name: str) -> bool:
        """Whether this node runs job ``name`` now."""
        if self.gate is None or name not in SINGLETON_JOBS:
            return True
        return await self.gate.may_run(name)

    async def may_schedule(self) -> bool:
        """Whether this node runs the rules scheduler's deferred firings now."""
        return self.gate is None or await self.gate.may_run("rules-scheduler")

    async def may_tick_assignments(self) -> bool:
        """Whether this node runs the assignment manager's minute tick now."""
        return self.gate is None or await self.gate.may_run("assignment-tick")

    async def run(self, job: PeriodicJob) -> None:
        """Every ``job.interval`` seconds, run ``job`` if this node may, until cancelled."""
        while True:
            await asyncio.sleep(job.interval)
            try:
                if await self.may_run(job.name):
                    await job.run()
            except Exception:  # supervisor: a failing job runs again next time
                log.exception("periodic job %s failed", job.name)

    def start(self) -> None:
        """Start keeping the lease (nothing when not clustered)."""
        if self.gate is not None:
            self._lease_task = asyncio.create_task(self.gate.lease.keep(), name="cluster-lease")

    async def stop(self) -> None:
        """Release the lease (another node takes over at once) and close the Redis client."""
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            self._lease_task = None
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = None


def job_runner(cfg: Config, assembly: Assembly, redis: Redis | None = None) -> JobRunner:
    """The runner for ``cfg``: ungated on one node; on a cluster, gated by the lease.

    ``redis`` is the cluster's client when one exists; otherwise one is made from
    ``cluster.redis_url`` (and closed by :meth:`JobRunner.stop`).
    """
    c = cfg.cluster
    if not is_clustered(c):
        return JobRunner()
    owned = None
    if redis is None:
        redis = owned = Redis.from_url(
            c.redis_url, socket_timeout=c.node_timeout_seconds, socket_connect_timeout=1.0
        )
    lease = Lease(
        redis,
        name=SINGLETONS,
        node=node_name(c),
        prefix=c.key_prefix,
        timing=LeaseTiming.of(c.node_timeout_seconds, c.heartbeat_seconds),
    )
    gate = SingletonGate(lease, SqlFenceStore(assembly.db))
    runner = JobRunner(gate, redis=redis, owned=owned)
    assembly.engine.may_schedule = runner.may_schedule
    assembly.assignment_ticks.check = runner.may_tick_assignments
    return runner


def share_counters(
    cfg: Config, runner: JobRunner, assembly: Assembly, auth: Authenticator
) -> RedisCounters | None:
    """On a cluster, count throttling and login lockouts in Redis (None on one node)."""
    if runner.redis is None:
        return None
    counters = RedisCounters(
        runner.redis,
        prefix=cfg.cluster.key_prefix,
        timeout=min(0.5, cfg.cluster.heartbeat_seconds),
    )
    assembly.throttle.shared = counters
    auth.shared = counters
    return counters
