"""``carewire adapter show`` beside a running server: its adapters' health and counters."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


async def test_the_running_servers_adapters_are_shown_with_their_counters(
    server: RunningServer,
) -> None:
    path = server.data_dir / "run" / "adapters.json"
    assert path.exists()  # written before the server says it is serving (run/ports.json)
    for _ in range(60):  # the runtime's counters appear once its task runs (rewritten each 5 s)
        manager = json.loads(path.read_text())["adapters"]["Assignment Manager"]
        if manager["counters"]:
            break
        await asyncio.sleep(0.25)
    assert manager["state"] == "running" and manager["counters"]["queue_depth"] == 10_000
    r = server.cli("adapter", "show", "Assignment Manager")
    assert r.returncode == 0, r.stderr
    assert "Assignment Manager: AssignmentManager, enabled True" in r.stdout
    assert "updates_per_minute" in r.stdout and "4000" in r.stdout
    assert "health (as of " in r.stdout and "running queue 0/10000 (66/s)" in r.stdout
    assert "queue_depth" in r.stdout and "10000" in r.stdout
    r = server.cli("adapter", "show", "No such adapter")
    assert r.returncode == 2 and "no adapter is named 'No such adapter'" in r.stderr
