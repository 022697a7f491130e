"""Coverage and interruption control through the kernel (features/coverage/), on the demo hospital.

nurse.adams and nurse.baker hold active assignments (on shift); dr.chen holds none (off shift).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.adapters.xmpp.gateway import AlertRequest, AlertSent, ChatGateway
from carewire.assembly import Assembly
from carewire.core.sessions import Session
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.demo_data import BACKUP_AFTER, bed_of, load_demo_data
from carewire.features.coverage import Coverage
from carewire.features.coverage import stanzas as cs
from carewire.features.tracking.stanzas import add_expiry_hint
from carewire.xmpp import alert as al
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness

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


def _notices(sink: RecordingSink) -> list[Element]:
    return [n for m in sink.take() for n in m.findall(cs.NOTICE)]


def _bodies(sink: RecordingSink) -> list[str]:
    return [m.findtext(BODY) or "" for m in sink.take() if m.find(BODY) is not None]


async def _chat(h: Harness, session: Session, to: str, text: str, msg_id: str = "m1") -> None:
    await h.send(
        session,
        f"<message type='chat' id='{msg_id}' to='{to}@{h.domain}'><body>{text}</body></message>",
    )


async def _deliveries(h: Harness) -> list[dict[str, object]]:
    await h.kernel.ctx.durability.flush()
    page = await _platform(h).datasets.query("MESSAGE_DELIVERIES", Query(limit=1000))
    return [dict(r.values) for r in page.records]


async def _dnd(h: Harness, session: Session, until: str) -> Element:
    sink = session.sink
    assert isinstance(sink, RecordingSink)
    await h.send(session, f"<iq type='set' id='d1'><dnd xmlns='{cs.NS}' until='{until}'/></iq>")
    return next(m for m in sink.take() if m.get("id") == "d1")


async def test_a_message_to_an_off_shift_offline_user_is_stored_and_the_sender_told(
    h: Harness,
) -> None:
    await h.account(DOC)
    nurse, nurse_sink = await h.login(NURSE)
    await _chat(h, nurse, DOC, "Rounds at 9?")
    [notice] = _notices(nurse_sink)
    assert notice.attrib == {
        "jid": f"{DOC}@{h.domain}",
        "state": "stored",
        "reason": "off-shift-offline",
        "id": "m1",
    }
    _, doc_sink = await h.login(DOC)  # nothing lost: offline storage hands it over
    assert "Rounds at 9?" in _bodies(doc_sink) or await h.kernel.stores.offline.count(DOC) == 0


async def test_an_on_shift_offline_user_gets_no_notice(h: Harness) -> None:
    await h.account(BACKUP)
    nurse, nurse_sink = await h.login(NURSE)
    await _chat(h, nurse, BACKUP, "Can you cover?")
    assert _notices(nurse_sink) == []


async def test_dnd_holds_normal_messages_until_it_ends(h: Harness) -> None:
    backup, backup_sink = await h.login(BACKUP)
    nurse, nurse_sink = await h.login(NURSE)
    reply = await _dnd(h, backup, "2100-01-01T00:00:00Z")
    assert error_condition(reply) == "bad-request"  # more than 24 hours
    until = h.clock.now().replace(microsecond=0) + timedelta(minutes=30)
    reply = await _dnd(h, backup, cs.format_time(until))
    assert reply.get("type") == "result"
    await _chat(h, nurse, BACKUP, "Bed 4 needs you")
    assert _bodies(backup_sink) == []
    [notice] = _notices(nurse_sink)
    assert (notice.get("state"), notice.get("reason")) == ("held", "dnd")
    assert await h.kernel.stores.held.fetch(BACKUP) != []
    rows = await _deliveries(h)
    assert any(r.get("held_at") and not r.get("released_at") for r in rows)
    h.clock.advance(31 * 60)
    await _coverage(h).tick()
    assert _bodies(backup_sink) == ["Bed 4 needs you"]
    assert await h.kernel.stores.held.fetch(BACKUP) == []
    assert any(r.get("released_at") for r in await _deliveries(h))


async def test_resume_releases_in_order_and_status_reports(h: Harness) -> None:
    backup, backup_sink = await h.login(BACKUP)
    nurse, _ = await h.login(NURSE)
    until = h.clock.now() + timedelta(hours=1)
    await _dnd(h, backup, cs.format_time(until))
    for i in range(3):
        await _chat(h, nurse, BACKUP, f"m{i}", msg_id=f"id{i}")
    await h.send(backup, f"<iq type='get' id='s1'><status xmlns='{cs.NS}'/></iq>")
    [status] = [m.find(cs.STATUS) for m in backup_sink.take() if m.get("id") == "s1"]
    assert status is not None
    assert (status.get("busy"), status.get("reason"), status.get("held")) == ("true", "dnd", "3")
    await h.send(backup, f"<iq type='set' id='r1'><resume xmlns='{cs.NS}'/></iq>")
    assert _bodies(backup_sink) == ["m0", "m1", "m2"]


async def test_a_message_that_expired_while_held_is_dropped_at_release(h: Harness) -> None:
    backup, backup_sink = await h.login(BACKUP)
    await _dnd(h, backup, cs.format_time(h.clock.now() + timedelta(hours=1)))
    past = h.clock.now() - timedelta(minutes=1)
    future = h.clock.now() + timedelta(days=1)
    for text, at in (("gone", past), ("kept", future)):
        stanza = parse_document(
            f"<message xmlns='jabber:client' type='chat' to='{BACKUP}@{h.domain}'>"
            f"<body>{text}</body></message>"
        )
        add_expiry_hint(stanza, at)
        await h.kernel.stores.held.hold(
            BACKUP, serialize(stanza, None), stamp=h.clock.now(), reason="dnd"
        )
    _coverage(h).held[BACKUP] = 2
    await h.send(backup, f"<iq type='set' id='r1'><resume xmlns='{cs.NS}'/></iq>")
    assert _bodies(backup_sink) == ["kept"]
    assert await h.kernel.stores.held.fetch(BACKUP) == []  # the expired one is gone too


async def test_presence_dnd_holds_and_available_releases(h: Harness) -> None:
    backup, backup_sink = await h.login(BACKUP)
    nurse, _ = await h.login(NURSE)
    await h.send(backup, "<presence><show>dnd</show></presence>")
    backup_sink.take()
    await _chat(h, nurse, BACKUP, "later")
    assert _bodies(backup_sink) == []
    await h.send(backup, "<presence/>")
    await _coverage(h).tick()
    assert "later" in _bodies(backup_sink)


async def _delivery(h: Harness) -> int:
    rec = await _platform(h).datasets.create(
        "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
    )
    return rec.id


async def _alert(h: Harness, to: str, priority: str, **more: object) -> AlertSent:
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None
    sent = await gateway.send_alert(
        AlertRequest(
            recipients=(f"{to}@{h.domain}",),
            source=f"NURSE_CALLS/{priority}",
            delivery_id=await _delivery(h),
            subject="Call",
            message="Bed 4",
            ttl=10,
            priority=priority,
            accept=True,
            **more,  # type: ignore[arg-type]
        )
    )
    await h.kernel.ctx.durability.flush()
    return sent


async def _settle(h: Harness) -> None:
    """Let the engine's worker run every queued firing, and the tracker commit."""
    p = _platform(h)
    for _ in range(200):
        await p.engine.drain()
        await h.kernel.ctx.durability.flush()
        if p.engine._queue.empty():
            return
        await asyncio.sleep(0)


async def _unanswered_call(h: Harness) -> int:
    """A call on ICU-101A unanswered for a minute: the demo's rule alerts the backup, Urgent."""
    call = await _platform(h).datasets.create(
        "NURSE_CALLS",
        {"call_id": "c1", "status": "Open", "priority": "Normal", "bed": bed_of("ICU-101A")},
    )
    await _settle(h)
    h.clock.advance(BACKUP_AFTER + 1)
    await _platform(h).engine.run_due()
    await _settle(h)
    return call.id


async def test_an_urgent_alert_holds_normal_traffic_until_it_is_accepted(h: Harness) -> None:
    nurse, nurse_sink = await h.login(NURSE)
    backup, backup_sink = await h.login(BACKUP)
    call = await _unanswered_call(h)
    [urgent] = [m.find(ALERT) for m in backup_sink.take() if m.find(ALERT) is not None]
    assert urgent is not None and urgent.get("priority") == "urgent"
    await _chat(h, nurse, BACKUP, "coffee?")
    assert _bodies(backup_sink) == []
    [notice] = _notices(nurse_sink)
    assert (notice.get("state"), notice.get("reason")) == ("held", "urgent-alert")
    await _alert(h, BACKUP, "Normal")  # a Normal alert waits too
    # Only its room invitation, a stanza of its own without a body, comes now.
    [invitation] = backup_sink.take()
    assert invitation.find("{jabber:x:conference}x") is not None
    assert invitation.find(BODY) is None
    await _coverage(h).tick()  # time alone frees nobody: the alert lives ten minutes
    assert backup_sink.take() == []

    await h.send(
        backup,
        f"<iq type='set' id='r1' to='{h.domain}'>"
        f"<response xmlns='{al.NS}' alert='{urgent.get('id')}' action='accept'/></iq>",
    )
    sent = backup_sink.take()
    [reply] = [m for m in sent if m.get("id") == "r1"]
    assert reply.get("type") == "result"
    record = await _platform(h).datasets.get("NURSE_CALLS", call)
    assert (record.get("status"), record.get("responder")) == ("Accepted", BACKUP)
    # Released by the Accept itself, oldest first: no tick ran and no time passed.
    released = [m.findtext(BODY) or "" for m in sent if m.find(BODY) is not None]
    assert released[0] == "coffee?" and released[1].startswith("[Alert] Call")
    assert len(released) == 2
    assert _coverage(h).reason_of(BACKUP) is None
    assert await h.kernel.stores.busy.of(BACKUP) == []


async def test_a_critical_alert_breaks_through_and_expiry_frees(h: Harness) -> None:
    _, backup_sink = await h.login(BACKUP)
    nurse, _ = await h.login(NURSE)
    await _alert(h, BACKUP, "Urgent")
    backup_sink.take()
    await _chat(h, nurse, BACKUP, "coffee?")
    await _alert(h, BACKUP, "Critical")
    got = backup_sink.take()
    assert [m for m in got if m.find(ALERT) is not None]  # Critical breaks through
    assert [m for m in got if m.findtext(BODY) == "coffee?"] == []
    h.clock.advance(11 * 60)  # both alerts live ten minutes
    await _coverage(h).tick()
    assert _bodies(backup_sink) == ["coffee?"]


async def test_an_alert_to_an_offline_recipient_reroutes_to_the_cover(h: Harness) -> None:
    _, backup_sink = await h.login(BACKUP)
    await h.account(NURSE)
    sent = await _alert(
        h, NURSE, "Important", coverage="Reroute", covering=(f"{BACKUP}@{h.domain}",)
    )
    assert [m for m in backup_sink.take() if m.find(ALERT) is not None]
    assert sent.notified == (f"{BACKUP}@{h.domain}",)
    assert sent.rerouted_from == (f"{NURSE}@{h.domain}",)
    assert sent.uncovered == ((f"{NURSE}@{h.domain}", "offline on every device"),)


async def test_record_mode_alerts_the_off_shift_user_and_says_so(h: Harness) -> None:
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None
    _, doc_sink = await h.login(DOC)
    sent = await gateway.send_alert(
        AlertRequest(
            recipients=(f"{DOC}@{h.domain}",),
            source="NURSE_CALLS/98",
            delivery_id=await _delivery(h),
            subject="Call",
            message="Bed 4",
            ttl=10,
        )
    )
    assert sent.notified == (f"{DOC}@{h.domain}",)
    assert sent.uncovered == ((f"{DOC}@{h.domain}", "off shift"),)
    assert [m for m in doc_sink.take() if m.find(ALERT) is not None]


async def test_the_shift_index_follows_assignment_changes(h: Harness) -> None:
    p = _platform(h)
    index = await _coverage(h).shifts.fresh()
    assert index.is_on_shift(NURSE) is True
    assert index.is_on_shift(DOC) is False
    page = await p.datasets.query(
        "ASSIGNMENTS",
        Query(filters=(Filter(field="state", op=FilterOp.EQ, value="active"),), limit=1000),
    )
    for rec in page.records:
        await p.datasets.update("ASSIGNMENTS", rec.id, {"state": "expired"})
    assert (await _coverage(h).shifts.fresh()).is_on_shift(NURSE) is None  # none recorded
    await _coverage(h).shifts.reload()
    assert _coverage(h).shifts.active == {}
