"""Interruption control across restarts, mass alerts, and the administrators' desk.

On the demo hospital: nurse.adams and nurse.baker are on shift, dr.chen is not.
A restart is played by forgetting the coverage's memory and loading it again
from the database, as the server does at start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.adapters.xmpp.gateway import AlertRequest, AlertSent, ChatGateway
from carewire.assembly import Assembly
from carewire.core.events import AlertResponded
from carewire.demo_data import load_demo_data
from carewire.features.coverage import Coverage, CoverageDesk
from carewire.features.coverage import stanzas as cs
from carewire.features.coverage.model import HoldReason
from carewire.security.audit import Channel
from carewire.xmpp import alert as al
from tests.features.harness import Harness, make_harness

NURSE, BACKUP, DOC = "nurse.adams", "nurse.baker", "dr.chen"
BODY = "{jabber:client}body"
ALERT = f"{{{al.NS}}}alert"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    assert harness.platform is not None
    await load_demo_data(harness.platform)
    yield harness
    await harness.close()


def _platform(h: Harness) -> Assembly:
    assert h.platform is not None
    return h.platform


def _coverage(h: Harness) -> Coverage:
    found = h.kernel.ctx.find(Coverage)
    assert found is not None
    return found


async def _restart(h: Harness) -> Coverage:
    coverage = _coverage(h)
    coverage.busy.clear()
    coverage.held.clear()
    await coverage.load()
    return coverage


async def _alert(h: Harness, to: tuple[str, ...], priority: str, **more: object) -> AlertSent:
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None
    delivery = await _platform(h).datasets.create(
        "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
    )
    request = AlertRequest(
        recipients=tuple(f"{u}@{h.domain}" for u in to),
        source="NURSE_CALLS/1",
        delivery_id=delivery.id,
        subject="Call",
        message="Bed 4",
        ttl=10,
        priority=priority,
        accept=True,
    )
    sent = await gateway.send_alert(replace(request, **more))  # type: ignore[arg-type]
    await h.kernel.ctx.durability.flush()
    return sent


async def test_a_timed_dnd_survives_a_restart_and_resume_forgets_it(h: Harness) -> None:
    backup, _ = await h.login(BACKUP)
    until = h.clock.now().replace(microsecond=0) + timedelta(minutes=30)
    await h.send(
        backup,
        f"<iq type='set' id='d1'><dnd xmlns='{cs.NS}' until='{cs.format_time(until)}' "
        "reason='procedure'/></iq>",
    )
    coverage = await _restart(h)
    assert coverage.reason_of(BACKUP) is HoldReason.DND
    status = await _platform(h).coverage.status(BACKUP)
    assert (status.reason, status.until, status.note) == ("dnd", until, "procedure")
    await h.send(backup, f"<iq type='set' id='r1'><resume xmlns='{cs.NS}'/></iq>")
    coverage = await _restart(h)
    assert coverage.reason_of(BACKUP) is None


async def test_an_unanswered_urgent_alert_survives_a_restart_until_accepted(h: Harness) -> None:
    await h.login(BACKUP)
    sent = await _alert(h, (BACKUP,), "Urgent")
    coverage = await _restart(h)
    assert coverage.reason_of(BACKUP) is HoldReason.URGENT_ALERT
    # What the alerting feature announces once an Accept is recorded.
    await coverage.on_responded(
        AlertResponded(alert_id=sent.alert_id, login=NURSE, action="accept")
    )
    assert coverage.reason_of(BACKUP) is None
    assert await h.kernel.stores.busy.of(BACKUP) == []


async def test_an_expired_alert_is_forgotten_at_start(h: Harness) -> None:
    await h.login(BACKUP)
    await _alert(h, (BACKUP,), "Critical")
    h.clock.advance(11 * 60)
    coverage = await _restart(h)
    assert coverage.reason_of(BACKUP) is None
    assert await h.kernel.stores.busy.all() == []


async def test_a_mass_alert_reroutes_but_keeps_nobody_busy(h: Harness) -> None:
    _, backup_sink = await h.login(BACKUP)
    await h.account(NURSE)
    sent = await _alert(
        h,
        (NURSE,),
        "Urgent",
        is_mass=True,
        accept=False,
        ttl=600,
        coverage="Reroute",
        covering=(f"{BACKUP}@{h.domain}",),
    )
    assert sent.notified == (f"{BACKUP}@{h.domain}",)
    assert sent.rerouted_from == (f"{NURSE}@{h.domain}",)
    [alert] = [m.find(ALERT) for m in backup_sink.take() if m.find(ALERT) is not None]
    assert alert is not None and alert.get("mass") == "true"
    # A mass alert offers no response: it would hold their traffic for ten hours.
    assert _coverage(h).reason_of(BACKUP) is None


async def test_the_desk_lists_held_messages_without_bodies_and_releases_them(
    h: Harness,
) -> None:
    backup, backup_sink = await h.login(BACKUP)
    nurse, _ = await h.login(NURSE)
    await h.send(backup, "<presence><show>dnd</show></presence>")
    for i in range(2):
        await h.send(
            nurse,
            f"<message type='chat' id='m{i}' to='{BACKUP}@{h.domain}'>"
            f"<body>PHI {i}</body></message>",
        )
    desk = _platform(h).coverage
    status = await desk.status(BACKUP)
    assert status.is_live and status.reason == "dnd" and status.until is None
    assert [(m.sender, m.reason) for m in status.held] == [(f"{NURSE}@{h.domain}", "dnd")] * 2
    assert "PHI" not in repr(status)
    backup_sink.take()
    done = await desk.release(BACKUP, actor="api:ops", channel=Channel.API)
    assert (done.delivered, done.is_waiting) == (2, False)
    assert [m.findtext(BODY) for m in backup_sink.take()] == ["PHI 0", "PHI 1"]
    assert (await desk.status(BACKUP)).held == ()
    entries, _ = await _platform(h).audit.store.entries(action="coverage.release")
    assert [(e.event.actor, e.event.target) for e in entries] == [("api:ops", BACKUP)]


async def test_a_release_asked_in_another_process_is_honoured_at_the_next_tick(
    h: Harness,
) -> None:
    _, backup_sink = await h.login(BACKUP)
    nurse, _ = await h.login(NURSE)
    until = h.clock.now() + timedelta(hours=1)
    await _coverage(h).set_dnd(BACKUP, until)
    await h.send(
        nurse, f"<message type='chat' id='m1' to='{BACKUP}@{h.domain}'><body>x</body></message>"
    )
    p = _platform(h)
    cli_desk = CoverageDesk(h.kernel.stores, h.clock, p.audit)  # not attached: the CLI
    status = await cli_desk.status(BACKUP)
    assert (status.is_live, status.reason, status.until, len(status.held)) == (
        False,
        "dnd",
        until,
        1,
    )
    done = await cli_desk.release(BACKUP, actor="cli:ops", channel=Channel.CLI)
    assert done.is_requested
    backup_sink.take()
    await _coverage(h).tick()
    assert [m.findtext(BODY) for m in backup_sink.take()] == ["x"]
    assert _coverage(h).reason_of(BACKUP) is HoldReason.DND  # still in Do Not Disturb


async def test_a_release_with_no_client_online_waits_for_the_next_connection(
    h: Harness,
) -> None:
    nurse, _ = await h.login(NURSE)
    await h.account(BACKUP)
    await _coverage(h).set_dnd(BACKUP, h.clock.now() + timedelta(hours=1))
    await h.send(
        nurse, f"<message type='chat' id='m1' to='{BACKUP}@{h.domain}'><body>y</body></message>"
    )
    done = await _platform(h).coverage.release(BACKUP, actor="api:ops", channel=Channel.API)
    assert done.is_waiting
    _, backup_sink = await h.login(BACKUP)
    assert (
        "y" in [m.findtext(BODY) for m in backup_sink.sent]
        or await h.kernel.stores.held.fetch(BACKUP) == []
    )


async def test_the_desk_refuses_unknown_users(h: Harness) -> None:
    with pytest.raises(Exception, match="no user"):
        await _platform(h).coverage.status("nobody")
