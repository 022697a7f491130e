"""Everything a node writes to Redis, in order: one queue, one task, a pipeline per burst.

Registry writes, events and stanzas for other nodes all leave through the
:class:`Outbox`, so what one node sends reaches Redis in the order it was
sent: a session's registration before the stanzas it sends, and the stanzas
of one sender to one recipient in order. A burst goes as one pipeline (one
round trip). When Redis refuses a burst, the stanzas in it are handed back to
the node (``on_failed``), which answers their senders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from redis.asyncio import Redis

from carewire.cluster.redis import REDIS_ERRORS

#: Commands waiting for the publisher; past this, stanzas are refused.
MAX_OUTBOX = 10_000
#: Commands sent in one pipeline.
BATCH = 256


@dataclass(frozen=True, slots=True)
class Op:
    """One Redis command, and the stanza to answer with an error if it cannot be sent."""

    command: str  # publish, hset, hdel
    args: tuple[str, ...]
    stanza: Element | None = None


class Outbox:
    """The node's ordered queue of Redis commands (drained by :meth:`run`)."""

    def __init__(
        self, redis: Redis, *, on_failed: Callable[[BaseException, list[Element]], None]
    ) -> None:
        self.redis = redis
        self._on_failed = on_failed
        self._queue: asyncio.Queue[Op] = asyncio.Queue(MAX_OUTBOX)

    def put(self, op: Op) -> bool:
        """Queue ``op``; False when the queue is full (the caller answers its stanza)."""
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            return False
        return True

    def publish(self, channel: str, message: str, stanza: Element | None = None) -> bool:
        """Queue a PUBLISH."""
        return self.put(Op("publish", (channel, message), stanza))

    async def run(self) -> None:
        """Send what is queued, in order, for ever."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for op in batch:
                        if op.command == "publish":
                            pipe.publish(op.args[0], op.args[1])
                        elif op.command == "hset":
                            pipe.hset(op.args[0], op.args[1], op.args[2])
                        else:
                            pipe.hdel(op.args[0], op.args[1])
                    await pipe.execute()
            except REDIS_ERRORS as exc:
                self._on_failed(exc, [op.stanza for op in batch if op.stanza is not None])
