"""XEP-0202 Entity Time (carewire.features.time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from carewire.features.time import format_utc
from carewire.xmpp import ns
from tests.features.harness import Harness, error_condition, make_harness

TIME = f"{{{ns.TIME}}}time"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["disco", "time"])
    yield harness
    await harness.close()


async def test_server_time_from_the_clock(h: Harness) -> None:
    h.clock.advance(3661.5)
    reply = await h.ask(
        "alice", f"<iq type='get' id='t1' to='{h.domain}'><time xmlns='{ns.TIME}'/></iq>"
    )
    assert reply.get("type") == "result"
    assert reply.get("from") == h.domain
    el = reply.find(TIME)
    assert el is not None
    assert el.findtext(f"{{{ns.TIME}}}tzo") == "+00:00"
    assert el.findtext(f"{{{ns.TIME}}}utc") == "2026-01-01T01:01:01.500Z"


async def test_time_is_advertised(h: Harness) -> None:
    assert ns.TIME in h.kernel.disco.server_features


async def test_time_is_answered_only_for_the_server(h: Harness) -> None:
    reply = await h.ask("alice", f"<iq type='get' id='t2'><time xmlns='{ns.TIME}'/></iq>")
    assert error_condition(reply) == "service-unavailable"


def test_format_utc() -> None:
    assert format_utc(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)) == "2026-03-04T05:06:07Z"
    plus_two = timezone(timedelta(hours=2))
    assert format_utc(datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=plus_two)) == (
        "2026-03-04T03:06:07.123Z"
    )
