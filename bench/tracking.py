"""Micro-benchmark of message tracking: routing cost and the writer's commit rate.

``python -m bench.tracking [--messages N] [--pairs P]`` runs the kernel
without sockets on a fresh SQLite database (the feature test harness), routes
N chat messages between P pairs of online users, and reports

- the time the routing path spends per message (stamping, queueing),
- how fast the writer commits what was queued (MESSAGES plus one
  MESSAGE_DELIVERIES record per message, with its ``sent_at``), as messages
  per second, and how many SQL statements that took per message,
- how many RecordChanged events the commit announced, and how long the rules
  engine takes per event when no rule is defined on MESSAGES (its queue is
  drained after the commit and timed apart; then ``process`` alone is timed).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from xml.etree.ElementTree import Element

from sqlalchemy import event
from sqlalchemy.engine import Engine
from tests.features.harness import make_harness, x

from carewire.datasets.model import RecordChanged
from carewire.datasets.query import Query
from carewire.features.tracking import MessageTracker

FEATURES = ["message", "offline", "roster", "presence", "tracking"]


async def run(messages: int, pairs: int) -> dict[str, float]:
    """Route ``messages`` chat messages over ``pairs`` conversations; timings."""
    with tempfile.TemporaryDirectory() as tmp:
        h = await make_harness(Path(tmp), features=FEATURES, with_platform=True)
        try:
            tracker = h.kernel.ctx.require(MessageTracker)
            assert tracker is not None and h.platform is not None
            senders = []
            for i in range(pairs):
                sender, _ = await h.login(f"s{i}")
                await h.login(f"r{i}")
                senders.append(sender)
            await tracker.flush()
            await tracker.writer.stop()  # commit only when asked: measure routing alone
            await h.platform.engine.drain()
            events: list[RecordChanged] = []
            h.platform.datasets.subscribe(events.append)
            start = time.perf_counter()
            for n in range(messages):
                i = n % pairs
                await h.kernel.router.route_from_session(
                    senders[i],
                    _message(f"r{i}@{h.domain}", f"note {n}"),
                )
            routed = time.perf_counter() - start
            statements = _StatementCounter()
            start = time.perf_counter()
            with statements:
                await tracker.flush()
            committed = time.perf_counter() - start
            start = time.perf_counter()
            await h.platform.engine.drain()
            drained = time.perf_counter() - start
            page = await h.platform.datasets.query("MESSAGES", Query(limit=1))
            assert page.total == messages, page.total
            deliveries = await h.platform.datasets.query("MESSAGE_DELIVERIES", Query(limit=1))
            assert deliveries.total == messages, deliveries.total
            return {
                "messages": float(messages),
                "routing_us_per_message": routed / messages * 1e6,
                "commit_messages_per_s": messages / committed,
                "statements_per_message": statements.count / messages,
                "events": float(len(events)),
                "rules_drain_us_per_event": drained / max(len(events), 1) * 1e6,
                "rules_process_us_per_event": await _process_cost(h, events),
                "dropped": float(tracker.writer.dropped),
            }
        finally:
            await h.close()


class _StatementCounter:
    """Counts SQL statements sent to any database while active (executemany counts once)."""

    def __init__(self) -> None:
        self.count = 0

    def _on_execute(self, *_args: object) -> None:
        self.count += 1

    def __enter__(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._on_execute)

    def __exit__(self, *_exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._on_execute)


async def _process_cost(h: object, events: list[RecordChanged]) -> float:
    """Microseconds the rules engine's ``process`` takes per MESSAGES event (no rules)."""
    from tests.features.harness import Harness

    assert isinstance(h, Harness) and h.platform is not None
    engine = h.platform.engine
    sample = [e for e in events if e.dataset == "MESSAGES"] or events
    assert not h.platform.rules.compiled_for("MESSAGES"), "the benchmark expects no rules"
    rounds = max(1, 20_000 // max(len(sample), 1))
    start = time.perf_counter()
    for _ in range(rounds):
        for e in sample:
            await engine.process(e)
    return (time.perf_counter() - start) / (rounds * max(len(sample), 1)) * 1e6


def _message(to: str, body: str) -> Element:
    return x(f"<message to='{to}' type='chat'><body>{body}</body></message>")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(run(args.messages, args.pairs))
    for key, value in result.items():
        print(f"{key:>26}: {value:,.1f}")


if __name__ == "__main__":
    main()
