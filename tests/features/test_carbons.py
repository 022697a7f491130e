"""XEP-0280 message carbons: who gets which copy, and what is never copied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.events import IqRequest
from carewire.features.carbons import CARBONS, FORWARD, Carbons, is_eligible
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness, x
from tests.features.test_smacks import FEATURES

ENABLE = f"<iq type='set' id='c1'><enable xmlns='{CARBONS}'/></iq>"
DISABLE = f"<iq type='set' id='c2'><disable xmlns='{CARBONS}'/></iq>"
BODY = f"{{{ns.CLIENT}}}body"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=[*FEATURES, "disco", "blocking"])
    yield harness
    await harness.close()


async def resource(
    h: Harness, login: str, res: str, *, priority: int = 0, carbons: bool = True
) -> RecordingSink:
    session, sink = await h.login(login, res, priority=priority)
    if carbons:
        await h.send(session, ENABLE)
        (reply,) = sink.take()
        assert reply.get("type") == "result"
    return sink


def copy_of(stanza: Element, kind: str) -> Element:
    """The forwarded original inside a carbon copy of ``kind``."""
    holder = stanza.find(f"{{{CARBONS}}}{kind}")
    assert holder is not None, kind
    inner = holder.find(f"{{{FORWARD}}}forwarded/{{{ns.CLIENT}}}message")
    assert inner is not None
    return inner


def messages(sink: RecordingSink) -> list[Element]:
    return [e for e in sink.take() if e.tag == f"{{{ns.CLIENT}}}message"]


async def test_carbons_are_advertised(h: Harness) -> None:
    reply = await h.ask(
        "bob", f"<iq type='get' id='d' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    assert f'var="{CARBONS}"' in "".join(f'var="{f.get("var")}"' for f in reply.iter())


async def test_received_copies_for_a_bare_jid_message(h: Harness) -> None:
    phone = await resource(h, "alice", "phone", priority=1)
    desk = await resource(h, "alice", "desk")
    tablet = await resource(h, "alice", "tablet", carbons=False)
    bob, _ = await h.login("bob")
    await h.send(
        bob, "<message to='alice@example.test' type='chat' id='m1'><body>hi</body></message>"
    )
    (original,) = messages(phone)
    assert original.findtext(BODY) == "hi"
    (copy,) = messages(desk)
    assert (copy.get("from"), copy.get("to"), copy.get("type")) == (
        "alice@example.test",
        "alice@example.test/desk",
        "chat",
    )
    inner = copy_of(copy, "received")
    assert inner.get("from") == "bob@example.test/res" and inner.get("id") == "m1"
    assert inner.findtext(BODY) == "hi"
    assert not messages(tablet)  # did not enable carbons


async def test_received_copies_for_a_full_jid_message(h: Harness) -> None:
    phone = await resource(h, "alice", "phone", priority=1)
    desk = await resource(h, "alice", "desk")
    bob, _ = await h.login("bob")
    await h.send(bob, "<message to='alice@example.test/desk' type='chat'><body>d</body></message>")
    assert messages(desk)[0].findtext(BODY) == "d"  # the original, never a copy too
    assert copy_of(messages(phone)[0], "received").findtext(BODY) == "d"
    # A resource that does not exist: delivered as to the bare JID (phone), copied to desk.
    await h.send(bob, "<message to='alice@example.test/gone' type='chat'><body>g</body></message>")
    assert messages(phone)[0].findtext(BODY) == "g"
    assert copy_of(messages(desk)[0], "received").findtext(BODY) == "g"


async def test_sent_copies(h: Harness) -> None:
    phone_session, phone = await h.login("alice", "phone")
    await h.send(phone_session, ENABLE)
    phone.take()
    desk = await resource(h, "alice", "desk")
    _, bob = await h.login("bob")
    await h.send(
        phone_session, "<message to='bob@example.test' type='chat'><body>yo</body></message>"
    )
    assert messages(bob)[0].findtext(BODY) == "yo"
    (copy,) = messages(desk)
    assert copy.get("to") == "alice@example.test/desk"
    inner = copy_of(copy, "sent")
    assert inner.get("from") == "alice@example.test/phone" and inner.get("to") == "bob@example.test"
    assert not messages(phone)  # never to the sender


async def test_messages_to_the_own_account(h: Harness) -> None:
    phone_session, phone = await h.login("alice", "phone", priority=1)
    await h.send(phone_session, ENABLE)
    phone.take()
    desk = await resource(h, "alice", "desk")
    note = await resource(h, "alice", "note")
    await h.send(
        phone_session, "<message to='alice@example.test/desk' type='chat'><body>n</body></message>"
    )
    assert messages(desk)[0].findtext(BODY) == "n"
    assert not messages(phone)  # neither the sender …
    assert copy_of(messages(note)[0], "received").findtext(BODY) == "n"  # … but the others


@pytest.mark.parametrize(
    ("xml", "eligible"),
    [
        ("<message type='chat'/>", True),
        ("<message><body>b</body></message>", True),
        ("<message type='normal'/>", False),
        ("<message><received xmlns='urn:xmpp:receipts' id='1'/></message>", True),
        ("<message><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>", True),
        ("<message type='headline'><body>b</body></message>", False),
        ("<message type='groupchat'><body>b</body></message>", False),
        ("<message type='error'><body>b</body></message>", False),
        (f"<message type='chat'><body>b</body><private xmlns='{CARBONS}'/></message>", False),
        ("<message type='chat'><body>b</body><no-copy xmlns='urn:xmpp:hints'/></message>", False),
        (f"<message type='chat'><sent xmlns='{CARBONS}'/></message>", False),
        ("<presence/>", False),
    ],
)
def test_eligibility(xml: str, eligible: bool) -> None:
    assert is_eligible(x(xml)) is eligible


async def test_private_is_not_copied_and_is_removed(h: Harness) -> None:
    phone_session, phone = await h.login("alice", "phone", priority=1)
    await h.send(phone_session, ENABLE)
    phone.take()
    desk = await resource(h, "alice", "desk")
    bob_session, bob = await h.login("bob")
    await h.send(bob_session, ENABLE)
    bob.take()
    bob_tablet = await resource(h, "bob", "tablet", priority=-1)
    await h.send(
        phone_session,
        f"<message to='bob@example.test/res' type='chat'><body>p</body>"
        f"<private xmlns='{CARBONS}'/></message>",
    )
    (got,) = messages(bob)
    assert got.find(f"{{{CARBONS}}}private") is None  # removed on delivery
    assert not messages(desk) and not messages(bob_tablet)


async def test_disable_and_ineligible_messages(h: Harness) -> None:
    phone = await resource(h, "alice", "phone", priority=1)
    desk_session, desk = await h.login("alice", "desk")
    await h.send(desk_session, ENABLE)
    await h.send(desk_session, DISABLE)
    assert [r.get("type") for r in desk.take()] == ["result", "result"]
    bob, _ = await h.login("bob")
    await h.send(bob, "<message to='alice@example.test' type='chat'><body>1</body></message>")
    assert not messages(desk)
    await h.send(desk_session, ENABLE)
    desk.take()
    await h.send(bob, "<message to='alice@example.test' type='headline'><body>h</body></message>")
    assert all(m.find(f"{{{CARBONS}}}received") is None for m in messages(desk))
    phone.take()


async def test_enable_via_the_server_address_and_without_a_session(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='set' id='e' to='{h.domain}'><enable xmlns='{CARBONS}'/></iq>"
    )
    assert reply.get("type") == "result"
    (session,) = h.kernel.sessions.of_user("alice")
    assert session.data["carbons"] is True
    carbons = Carbons(h.kernel.ctx)
    iq = x(f"<iq type='set' id='e'><enable xmlns='{CARBONS}'/></iq>")
    req = IqRequest(
        stanza=iq,
        payload=iq[0],
        from_jid=JID.parse("alice@example.test"),
        to_jid=JID.parse("alice@example.test"),
        origin=None,
    )
    with pytest.raises(StanzaError):
        await carbons.enable(req)


async def test_blocked_messages_are_not_copied(h: Harness) -> None:
    phone_session, phone = await h.login("alice", "phone", priority=1)
    await h.send(phone_session, ENABLE)
    await h.send(
        phone_session,
        f"<iq type='set' id='bl'><block xmlns='{ns.BLOCKING}'>"
        "<item jid='bob@example.test'/></block></iq>",
    )
    phone.take()
    desk = await resource(h, "alice", "desk")
    bob, bob_sink = await h.login("bob")
    await h.send(bob, "<message to='alice@example.test' type='chat'><body>no</body></message>")
    assert not messages(phone) and not messages(desk)
    (err,) = messages(bob_sink)
    assert error_condition(err) is not None
