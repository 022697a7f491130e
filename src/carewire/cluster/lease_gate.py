"""Whether this node may run a cluster-wide singleton job now: the lease, fenced by PostgreSQL.

A :class:`SingletonGate` answers :meth:`~SingletonGate.may_run` for the server's
job runner (:mod:`carewire.server_jobs`) and the rules scheduler. It says yes
only when this node holds the lease (:mod:`carewire.cluster.lease`) within
its local deadline *and* the database accepted the lease's fencing token
just now: a node whose token is older than one another leader presented is
refused, steps down, and runs nothing. The new leader presents its token as
soon as it acquires the lease, so a stale leader is refused from that moment
on, not only after the new one's first job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from carewire.cluster.lease import Lease

log = logging.getLogger(__name__)


class FenceStore(Protocol):
    """The database's fencing tokens (``storage/cluster_fence.py`` implements it)."""

    async def advance(self, name: str, token: int) -> bool:
        """Move ``name``'s token up to ``token``; False when a higher one was presented."""


class SingletonGate:
    """The predicate "may this node run singleton job X now?" of a clustered server."""

    def __init__(self, lease: Lease, fence: FenceStore) -> None:
        """Lead with ``lease``; present its token to ``fence`` before every run."""
        self.lease = lease
        self.fence = fence
        self.runs = 0  # singleton runs this node was allowed (for /metrics and tests)
        self.refusals = 0  # times the database refused this node's token
        lease.listeners.append(self._leadership_changed)

    async def may_run(self, job: str) -> bool:
        """True when this node leads and the database accepts its token (then run ``job``)."""
        if not await self.present(job):
            return False
        self.runs += 1
        log.debug("cluster: %s runs singleton job %s", self.lease.node, job)
        return True

    async def present(self, job: str = "") -> bool:
        """Present the lease's token to the database; False (stepped down) when refused."""
        token = self.lease.token
        if not self.lease.is_held() or token is None:
            return False
        if not await self.fence.advance(self.lease.name, token):
            self.refusals += 1
            log.warning(
                "cluster: fencing token %d of %s refused by the database (a newer leader ran); "
                "%s steps down%s",
                token,
                self.lease.name,
                self.lease.node,
                f" and does not run {job}" if job else "",
            )
            self.lease.step_down()
            return False
        # The database may have taken long enough for the holding to end.
        return self.lease.is_held()

    async def _leadership_changed(self, leading: bool) -> None:
        """A new leader presents its token at once: an older leader is refused from now on.

        Bounded by one renewal interval: a slow database must not hold up the renewals
        (the next singleton run presents the token anyway).
        """
        if leading:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.present(), timeout=self.lease.timing.renew_every)
