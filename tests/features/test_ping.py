"""XEP-0199 XMPP Ping (carewire.features.ping): pongs and idle-connection detection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.feature import FeatureConfig, PeriodicJob
from carewire.core.sessions import Session
from carewire.features import ping
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness

INTERVAL = 300.0


async def harness(tmp_path: Path, *, timeout: float = 60.0) -> Harness:
    config = FeatureConfig(ping_interval=INTERVAL, ping_timeout=timeout)
    return await make_harness(tmp_path, features=["disco", "ping"], config=config)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness_ = await harness(tmp_path)
    yield harness_
    await harness_.close()


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Harness]:
    """Pings time out after 50 ms."""
    harness_ = await harness(tmp_path, timeout=0.05)
    yield harness_
    await harness_.close()


def job(h: Harness) -> PeriodicJob:
    (found,) = [j for j in h.kernel.ctx.jobs if j.name == "ping-idle-sessions"]
    return found


async def run_job(h: Harness) -> None:
    await job(h).run()


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def pings_in(sink: RecordingSink) -> list[Element]:
    return [
        e
        for e in sink.sent
        if e.tag == f"{{{ns.CLIENT}}}iq" and e.find(f"{{{ns.PING}}}ping") is not None
    ]


# -- client pings ---------------------------------------------------------------


@pytest.mark.parametrize("to", ["example.test", "alice@example.test", None])
async def test_server_answers_pings(h: Harness, to: str | None) -> None:
    session, sink = await h.bind("alice")
    to_attr = f" to='{to}'" if to else ""
    await h.send(session, f"<iq type='get' id='p1'{to_attr}><ping xmlns='{ns.PING}'/></iq>")
    (reply,) = sink.take()
    assert reply.get("type") == "result"
    assert reply.get("id") == "p1"
    assert reply.get("to") == str(session.jid)
    assert len(reply) == 0


async def test_ping_to_another_account_is_not_answered_for_it(h: Harness) -> None:
    await h.account("bob")
    session, sink = await h.bind("alice")
    await h.send(
        session, f"<iq type='get' id='p2' to='bob@{h.domain}'><ping xmlns='{ns.PING}'/></iq>"
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"


async def test_ping_is_advertised(h: Harness) -> None:
    assert ns.PING in h.kernel.disco.server_features


# -- idle-connection detection ----------------------------------------------------


def test_job_interval(h: Harness) -> None:
    assert job(h).interval == 30.0  # min(300, 60) / 2


async def test_bound_sessions_start_active(h: Harness) -> None:
    session, _sink = await h.bind("alice")
    assert session.data[ping.LAST_ACTIVE] == h.clock.monotonic()


async def test_active_sessions_are_not_pinged(h: Harness) -> None:
    _session, sink = await h.bind("alice")
    h.clock.advance(INTERVAL - 1)
    await job(h).run()
    assert sink.take() == []


async def test_session_without_activity_stamp_counts_as_just_active(h: Harness) -> None:
    sink = RecordingSink()
    session = Session(jid=JID.parse(f"alice@{h.domain}/raw"), sink=sink)
    h.kernel.sessions.add(session)  # bound without the session/bound hook
    await job(h).run()
    assert sink.sent == []
    assert session.data[ping.LAST_ACTIVE] == h.clock.monotonic()


async def test_answered_ping_keeps_the_session(h: Harness) -> None:
    session, sink = await h.bind("alice")
    h.clock.advance(INTERVAL)
    run = asyncio.create_task(run_job(h))
    await until(lambda: bool(pings_in(sink)))
    (iq,) = sink.take()
    assert iq.get("type") == "get"
    assert iq.get("from") == h.domain
    assert iq.get("to") == str(session.jid)
    await h.send(session, f"<iq type='result' id='{iq.get('id')}' to='{h.domain}'/>")
    await asyncio.wait_for(run, 1)
    assert sink.closed is None
    assert ping.PENDING not in session.data
    assert session.data[ping.LAST_ACTIVE] == h.clock.monotonic()
    # Freshly active: the next run leaves it alone.
    await job(h).run()
    assert sink.take() == []


async def test_error_reply_counts_as_alive(h: Harness) -> None:
    session, sink = await h.bind("alice")
    h.clock.advance(INTERVAL)
    run = asyncio.create_task(run_job(h))
    await until(lambda: bool(pings_in(sink)))
    (iq,) = sink.take()
    await h.send(
        session,
        f"<iq type='error' id='{iq.get('id')}' to='{h.domain}'><error type='cancel'>"
        f"<service-unavailable xmlns='{ns.STANZAS_ERR}'/></error></iq>",
    )
    await asyncio.wait_for(run, 1)
    assert sink.closed is None


async def test_unanswered_ping_closes_the_session(quick: Harness) -> None:
    _session, sink = await quick.bind("alice")
    quick.clock.advance(INTERVAL)
    await asyncio.wait_for(job(quick).run(), 2)
    assert len(pings_in(sink)) == 1
    assert sink.closed == (StreamCondition.CONNECTION_TIMEOUT, "no ping reply")


async def test_sessions_are_pinged_concurrently(h: Harness) -> None:
    idle = [await h.bind("alice", f"r{i}") for i in range(5)]
    h.clock.advance(INTERVAL)
    _fresh, fresh_sink = await h.bind("carol")
    run = asyncio.create_task(run_job(h))
    # Every idle session has its ping outstanding at the same time.
    await until(lambda: all(pings_in(sink) for _s, sink in idle))
    assert not run.done()
    assert fresh_sink.sent == []
    for session, sink in idle:
        (iq,) = sink.take()
        await h.send(session, f"<iq type='result' id='{iq.get('id')}' to='{h.domain}'/>")
    await asyncio.wait_for(run, 1)
    assert all(sink.closed is None for _s, sink in idle)


async def test_unanswered_pings_close_every_idle_session(quick: Harness) -> None:
    idle = [await quick.bind("alice", f"r{i}") for i in range(3)]
    quick.clock.advance(INTERVAL)
    _fresh, fresh_sink = await quick.bind("carol")
    await asyncio.wait_for(job(quick).run(), 2)
    for _session, sink in idle:
        assert sink.closed == (StreamCondition.CONNECTION_TIMEOUT, "no ping reply")
    assert fresh_sink.closed is None


async def test_at_most_one_ping_in_flight_per_session(h: Harness) -> None:
    session, sink = await h.bind("alice")
    h.clock.advance(INTERVAL)
    first = asyncio.create_task(run_job(h))
    await until(lambda: bool(pings_in(sink)))
    h.clock.advance(INTERVAL)
    await job(h).run()  # the first ping is still unanswered: no second one
    (iq,) = sink.take()
    await h.send(session, f"<iq type='result' id='{iq.get('id')}'/>")
    await asyncio.wait_for(first, 1)
    assert sink.closed is None


async def test_closing_the_session_abandons_its_ping(h: Harness) -> None:
    session, sink = await h.bind("alice")
    h.clock.advance(INTERVAL)
    run = asyncio.create_task(run_job(h))
    await until(lambda: bool(pings_in(sink)))
    await h.unbind(session)
    await asyncio.wait_for(run, 1)
    assert sink.closed is None
    assert ping.PENDING not in session.data
