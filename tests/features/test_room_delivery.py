"""A room's broadcast passes every ``session/deliver`` hook at once: each occupant still gets
what the hooks decide for it alone (blocking, client state, delivery tracking)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.core.sessions import Session
from carewire.features.csi import CSI_STATE
from tests.features.harness import DOMAIN, Harness, RecordingSink, make_harness
from tests.features.test_muc_helpers import CHAT, C, join, make_room, messages
from tests.features.test_tracking import FEATURES, identity_id, records, sid_of

ROOM = f"ward@{CHAT}"
COMPOSING = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=[*FEATURES, "csi", "muc"], with_platform=True)
    yield harness
    await harness.close()


async def occupant(h: Harness, login: str) -> tuple[Session, RecordingSink]:
    session, sink = await h.login(login)
    await join(h, session, "ward", login)
    sink.take()
    return session, sink


def what(sink: RecordingSink) -> list[str]:
    """Each message written: its body, or the chat state it carries."""
    out = []
    for m in messages(sink.take()):
        body = m.findtext(f"{C}body")
        out.append(body if body is not None else m[0].tag.rpartition("}")[2])
    return out


async def test_each_occupant_gets_what_the_hooks_decide_for_it(h: Harness) -> None:
    _, olive = await make_room(h, "olive", "ward")
    bob, bob_sink = await occupant(h, "bob")
    alice, alice_sink = await occupant(h, "alice")
    carol, carol_sink = await occupant(h, "carol")
    _, dave_sink = await occupant(h, "dave")
    # Alice blocks Bob's occupant JID; Carol's client went inactive (XEP-0352).
    await h.send(
        alice,
        "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>"
        f"<item jid='{ROOM}/bob'/></block></iq>",
    )
    carol.data[CSI_STATE] = "inactive"
    for sink in (alice_sink, carol_sink, dave_sink, olive, bob_sink):
        sink.take()

    await h.send(bob, f"<message to='{ROOM}' type='groupchat'>{COMPOSING}</message>")
    assert what(dave_sink) == what(olive) == ["composing"]
    assert what(alice_sink) == [] and what(carol_sink) == []  # blocked; held

    await h.send(bob, f"<message to='{ROOM}' type='groupchat'><body>bed 4</body></message>")
    (sent,) = messages(dave_sink.take())
    assert sent.findtext(f"{C}body") == "bed 4" and sent.get("to") == f"dave@{DOMAIN}/res"
    assert what(alice_sink) == []
    assert what(carol_sink) == ["composing", "bed 4"]  # what was held goes first
    assert what(bob_sink) == ["composing", "bed 4"]  # the sender gets its own copies

    (msg,) = await records(h, "MESSAGES", uuid=sid_of(sent))
    sent_at = {
        d.get("recipient"): d.get("sent_at")
        for d in await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    }
    now = h.clock.now()
    for login in ("carol", "dave", "olive"):
        assert sent_at[await identity_id(h, f"{login}@{DOMAIN}")] == now, login
    assert await identity_id(h, f"alice@{DOMAIN}") not in sent_at  # never written to her
