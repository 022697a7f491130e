"""The XMPP rule actions through the server: the nurse-call loop of the demo hospital.

A nurse call alerts the bed's level-1 nurse (resolved through attribute
paths), her response is written back, and the deferred escalation sees it:
with an acceptance it is cancelled, without one the backup nurse is alerted
in the same room.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.assembly import Assembly
from carewire.core.sessions import Session
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.demo_data import ALERT_RULE, BACKUP_RULE, bed_of, load_demo_data
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule
from carewire.xmpp import alert as al
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness

ALERT = f"{{{al.NS}}}alert"
NURSE, BACKUP = "nurse.adams", "nurse.baker"  # level 1 and 2 of ICU-101A


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


async def _settle(h: Harness) -> None:
    """Let the engine's worker run every queued firing, and the tracker commit."""
    p = _platform(h)
    for _ in range(200):
        await p.engine.drain()
        await h.kernel.ctx.durability.flush()
        if p.engine._queue.empty():
            return
        await asyncio.sleep(0)


async def _alerts(sink: RecordingSink) -> list[Element]:
    return [m for m in sink.take() if m.find(ALERT) is not None]


async def _call(h: Harness) -> int:
    rec = await _platform(h).datasets.create(
        "NURSE_CALLS",
        {
            "call_id": "c1",
            "status": "Open",
            "priority": "Normal",
            "bed": bed_of("ICU-101A"),
            "patient": {"mrn": "MRN1001"},
        },
    )
    await _settle(h)
    return rec.id


async def _deliveries(h: Harness, rule: str) -> list[dict[str, object]]:
    page = await _platform(h).datasets.query(
        "DELIVERIES", Query(filters=(Filter(field="rule", op=FilterOp.EQ, value=rule),))
    )
    return [dict(r.values) for r in page.records]


async def _respond(h: Harness, session: Session, alert_id: str, action: str) -> Element:
    session_sink = session.sink
    assert isinstance(session_sink, RecordingSink)
    session_sink.take()
    await h.send(
        session,
        f"<iq type='set' id='r1' to='{h.domain}'>"
        f"<response xmlns='{al.NS}' alert='{alert_id}' action='{action}'/></iq>",
    )
    replies = [m for m in session_sink.take() if m.get("id") == "r1"]
    assert len(replies) == 1
    return replies[0]


async def test_the_assigned_nurse_is_alerted_accepts_and_the_escalation_is_cancelled(
    h: Harness,
) -> None:
    nurse, nurse_sink = await h.login(NURSE)
    _, backup_sink = await h.login(BACKUP)
    call = await _call(h)

    [alert_msg] = await _alerts(nurse_sink)
    assert await _alerts(backup_sink) == []
    alert_el = alert_msg.find(ALERT)
    assert alert_el is not None
    alert = al.parse_alert(alert_el)
    assert alert.subject == "Nurse call 101"
    assert "Alice Moreau is calling from room 101, bed A." in alert.message
    assert alert.accept and alert.decline
    assert alert.patient is not None and alert.patient.mrn == "MRN1001"
    room = JID.parse(alert_msg.get("from", ""))
    assert room.domain == f"chat.{h.domain}"
    body = alert_msg.findtext("{jabber:client}body") or ""
    assert "Nurse call 101" in body  # what an ordinary client shows

    [delivery] = await _deliveries(h, ALERT_RULE)
    assert delivery["status"] == "Delivered", delivery["status_text"]
    assert delivery["message"] is not None  # linked to the alert's MESSAGES record
    conversations = await _platform(h).datasets.query(
        "CONVERSATIONS", Query(filters=(Filter(field="jid1", op=FilterOp.EQ, value=str(room)),))
    )
    [conversation] = conversations.records
    patients = await _platform(h).datasets.query(
        "PATIENTS", Query(filters=(Filter(field="mrn", op=FilterOp.EQ, value="MRN1001"),))
    )
    assert conversation.get("patient") == patients.records[0].id

    reply = await _respond(h, nurse, alert.id, "accept")
    assert reply.get("type") == "result", reply
    record = await _platform(h).datasets.get("NURSE_CALLS", call)
    assert record.get("status") == "Accepted"
    assert record.get("responder") == NURSE

    h.clock.advance(61)
    await _platform(h).engine.run_due()
    await _settle(h)
    [escalation] = await _deliveries(h, BACKUP_RULE)
    assert escalation["status"] == "Cancelled"
    assert await _alerts(backup_sink) == []


async def test_without_a_response_the_backup_is_alerted_in_the_same_room(h: Harness) -> None:
    _, nurse_sink = await h.login(NURSE)
    backup, backup_sink = await h.login(BACKUP)
    await _call(h)
    [first] = await _alerts(nurse_sink)

    h.clock.advance(61)
    await _platform(h).engine.run_due()
    await _settle(h)
    [escalated] = await _alerts(backup_sink)
    assert escalated.get("from") == first.get("from")  # one room per call
    assert await _alerts(nurse_sink) == []  # already alerted, no Re-Alert
    alert_el = escalated.find(ALERT)
    assert alert_el is not None
    alert = al.parse_alert(alert_el)
    assert alert.subject == "Escalated call 101"
    assert alert.priority is al.Priority.URGENT
    [escalation] = await _deliveries(h, BACKUP_RULE)
    assert escalation["status"] == "Delivered", escalation["status_text"]

    reply = await _respond(h, backup, alert.id, "decline")
    assert reply.get("type") == "result"


async def test_a_response_to_an_expired_alert_is_refused(h: Harness) -> None:
    nurse, nurse_sink = await h.login(NURSE)
    call = await _call(h)
    [alert_msg] = await _alerts(nurse_sink)
    alert_el = alert_msg.find(ALERT)
    assert alert_el is not None
    h.clock.advance(11 * 60)  # the demo alert lives 10 minutes
    reply = await _respond(h, nurse, al.parse_alert(alert_el).id, "accept")
    assert error_condition(reply) == "not-acceptable"
    record = await _platform(h).datasets.get("NURSE_CALLS", call)
    assert record.get("status") == "Open"


async def test_an_offline_nurse_gets_the_alert_when_she_logs_in(h: Harness) -> None:
    await h.account(NURSE)
    await _call(h)
    [delivery] = await _deliveries(h, ALERT_RULE)
    assert delivery["status"] == "Delivered"
    _, sink = await h.bind(NURSE)
    session = h.kernel.sessions.get(JID.parse(f"{NURSE}@{h.domain}/res"))
    assert session is not None
    await h.send(session, "<presence/>")
    await _settle(h)
    assert len(await _alerts(sink)) == 1


async def _rule(h: Harness, name: str, action: str, settings: dict[str, object]) -> None:
    """A rule on USERS that fires only for logins containing "trigger"."""
    only = Group(mode=Mode.ALL, items=(Condition(path="login", op=Op.CONTAINS, value="trigger"),))
    await _platform(h).rules.create(
        Rule(
            name=name,
            dataset="USERS",
            adapter="XMPP",
            action=action,
            conditions=only,
            settings=settings,
        )
    )


async def test_start_conversation_invite_leave_and_expire(h: Harness) -> None:
    _, ana_sink = await h.login("ana")
    await h.login("ben")
    await _rule(h, "start", "Start Conversation", {"recipients": "ana\nben", "subject": "Rounds"})
    await _platform(h).datasets.create("USERS", {"login": "trigger1"})
    await _settle(h)
    [started] = await _deliveries(h, "start")
    assert started["status"] == "Delivered", started["status_text"]
    invitations = [m for m in ana_sink.take() if m.find("{jabber:x:conference}x") is not None]
    assert len(invitations) == 1
    room = invitations[0].find("{jabber:x:conference}x").get("jid")  # type: ignore[union-attr]
    assert room is not None and room.endswith(f"@chat.{h.domain}")

    await _rule(h, "leave", "Leave Conversation", {"recipients": "ana", "conversation": room})
    await _rule(h, "expire", "Expire Conversation", {"conversation": room})
    await _platform(h).datasets.create("USERS", {"login": "trigger-carl"})
    await _settle(h)
    [left] = await _deliveries(h, "leave")
    assert left["status"] == "Delivered", left["status_text"]
    [expired] = await _deliveries(h, "expire")
    assert expired["status"] == "Delivered", expired["status_text"]
    page = await _platform(h).datasets.query(
        "CONVERSATIONS", Query(filters=(Filter(field="jid1", op=FilterOp.EQ, value=room),))
    )
    [conversation] = page.records
    assert conversation.get("activity_state") == "expired"


async def test_invitation_over_the_member_limit_is_an_error_delivery(h: Harness) -> None:
    muc = h.kernel.ctx.services
    from carewire.features.muc.service import MucService

    service = muc[MucService]
    assert isinstance(service, MucService)
    service.max_users = 2
    await _rule(h, "start", "Start Conversation", {"recipients": "a1\na2\na3", "subject": "Big"})
    await _platform(h).datasets.create("USERS", {"login": "trigger-zed"})
    await _settle(h)
    [delivery] = await _deliveries(h, "start")
    assert delivery["status"] == "Error"
    assert delivery["status_text"] == "A conversation is limited to 2 users"


async def test_system_message_and_presence(h: Harness) -> None:
    _, ana_sink = await h.login("ana")
    await h.account("ben")
    await _rule(
        h, "tell", "Send New System Message", {"recipients": "ana", "message": "Fire drill"}
    )
    await _rule(
        h,
        "away",
        "Update Presence",
        {"recipients": "ben", "presence_type": "Unavailable", "status": "In surgery"},
    )
    await _platform(h).datasets.create("USERS", {"login": "trigger-carl"})
    await _settle(h)
    bodies = [m.findtext("{jabber:client}body") for m in ana_sink.take()]
    assert "Fire drill" in bodies
    [presence] = await _deliveries(h, "away")
    assert presence["status"] == "Delivered", presence["status_text"]
    ben = h.kernel.sessions.of_user("ben")
    assert [s.resource for s in ben] == ["virtual"]
