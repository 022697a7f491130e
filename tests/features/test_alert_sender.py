"""What an alert's recipient receives (features/alerting/sender.py), in every kind of client.

Issue 14: an ordinary client (profanity) showed "Chat room invite received"
and not the alert's text, because the alert message also carried the room
invitation. The alert is now an ordinary message with a ``<body/>`` and the
structured ``<alert/>``; the invitation follows as a stanza of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.adapters.xmpp.gateway import AlertRequest, AlertSent, ChatGateway
from carewire.xmpp import alert as al
from tests.features.harness import Harness, make_harness

BODY = "{jabber:client}body"
ALERT = f"{{{al.NS}}}alert"
CONFERENCE_X = "{jabber:x:conference}x"
MUC_USER_X = "{http://jabber.org/protocol/muc#user}x"
MUC_INVITE = "{http://jabber.org/protocol/muc#user}invite"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    yield harness
    await harness.close()


async def _alert(h: Harness, *logins: str) -> AlertSent:
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None and h.platform is not None
    delivery = await h.platform.datasets.create(
        "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
    )
    sent = await gateway.send_alert(
        AlertRequest(
            recipients=tuple(f"{login}@{h.domain}" for login in logins),
            source="NURSE_CALLS/7",
            delivery_id=delivery.id,
            subject="Nurse call 101",
            message="Bed 4 is calling",
            ttl=10,
            priority="Urgent",
            accept=True,
            decline=True,
        )
    )
    await h.kernel.ctx.durability.flush()
    return sent


def _check_pair(got: list[Element], room: str, to: str) -> None:
    """The alert (an ordinary message with body and <alert/>), then the invitation."""
    assert len(got) == 2, got
    message, invitation = got
    assert message.get("from") == room and message.get("type") == "normal"
    body = message.findtext(BODY) or ""
    assert body.startswith("[Alert, Urgent] Nurse call 101\nBed 4 is calling\n")
    assert "Responses: Accept, Decline." in body
    alert = message.find(ALERT)
    assert alert is not None and alert.get("room") == room
    assert al.parse_alert(alert).message == "Bed 4 is calling"
    # No invitation in the alert itself: clients would show it instead of the body.
    assert message.find(CONFERENCE_X) is None and message.find(MUC_USER_X) is None

    assert invitation.get("from") == room and invitation.get("to") == to
    assert invitation.find(ALERT) is None and invitation.find(BODY) is None
    conference = invitation.find(CONFERENCE_X)
    assert conference is not None
    assert (conference.get("jid"), conference.get("reason")) == (room, "Nurse call 101")
    assert invitation.findtext(f"{MUC_USER_X}/{MUC_INVITE}/{{*}}reason") == "Nurse call 101"


async def test_an_online_recipient_gets_the_alert_as_text_then_the_invitation(h: Harness) -> None:
    _, sink = await h.login("ann", resource="phone")
    sent = await _alert(h, "ann")
    assert sent.room == f"nurse_calls-7@chat.{h.domain}"
    _check_pair(sink.take(), sent.room, f"ann@{h.domain}")


async def test_an_offline_recipient_gets_both_stanzas_in_order_at_login(h: Harness) -> None:
    await h.account("bob")
    sent = await _alert(h, "bob")
    session, sink = await h.bind("bob", "desk")
    await h.send(session, "<presence/>")  # offline messages come with initial presence
    got = [m for m in sink.take() if m.tag == "{jabber:client}message"]
    _check_pair(got, sent.room, f"bob@{h.domain}")


async def test_one_recipient_failing_does_not_hold_back_the_others(h: Harness) -> None:
    """Recipients are served side by side: a failure for one (here a broken route) still
    lets every other recipient have the alert, then fails the firing as before."""
    sinks = {login: (await h.login(login, resource="phone"))[1] for login in ("ann", "cat", "dan")}
    router = h.kernel.ctx.router
    route = router.route

    async def broken_for_cat(stanza: Element, **kwargs: object) -> None:
        to = kwargs.get("to_jid")
        if to is not None and str(to).startswith("cat@"):
            raise RuntimeError("route failed")
        await route(stanza, **kwargs)  # type: ignore[arg-type]

    router.route = broken_for_cat  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(RuntimeError, match="route failed"):
            await _alert(h, "ann", "cat", "dan")
    finally:
        router.route = route  # type: ignore[method-assign]
    room = f"nurse_calls-7@chat.{h.domain}"
    _check_pair(sinks["ann"].take(), room, f"ann@{h.domain}")
    _check_pair(sinks["dan"].take(), room, f"dan@{h.domain}")
    assert sinks["cat"].take() == []
