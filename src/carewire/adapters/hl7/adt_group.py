"""Group commit for the ADT feed: messages of several connections in one transaction.

Theory of operation: each connection still waits for the ACK of a message before
it sends the next, and an ACK still follows the commit of the transaction that
holds its message. What changes is who commits: the handlers hand simple
messages (one patient written, no merge) to one :class:`GroupWriter`; while a
transaction commits, messages from other connections queue, and the next
transaction takes every queued message (up to ``max_group``, at most one per
patient and per control id, all from one sending application) and writes them
with one statement per kind of write: the control ids, the patients' lookup,
their updates, their creations.

If a group fails (one message names an unknown bed, the data platform refuses
a write, a control id is a resend), its transaction rolls back and each of its
messages is applied alone, so each gets the answer it would have had without
grouping. Messages that write two patients (A17) or merge (A40) are always
applied alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from carewire.adapters.hl7.adt_plan import Plan
from carewire.adapters.hl7.message import MessageHeader

log = logging.getLogger(__name__)

MAX_GROUP = 200


@dataclass(slots=True)
class Pending:
    """A message waiting for its transaction.

    Attributes:
        header: Its MSH.
        plan: Its writes.
        future: Its outcome: True (applied), False (a resend), or the exception
            (:class:`~carewire.adapters.hl7.ack.Rejected`) to answer with.
    """

    header: MessageHeader
    plan: Plan
    future: asyncio.Future[bool]

    @property
    def mrn(self) -> str:
        """The one patient it writes."""
        return self.plan.patients[0].mrn

    @property
    def key(self) -> tuple[str, str, str]:
        """Sending application, facility and control id."""
        h = self.header
        return h.sending_application, h.sending_facility, h.control_id


def is_groupable(plan: Plan) -> bool:
    """Whether a plan can share a transaction: one patient written, nothing merged."""
    return len(plan.patients) == 1 and not plan.merges


ApplyGroup = Callable[[Sequence[Pending]], Awaitable[None]]
ApplyOne = Callable[[MessageHeader, Plan], Awaitable[bool]]


class GroupWriter:
    """Commits queued messages in groups; see the module docstring.

    Args:
        apply_group: Writes a group in one transaction (raises to have it split).
        apply_one: Writes one message in its own transaction (True: applied,
            False: a resend; raises Rejected).
        max_group: The most messages in one transaction.
    """

    def __init__(
        self, *, apply_group: ApplyGroup, apply_one: ApplyOne, max_group: int = MAX_GROUP
    ) -> None:
        self._apply_group = apply_group
        self._apply_one = apply_one
        self._max = max_group
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._carry: Pending | None = None
        self._current: list[Pending] = []
        self.is_running = False
        self.groups = 0
        self.splits = 0

    async def submit(self, header: MessageHeader, plan: Plan) -> bool:
        """Queue a message and wait for its transaction (see :class:`Pending`)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(header=header, plan=plan, future=future))
        return await future

    async def run(self) -> None:
        """Commit groups until cancelled (the runtime's task group owns this task)."""
        self.is_running = True
        try:
            while True:
                self._current = await self._next_group()
                await self._commit(self._current)
        finally:
            self.is_running = False
            self._fail_waiting()

    async def _next_group(self) -> list[Pending]:
        first = self._carry or await self._queue.get()
        self._carry = None
        group, mrns, keys = [first], {first.mrn}, {first.key}
        app = first.header.sending_application
        while len(group) < self._max and not self._queue.empty():
            item = self._queue.get_nowait()
            if item.mrn in mrns or item.key in keys or item.header.sending_application != app:
                self._carry = item  # the next group starts with it
                break
            group.append(item)
            mrns.add(item.mrn)
            keys.add(item.key)
        return group

    async def _commit(self, group: list[Pending]) -> None:
        live = [p for p in group if not p.future.done()]  # a handler may have gone
        if not live:
            return
        if len(live) > 1:
            try:
                await self._apply_group(live)
            except Exception as exc:  # supervisor: split the group, each message alone
                log.debug("ADT group of %d split: %s", len(live), type(exc).__name__)
                self.splits += 1
            else:
                self.groups += 1
                for p in live:
                    _settle(p, True)
                return
        for p in live:
            try:
                _settle(p, await self._apply_one(p.header, p.plan))
            except Exception as exc:  # supervisor: the handler answers from it
                _settle(p, exc)

    def _fail_waiting(self) -> None:
        waiting = [*self._current, *([self._carry] if self._carry is not None else [])]
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for p in waiting:
            if not p.future.done():
                p.future.cancel()


def _settle(pending: Pending, outcome: bool | Exception) -> None:
    """Give a waiting handler its outcome (its connection may have been closed meanwhile)."""
    if pending.future.done():
        return
    if isinstance(outcome, Exception):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)
