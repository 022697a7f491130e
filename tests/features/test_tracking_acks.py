"""Acknowledgeable messages (urn:carewire:ack:0) and their acknowledgements (XEP-0333)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.xmpp.jid import JID
from tests.features.harness import Harness, error_condition, make_harness
from tests.features.test_tracking import FEATURES, chat, identity_id, records, sid_of, tracker

D = "example.test"
ACKABLE = "<markable xmlns='urn:xmpp:chat-markers:0'/><acknowledgeable xmlns='urn:carewire:ack:0'/>"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


def ack(to: str, ref: str, body: str = "") -> str:
    body_el = f"<body>{body}</body>" if body else ""
    return (
        f"<message to='{to}@{D}' type='chat' id='ack-{ref[:8]}'>{body_el}"
        f"<acknowledged xmlns='urn:xmpp:chat-markers:0' id='{ref}'/></message>"
    )


async def test_acknowledgeable_needs_both_elements(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    await chat(h, "alice", "bob", "a", mid="m1", extra=ACKABLE)
    await chat(
        h, "alice", "bob", "b", mid="m2", extra="<markable xmlns='urn:xmpp:chat-markers:0'/>"
    )
    await chat(
        h, "alice", "bob", "c", mid="m3", extra="<acknowledgeable xmlns='urn:carewire:ack:0'/>"
    )
    msgs = await records(h, "MESSAGES")
    assert [m.get("acknowledgeable") for m in msgs] == ["t", "f", "f"]


async def test_acknowledgement_sets_delivery_and_links_the_message(h: Harness) -> None:
    alice, alice_sink = await h.login("alice")
    bob, bob_sink = await h.login("bob")
    await chat(h, "alice", "bob", "please confirm", mid="q1", extra=ACKABLE)
    (original,) = await records(h, "MESSAGES")
    h.clock.advance(30)
    await h.send(bob, ack("alice", "q1", "confirmed"))
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=original.id)
    assert delivery.get("acknowledged") == h.clock.now()
    (reply,) = await records(h, "MESSAGES", acknowledges=original.id)
    assert reply.get("message") == "confirmed"
    assert reply.get("from") == await identity_id(h, f"bob@{D}")
    # The acknowledgement reached alice (routed, not swallowed).
    got = [
        m for m in alice_sink.take() if m.find("{urn:xmpp:chat-markers:0}acknowledged") is not None
    ]
    assert len(got) == 1
    bob_sink.take()
    assert alice is not None


async def test_acknowledgement_by_stanza_id_without_body(h: Harness) -> None:
    await h.login("alice")
    bob, bob_sink = await h.login("bob")
    await chat(h, "alice", "bob", "x", extra=ACKABLE)
    (got,) = bob_sink.take()
    uid = sid_of(got)
    await h.send(bob, ack("alice", uid))
    (delivery,) = await records(h, "MESSAGE_DELIVERIES")
    assert delivery.get("acknowledged") is not None
    assert len(await records(h, "MESSAGES")) == 1  # an ack without a body is no message


async def test_acknowledgement_of_an_unknown_message_is_item_not_found(h: Harness) -> None:
    await h.login("alice")
    bob, bob_sink = await h.login("bob")
    _, alice_sink = h.kernel.sessions.get(JID.parse(f"alice@{D}/res")), None
    await h.send(bob, ack("alice", "no-such-id", "ok"))
    (reply,) = bob_sink.take()
    assert reply.get("type") == "error" and error_condition(reply) == "item-not-found"
    text = reply.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}text")
    assert text is not None and text.text
    assert await records(h, "MESSAGES") == []  # not routed, not recorded
    await h.send(bob, ack("alice", "5d3f2c1a-0000-4000-8000-000000000000"))
    (reply,) = bob_sink.take()
    assert error_condition(reply) == "item-not-found"
    assert alice_sink is None


async def test_acknowledgement_from_a_non_recipient_is_forbidden(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    carol, carol_sink = await h.login("carol")
    await chat(h, "alice", "bob", "x", mid="q9", extra=ACKABLE)
    (msg,) = await records(h, "MESSAGES")
    await h.send(carol, ack("alice", str(msg.get("uuid"))))
    (reply,) = carol_sink.take()
    assert error_condition(reply) == "forbidden"
    # Also for an older message (looked up in the datasets).
    tracker(h).recent.pop(str(msg.get("uuid")))
    await h.send(carol, ack("alice", str(msg.get("uuid"))))
    (reply,) = carol_sink.take()
    assert error_condition(reply) == "forbidden"
    (delivery,) = await records(h, "MESSAGE_DELIVERIES")
    assert delivery.get("acknowledged") is None


async def test_acknowledgement_of_an_older_message_from_the_datasets(h: Harness) -> None:
    await h.login("alice")
    bob, bob_sink = await h.login("bob")
    await chat(h, "alice", "bob", "x", extra=ACKABLE)
    (msg,) = await records(h, "MESSAGES")
    tracker(h).recent.pop(str(msg.get("uuid")))
    bob_sink.take()
    await h.send(bob, ack("alice", str(msg.get("uuid")), "done"))
    assert bob_sink.take() == []
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert delivery.get("acknowledged") == h.clock.now()
    (reply,) = await records(h, "MESSAGES", acknowledges=msg.id)
    assert reply.get("message") == "done"


async def test_ack_feature_is_advertised(h: Harness) -> None:
    assert "urn:carewire:ack:0" in h.kernel.disco.server_features
    assert "urn:xmpp:sid:0" in h.kernel.disco.server_features
    assert "urn:xmpp:sid:0" in h.kernel.disco.account_features
