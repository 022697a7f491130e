"""Micro-benchmark of message tracking: routing cost and the writer's commit rate.

``python -m bench.tracking [--messages N] [--pairs P]`` runs the kernel
without sockets on a fresh SQLite database (the feature test harness), routes
N chat messages between P pairs of online users, and reports

- the time the routing path spends per message (stamping, queueing), and
- how fast the writer commits what was queued (MESSAGES plus one
  MESSAGE_DELIVERIES record per message), as messages per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from xml.etree.ElementTree import Element

from tests.features.harness import make_harness, x

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
            start = time.perf_counter()
            for n in range(messages):
                i = n % pairs
                await h.kernel.router.route_from_session(
                    senders[i],
                    _message(f"r{i}@{h.domain}", f"note {n}"),
                )
            routed = time.perf_counter() - start
            start = time.perf_counter()
            await tracker.flush()
            committed = time.perf_counter() - start
            page = await h.platform.datasets.query("MESSAGES", Query(limit=1))
            assert page.total == messages, page.total
            return {
                "messages": float(messages),
                "routing_us_per_message": routed / messages * 1e6,
                "commit_messages_per_s": messages / committed,
                "dropped": float(tracker.writer.dropped),
            }
        finally:
            await h.close()


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
