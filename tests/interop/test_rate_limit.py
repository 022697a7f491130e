"""A client sending faster than its read rate is slowed down, not cut off; others are unaffected."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.interop.helpers import own_server, raw_login
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

RATE = 40_000  # bytes per second
BURST = 20_000


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "CAREWIRE_XMPP_MAX_READ_RATE": str(RATE),
        "CAREWIRE_XMPP_MAX_READ_BURST": str(BURST),
        "CAREWIRE_XMPP_MAX_STANZA_BYTES": str(BURST),
    }
    with own_server(tmp_path_factory, "rate", env, accounts=4) as server:
        yield server


async def test_flood_is_throttled_but_processed(slow_server: RunningServer) -> None:
    flooder = await raw_login(slow_server)
    other = await raw_login(slow_server)
    try:
        body = "x" * 1000
        stanza = (
            f"<message to='{flooder.jid}-nowhere' type='headline'><body>{body}</body></message>"
        )
        flood = stanza * 140  # ~150 KB: far past the burst
        started = time.monotonic()
        await flooder.send(flood.encode())
        # Meanwhile another session is served at once.
        quick = time.monotonic()
        await other.ping()
        assert time.monotonic() - quick < 1.0
        # The flooder's own ping queues behind its flood, which drains at the rate.
        await flooder.ping()
        elapsed = time.monotonic() - started
        minimum = (len(flood) - BURST) / RATE
        assert elapsed >= minimum * 0.8, f"not throttled: {elapsed:.2f}s < {minimum:.2f}s"
        assert elapsed < minimum + 10, "throttled far more than the rate implies"
    finally:
        await flooder.aclose()
        await other.aclose()
