"""Router.post_copies: one stanza's copies for many recipients, the local ones in one hook event."""

from __future__ import annotations

import pytest

from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import SharedBody, serialize
from tests.core.test_router import DOMAIN, Net, x

ROOM = f"ward@rooms.{DOMAIN}/nurse"


@pytest.fixture
def net() -> Net:
    return Net()


def body() -> SharedBody:
    stanza = f"<message from='{ROOM}' type='groupchat' id='m1'><body>hi</body></message>"
    return SharedBody(x(stanza))


def test_each_local_session_gets_its_own_copy_in_one_hook_event(net: Net) -> None:
    alice, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    bob, bob_sink = net.bind(f"bob@{DOMAIN}/desk")
    events: list[DeliveryEvent] = []
    net.hooks.on(H.SESSION_DELIVER, events.append)
    net.router.post_copies(body(), [alice.jid, bob.jid])
    (event,) = events
    assert [session for session, _ in filter(None, event.targets)] == [alice, bob]
    (to_alice,) = alice_sink.take()
    (to_bob,) = bob_sink.take()
    assert to_alice.get("to") == str(alice.jid) and to_bob.get("to") == str(bob.jid)
    assert event.stanza is to_alice  # the first copy stands for all of them
    assert serialize(to_bob) == serialize(to_alice).replace("alice@", "bob@").replace(
        "/phone", "/desk"
    )
    assert net.router.stats.sent["{jabber:client}message"] == 2


def test_a_hook_drops_one_copy_and_the_hooks_after_it_do_not_see_it(net: Net) -> None:
    alice, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    bob, bob_sink = net.bind(f"bob@{DOMAIN}/desk")
    later: list[list[JID]] = []

    def drop_bob(event: DeliveryEvent) -> None:
        for i, target in enumerate(event.targets):
            if target is not None and target[0] is bob:
                event.targets[i] = None

    def observe(event: DeliveryEvent) -> None:
        later.append([target[0].jid for target in event.targets if target is not None])

    net.hooks.on(H.SESSION_DELIVER, drop_bob, priority=20)  # higher runs first
    net.hooks.on(H.SESSION_DELIVER, observe, priority=10)
    net.router.post_copies(body(), [alice.jid, bob.jid])
    assert [el.get("to") for el in alice_sink.take()] == [str(alice.jid)]
    assert bob_sink.take() == []
    assert later == [[alice.jid]]


def test_recipients_without_a_session_are_skipped(net: Net) -> None:
    alice, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    gone = JID.parse(f"carol@{DOMAIN}/old")
    net.router.post_copies(body(), [gone, alice.jid])
    (copy,) = alice_sink.take()
    assert copy.findtext("{jabber:client}body") == "hi"
    assert "<body>hi</body>" in serialize(copy)


def test_no_local_session_fires_no_hook(net: Net) -> None:
    events: list[DeliveryEvent] = []
    net.hooks.on(H.SESSION_DELIVER, events.append)
    net.router.post_copies(body(), [JID.parse(f"carol@{DOMAIN}/old")])
    assert events == []


def test_an_empty_stanza_is_represented_by_its_first_local_copy(net: Net) -> None:
    alice, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    bob, _ = net.bind(f"bob@{DOMAIN}/desk")
    events: list[DeliveryEvent] = []
    net.hooks.on(H.SESSION_DELIVER, events.append)
    gone = JID.parse(f"carol@{DOMAIN}/old")
    net.router.post_copies(
        SharedBody(x(f"<message from='{ROOM}' type='groupchat'/>")), [gone, alice.jid, bob.jid]
    )
    (event,) = events
    (to_alice,) = alice_sink.take()
    assert event.stanza is to_alice and len(event.targets) == 2
