"""Responses to clinical alerts through the kernel: checks, the data written, the notices.

The ward of :mod:`tests.world`, its calls named NURSE_CALLS, with its call c1
and staff. The send side is simulated as the XMPP adapter leaves it: the
world's ``call-alert`` rule, a DELIVERIES record of its firing linked to the
alert's MESSAGES record (uuid = alert id, the ``<alert/>`` in ``elements``),
the recipients (nurse and doc) and a MESSAGE_DELIVERIES row per notified
recipient.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.assembly import Assembly
from carewire.datasets.model import Record, RecordChanged
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.xmpp import alert as al
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition
from carewire.xmpp.xml import serialize
from tests.features.harness import Harness, error_condition, make_harness
from tests.world import (
    ALERT_SETTINGS,
    WARDS,
    add_person,
    add_staff,
    call_alert,
    create_rules,
    define_ward,
    seed_ward,
)

NS = al.NS
ALERT_ID = "alert-1"
NURSE_CALLS = "NURSE_CALLS"


@dataclass
class World:
    h: Harness
    p: Assembly
    call: Record
    message: Record
    delivery: Record
    doc: Record


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    yield harness
    await harness.close()


def _alert(h: Harness, **changes: object) -> al.Alert:
    values: dict[str, object] = {
        "id": ALERT_ID,
        "subject": "Bed c1",
        "message": "Call from c1",
        "ttl": 30,
        "expires_at": h.clock.now() + timedelta(minutes=30),
        "accept": True,
        "decline": True,
        "accept_and_call": True,
        "callback_number": "5551234",
        "room": f"nurse_calls-1@chat.{h.domain}",
    }
    values.update(changes)
    return al.Alert(**values)  # type: ignore[arg-type]


async def _world(
    h: Harness,
    *,
    alert: al.Alert | None = None,
    elements: str | None = None,
    link_delivery: bool = True,
) -> World:
    p = h.platform
    assert p is not None
    await define_ward(p, calls=NURSE_CALLS)
    call = (await seed_ward(p, calls=NURSE_CALLS)).call
    # The rule comes after the record, so creating the record fired nothing.
    await create_rules(p, call_alert(dataset=NURSE_CALLS))
    staff = await add_staff(p, h.domain)
    nurse, doc = staff.nurse, staff.doc
    now = h.clock.now()
    sent = alert or _alert(h)
    conversation = await p.datasets.create(
        "CONVERSATIONS", {"jid1": f"nurse_calls-1@chat.{h.domain}", "jid2": "ROOM", "ttl": 30}
    )
    message = await p.datasets.create(
        "MESSAGES",
        {
            "conversation": conversation.id,
            "uuid": ALERT_ID,
            "received_at": now,
            "sent_at": now,
            "message": al.readable_body(sent),
            "elements": serialize(al.build_alert(sent)) if elements is None else elements,
            "state": "valid",
            "acknowledgeable": "t",
            "recipients": [nurse.id, doc.id],
        },
    )
    for who in (nurse, doc):
        await p.datasets.create(
            "MESSAGE_DELIVERIES", {"message": message.id, "recipient": who.id, "sent_at": now}
        )
    delivery = await p.datasets.create(
        "DELIVERIES",
        {
            "status": "Delivered",
            "triggered_at": now,
            "rule": "call-alert",
            "source": f"{NURSE_CALLS}/{call.id}",
            "interface_name": "XMPP",
            "message": message.id if link_delivery else None,
        },
    )
    return World(h=h, p=p, call=call, message=message, delivery=delivery, doc=doc)


def _iq(action: str = "accept", alert_id: str = ALERT_ID, to: str = "example.test") -> str:
    return (
        f"<iq type='set' id='r1' to='{to}'>"
        f"<response xmlns='{NS}' alert='{alert_id}' action='{action}'/></iq>"
    )


async def _respond(w: World, login: str = "nurse", xml: str | None = None) -> Element:
    return await w.h.ask(login, xml or _iq())


async def _call(w: World) -> Record:
    return await w.p.datasets.get(NURSE_CALLS, w.call.id)


async def _responses(w: World) -> list[Record]:
    page = await w.p.datasets.query(
        "MESSAGES",
        Query(filters=(Filter(field="acknowledges", op=FilterOp.EQ, value=w.message.id),)),
    )
    return list(page.records)


def _text(reply: Element) -> str:
    err = reply.find(f"{{{ns.CLIENT}}}error")
    assert err is not None
    return err.findtext(f"{{{ns.STANZAS_ERR}}}text") or ""


# --- the happy paths --------------------------------------------------------------------------


async def test_accept_writes_the_rule_updates_and_records_the_response(h: Harness) -> None:
    w = await _world(h)
    events: list[RecordChanged] = []
    w.p.datasets.subscribe(events.append)
    reply = await _respond(w)
    assert reply.get("type") == "result" and reply.get("id") == "r1"
    assert len(reply) == 0
    call = await _call(w)
    assert (call.get("status"), call.get("responder")) == ("Accepted", "nurse")
    room = await w.p.datasets.get(WARDS, int(str(call.get("room"))))
    assert room.get("status") == "Busy c1"
    # The response itself: a message from the nurse acknowledging the alert.
    [response] = await _responses(w)
    assert response.get("message") == "Accept"
    stored = al.response_from_stored(str(response.get("elements")))
    assert stored == al.Response(alert_id=ALERT_ID, action=al.ResponseAction.ACCEPT)
    assert response.get("conversation") == w.message.get("conversation")
    sender = await w.p.datasets.get("IDENTITIES", int(str(response.get("from"))))
    assert sender.get("name") == "nurse@example.test"
    page = await w.p.datasets.query("MESSAGE_DELIVERIES", Query())
    acked = {r.get("recipient"): r.get("acknowledged") for r in page.records}
    assert acked == {response.get("from"): h.clock.now(), w.doc.id: None}
    calls = [e for e in events if e.dataset == "NURSE_CALLS"]
    assert calls and all(e.origin.actor == "xmpp:nurse" for e in calls)
    assert all(e.origin.adapter == "XMPP" for e in calls)


async def test_decline_and_accept_and_call_apply_their_own_updates(h: Harness) -> None:
    w = await _world(h)
    assert (await _respond(w, "nurse", _iq("decline"))).get("type") == "result"
    assert (await _call(w)).get("status") == "Declined"
    assert (await _respond(w, "doc", _iq("accept-and-call"))).get("type") == "result"
    call = await _call(w)
    assert (call.get("status"), call.get("responder")) == ("Calling", "doc")
    assert len(await _responses(w)) == 2


async def test_other_recipients_sessions_are_told_who_responded(h: Harness) -> None:
    await _world(h)
    _, doc_sink = await h.login("doc", "phone")
    _, nurse_other = await h.login("nurse", "desktop")
    _, tech_sink = await h.login("tech")
    nurse, nurse_sink = await h.login("nurse", "phone")
    await h.send(nurse, _iq())
    [result] = _headlines(nurse_sink.take(), keep_iq=True)
    assert result.get("type") == "result"
    for sink in (doc_sink, nurse_other):
        [notice] = _headlines(sink.take())
        assert notice.get("type") == "headline"
        assert notice.get("from") == h.domain
        assert notice.findtext(f"{{{ns.CLIENT}}}body") == "nurse responded Accept: Bed c1"
        responded = notice.find(al.RESPONDED)
        assert responded is not None
        assert al.parse_responded(responded) == al.Responded(
            alert_id=ALERT_ID, by="nurse@example.test", action=al.ResponseAction.ACCEPT
        )
    assert _headlines(tech_sink.take()) == []


def _headlines(stanzas: list[Element], *, keep_iq: bool = False) -> list[Element]:
    """The headline messages (and IQs) among what a session received (presence aside)."""
    return [
        s
        for s in stanzas
        if s.get("type") == "headline" or (keep_iq and s.tag == f"{{{ns.CLIENT}}}iq")
    ]


async def test_a_recipient_named_only_by_message_deliveries_may_respond(h: Harness) -> None:
    w = await _world(h)
    extra = await add_person(w.p, "backup", h.domain)
    await w.p.datasets.create(
        "MESSAGE_DELIVERIES",
        {"message": w.message.id, "recipient": extra.id, "sent_at": h.clock.now()},
    )
    assert (await _respond(w, "backup")).get("type") == "result"
    assert (await _call(w)).get("responder") == "backup"


async def test_a_recipient_named_only_by_messages_recipients_may_respond(h: Harness) -> None:
    w = await _world(h)
    page = await w.p.datasets.query("MESSAGE_DELIVERIES", Query())
    for row in page.records:
        await w.p.datasets.delete("MESSAGE_DELIVERIES", row.id)
    assert (await _respond(w, "doc")).get("type") == "result"
    assert (await _call(w)).get("responder") == "doc"


async def test_the_server_advertises_the_namespace(h: Harness) -> None:
    reply = await h.ask(
        "nurse", f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    query = reply.find(f"{{{ns.DISCO_INFO}}}query")
    assert query is not None
    assert NS in {f.get("var") for f in query.findall(f"{{{ns.DISCO_INFO}}}feature")}


# --- refusals ---------------------------------------------------------------------------------


async def _refused(w: World, reply: Element, condition: str, text: str) -> None:
    assert reply.get("type") == "error"
    assert error_condition(reply) == condition
    assert text in _text(reply)
    call = await _call(w)
    assert (call.get("status"), call.get("responder")) == (None, None)
    assert await _responses(w) == []


async def test_an_unknown_alert_is_item_not_found(h: Harness) -> None:
    w = await _world(h)
    await _refused(w, await _respond(w, xml=_iq(alert_id="nope")), "item-not-found", "No such")


async def test_an_expired_alert_is_not_acceptable(h: Harness) -> None:
    w = await _world(h)
    h.clock.advance(30 * 60)
    await _refused(w, await _respond(w), "not-acceptable", "The alert has expired")


async def test_an_alert_marked_expired_is_not_acceptable(h: Harness) -> None:
    w = await _world(h)
    await w.p.datasets.update("MESSAGES", w.message.id, {"state": "expired"})
    await _refused(w, await _respond(w), "not-acceptable", "The alert has expired")


async def test_a_non_recipient_is_forbidden(h: Harness) -> None:
    w = await _world(h)
    await _refused(w, await _respond(w, "tech"), "forbidden", "not a recipient")
    await _refused(w, await _respond(w, "stranger"), "forbidden", "not a recipient")


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (f"<response xmlns='{NS}' alert='{ALERT_ID}' action='maybe'/>", "unknown action 'maybe'"),
        (f"<response xmlns='{NS}' action='accept'/>", "no 'alert' attribute"),
        (f"<response xmlns='{NS}' alert='{ALERT_ID}'/>", "no 'action' attribute"),
    ],
)
async def test_a_malformed_response_is_a_bad_request(h: Harness, payload: str, text: str) -> None:
    w = await _world(h)
    xml = f"<iq type='set' id='r1' to='{h.domain}'>{payload}</iq>"
    await _refused(w, await _respond(w, xml=xml), "bad-request", text)


async def test_a_response_not_offered_is_not_acceptable(h: Harness) -> None:
    w = await _world(h, alert=_alert(h, decline=False))
    reply = await _respond(w, xml=_iq("decline"))
    await _refused(w, reply, "not-acceptable", "does not offer Decline")


async def test_a_mass_alert_takes_no_responses(h: Harness) -> None:
    mass = _alert(h, accept=False, decline=False, accept_and_call=False, callback_number="")
    w = await _world(h, alert=mass)
    await _refused(w, await _respond(w), "not-acceptable", "(offered: none)")


async def test_a_second_response_by_the_same_user_is_a_conflict(h: Harness) -> None:
    w = await _world(h)
    assert (await _respond(w)).get("type") == "result"
    reply = await _respond(w, xml=_iq("decline"))
    assert error_condition(reply) == "conflict"
    assert "already responded" in _text(reply)
    assert (await _call(w)).get("status") == "Accepted"
    assert len(await _responses(w)) == 1


async def test_a_message_that_is_not_an_alert_is_item_not_found(h: Harness) -> None:
    w = await _world(h, elements="")
    await _refused(w, await _respond(w), "item-not-found", "not an alert")


async def test_an_unreadable_stored_alert_is_an_internal_error(h: Harness) -> None:
    w = await _world(h, elements=f"<alert xmlns='{NS}' id='x'/>")
    await _refused(w, await _respond(w), "internal-server-error", "unreadable")


async def test_an_alert_without_its_rule_firing_is_item_not_found(h: Harness) -> None:
    w = await _world(h, link_delivery=False)
    await _refused(w, await _respond(w), "item-not-found", "rule firing")


async def test_a_deleted_rule_is_item_not_found_and_nothing_is_recorded(h: Harness) -> None:
    w = await _world(h)
    rule = w.p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    await w.p.rules.delete(rule.id)
    await _refused(w, await _respond(w), "item-not-found", "no longer exists")


async def test_a_deleted_record_is_item_not_found(h: Harness) -> None:
    w = await _world(h)
    await w.p.datasets.update("DELIVERIES", w.delivery.id, {"source": "NURSE_CALLS/999"})
    reply = await _respond(w)
    assert error_condition(reply) == "item-not-found"
    assert "NURSE_CALLS/999 that triggered this alert was deleted" in _text(reply)
    assert await _responses(w) == []


async def test_a_value_the_data_refuses_records_nothing(h: Harness) -> None:
    w = await _world(h)
    rule = w.p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    bad = {**ALERT_SETTINGS, "accept": "status=Accepted\nroom.name="}  # a key cannot be empty
    await w.p.rules.update(rule.id, replace(rule, settings=bad))
    await _refused(w, await _respond(w), "internal-server-error", "the accept updates were refused")


async def test_responses_go_to_the_server_not_to_the_chat_service(h: Harness) -> None:
    w = await _world(h)
    reply = await _respond(w, xml=_iq(to=f"chat.{h.domain}"))
    assert reply.get("type") == "error"
    assert (await _call(w)).get("status") is None


async def test_without_the_data_platform_nothing_answers(tmp_path: Path) -> None:
    plain = await make_harness(tmp_path)
    try:
        reply = await plain.ask("nurse", _iq())
        assert error_condition(reply) == "service-unavailable"
    finally:
        await plain.close()


async def test_simultaneous_responses_of_one_user_record_one(h: Harness) -> None:
    w = await _world(h)
    phone, phone_sink = await h.bind("nurse", "phone")
    desk, desk_sink = await h.bind("nurse", "desk")
    phone_sink.take()
    desk_sink.take()
    await asyncio.gather(h.send(phone, _iq()), h.send(desk, _iq("decline")))
    replies = [s for s in phone_sink.take() + desk_sink.take() if s.tag == f"{{{ns.CLIENT}}}iq"]
    assert sorted(r.get("type") or "" for r in replies) == ["error", "result"]
    [error] = [r for r in replies if r.get("type") == "error"]
    assert error_condition(error) == "conflict"
    assert len(await _responses(w)) == 1


async def test_other_acknowledgements_are_not_responses(h: Harness) -> None:
    w = await _world(h)
    nurse = await w.p.datasets.query(
        "IDENTITIES",
        Query(filters=(Filter(field="name", op=FilterOp.EQ, value="nurse@example.test"),)),
    )
    for i, elements in enumerate(["", "<unclosed", f"<response xmlns='{NS}'/>"]):
        await w.p.datasets.create(
            "MESSAGES",
            {
                "uuid": f"ack-{i}",
                "received_at": h.clock.now(),
                "sent_at": h.clock.now(),
                "elements": elements,
                "acknowledges": w.message.id,
                "from": nurse.records[0].id,
            },
        )
    assert (await _respond(w)).get("type") == "result"
    assert (await _call(w)).get("status") == "Accepted"


def test_unknown_conditions_become_internal_server_error() -> None:
    from carewire.features.alerting.responses import _condition

    assert _condition("weird") is StanzaCondition.INTERNAL_SERVER_ERROR
    assert _condition("gone") is StanzaCondition.GONE
