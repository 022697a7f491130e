"""Message tracking (carewire.features.tracking): conversations, messages, deliveries as records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.datasets.model import Record
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, make_harness

D = "example.test"
FEATURES = ["message", "offline", "roster", "presence", "disco", "blocking", "tracking"]
SID = f"{{{stanzas.SID}}}stanza-id"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


def tracker(h: Harness) -> MessageTracker:
    found = h.kernel.ctx.require(MessageTracker)
    assert found is not None
    return found


def datasets(h: Harness) -> DatasetService:
    assert h.platform is not None
    return h.platform.datasets


async def records(h: Harness, dataset: str, **eq: object) -> list[Record]:
    await tracker(h).flush()
    filters = tuple(Filter(field=k, op=FilterOp.EQ, value=v) for k, v in eq.items())
    page = await datasets(h).query(dataset, Query(filters=filters, limit=1000))
    return list(page.records)


async def identity_id(h: Harness, name: str) -> int:
    (rec,) = await records(h, "IDENTITIES", name=name)
    return rec.id


def marker(to: str, kind: str, ref: str, ns: str = "urn:xmpp:chat-markers:0") -> str:
    """A receipt or chat marker message to ``to`` (a login or a full JID's login/resource)."""
    return f"<message to='{to}@{D}'><{kind} xmlns='{ns}' id='{ref}'/></message>"


def sid_of(stanza: Element) -> str:
    el = stanza.find(SID)
    assert el is not None
    return el.get("id", "")


async def chat(
    h: Harness, sender: str, to: str, body: str = "hello", *, mid: str = "m1", extra: str = ""
) -> None:
    """``sender`` (logged in as resource 'res') sends a chat message to ``to``."""
    session = h.kernel.sessions.get(JID.parse(f"{sender}@{D}/res"))
    assert session is not None
    await h.send(
        session,
        f"<message to='{to}@{D}' type='chat' id='{mid}'><body>{body}</body>{extra}</message>",
    )


async def test_a_message_becomes_records(h: Harness) -> None:
    await h.login("alice")
    _, bob = await h.login("bob")
    await chat(h, "alice", "bob", "vitals stable")
    (got,) = bob.take()
    el = got.find(SID)
    assert el is not None and el.get("by") == f"bob@{D}"
    uid = el.get("id", "")
    (msg,) = await records(h, "MESSAGES", uuid=uid)
    assert msg.get("message") == "vitals stable"
    assert msg.get("state") == "valid"
    assert msg.get("acknowledgeable") == "f"
    assert msg.get("received_at") == msg.get("sent_at") == h.clock.now()
    assert msg.get("from") == await identity_id(h, f"alice@{D}")
    (conv,) = await records(h, "CONVERSATIONS", jid1=f"alice@{D}", jid2=f"bob@{D}")
    assert msg.get("conversation") == conv.id
    assert conv.get("ttl") == 10080 and conv.get("activity_state") == "active"
    (hist,) = await records(h, "CONVERSATION_HISTORY", conversation=conv.id)
    assert hist.get("activity_state") == "active"
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert delivery.get("recipient") == await identity_id(h, f"bob@{D}")
    assert delivery.get("sent_at") == h.clock.now() and delivery.get("received_at") is None
    users = await records(h, "USERS")
    assert sorted(str(u.get("login")) for u in users) == ["alice", "bob"]


async def test_two_way_conversation_is_one_record_and_stanza_ids_are_unique(h: Harness) -> None:
    await h.login("alice")
    _, bob_sink = await h.login("bob")
    await chat(h, "alice", "bob", "one", mid="a1")
    await chat(h, "bob", "alice", "two", mid="b1")
    await chat(h, "alice", "bob", "three", mid="a2")
    convs = await records(h, "CONVERSATIONS")
    assert len(convs) == 1
    msgs = await records(h, "MESSAGES", conversation=convs[0].id)
    assert [m.get("message") for m in msgs] == ["one", "two", "three"]
    assert len({m.get("uuid") for m in msgs}) == 3
    # received_at is strictly increasing even when the clock stands still.
    stamps = [m.get("received_at") for m in msgs]
    assert all(isinstance(t, datetime) for t in stamps)
    assert stamps == sorted(stamps, key=str) and len(set(stamps)) == 3
    assert [sid_of(m) for m in bob_sink.take()] == [msgs[0].get("uuid"), msgs[2].get("uuid")]


async def test_forged_stanza_ids_are_stripped_foreign_kept(h: Harness) -> None:
    await h.login("alice")
    _, bob = await h.login("bob")
    extra = (
        f"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='bob@{D}'/>"
        f"<stanza-id xmlns='urn:xmpp:sid:0' id='forged2' by='{D}'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' id='theirs' by='other.example'/>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='origin-1'/>"
    )
    await chat(h, "alice", "bob", extra=extra)
    (got,) = bob.take()
    ids = [(e.get("id"), e.get("by")) for e in got.findall(SID)]
    assert ("forged", f"bob@{D}") not in ids and ("forged2", D) not in ids
    assert ("theirs", "other.example") in ids
    ours = [i for i, by in ids if by == f"bob@{D}"]
    assert len(ours) == 1 and ours[0] != "forged"
    origin = got.find(f"{{{stanzas.SID}}}origin-id")
    assert origin is not None and origin.get("id") == "origin-1"
    (msg,) = await records(h, "MESSAGES")
    assert msg.get("uuid") == ours[0]
    assert "origin-1" in str(msg.get("elements")) and "forged" not in str(msg.get("elements"))


async def test_what_is_not_tracked(h: Harness) -> None:
    alice, sink = await h.login("alice")
    _, bob = await h.login("bob")
    await h.send(alice, f"<message to='bob@{D}' type='headline'><body>h</body></message>")
    await h.send(
        alice,
        f"<message to='bob@{D}' type='chat'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    await h.send(alice, f"<message to='bob@{D}' type='groupchat'><body>g</body></message>")
    await h.send(
        alice, "<message to='someone@elsewhere.example' type='chat'><body>x</body></message>"
    )
    await h.send(alice, f"<message to='{D}' type='chat'><body>x</body></message>")
    assert all(m.find(SID) is None for m in bob.take())
    assert await records(h, "MESSAGES") == []
    sink.take()


async def test_carewire_element_without_body_is_tracked(h: Harness) -> None:
    await h.login("alice")
    _, bob = await h.login("bob")
    alice = h.kernel.sessions.get(JID.parse(f"alice@{D}/res"))
    assert alice is not None
    await h.send(
        alice, f"<message to='bob@{D}'><alert xmlns='urn:carewire:alert:0' level='2'/></message>"
    )
    (got,) = bob.take()
    (msg,) = await records(h, "MESSAGES", uuid=sid_of(got))
    assert msg.get("message") == "" and "urn:carewire:alert:0" in str(msg.get("elements"))


async def test_sender_delay_stamp_is_sent_at(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    await chat(
        h, "alice", "bob", extra="<delay xmlns='urn:xmpp:delay' stamp='2025-12-31T23:00:00Z'/>"
    )
    (msg,) = await records(h, "MESSAGES")
    sent = msg.get("sent_at")
    assert sent is not None and str(sent).startswith("2025-12-31 23:00:00")
    assert msg.get("received_at") == h.clock.now()


async def test_bad_delay_stamp_falls_back_to_received(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    await chat(h, "alice", "bob", extra="<delay xmlns='urn:xmpp:delay' stamp='yesterday'/>")
    (msg,) = await records(h, "MESSAGES")
    assert msg.get("sent_at") == msg.get("received_at")


async def test_delivery_once_per_recipient_not_per_resource(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob", "phone")
    await h.login("bob", "desk")
    await chat(h, "alice", "bob")
    (msg,) = await records(h, "MESSAGES")
    deliveries = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert len(deliveries) == 1


async def test_offline_storage_counts_as_sent(h: Harness) -> None:
    await h.login("alice")
    await h.account("bob")
    await chat(h, "alice", "bob")
    (msg,) = await records(h, "MESSAGES")
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert delivery.get("sent_at") == h.clock.now()
    # Delivered later from offline storage: still the one delivery, with its first time.
    h.clock.advance(60)
    await h.login("bob")
    (again,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert again.get("sent_at") == delivery.get("sent_at")


async def test_receipt_and_markers_set_delivery_times(h: Harness) -> None:
    await h.login("alice")
    bob, _ = await h.login("bob")
    _, alice_sink = h.kernel.sessions.get(JID.parse(f"alice@{D}/res")), None
    await chat(
        h,
        "alice",
        "bob",
        extra="<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/>",
        mid="x1",
    )
    (msg,) = await records(h, "MESSAGES")
    h.clock.advance(5)
    await h.send(
        bob, f"<message to='alice@{D}/res'><received xmlns='urn:xmpp:receipts' id='x1'/></message>"
    )
    h.clock.advance(5)
    await h.send(
        bob,
        marker("alice", "displayed", "x1"),
    )
    h.clock.advance(5)
    # A second receipt changes nothing: the first time counts.
    await h.send(
        bob,
        f"<message to='alice@{D}'><received xmlns='urn:xmpp:chat-markers:0' id='x1'/></message>",
    )
    (d,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    sent = d.get("sent_at")
    assert isinstance(sent, datetime)
    assert d.get("received_at") == sent + timedelta(seconds=5)
    assert d.get("displayed_at") == sent + timedelta(seconds=10)
    assert d.get("acknowledged") is None
    # The receipts were routed to alice, not swallowed.
    alice = h.kernel.sessions.get(JID.parse(f"alice@{D}/res"))
    assert alice is not None
    got = alice.sink.take()  # type: ignore[attr-defined]
    assert len(got) == 3
    assert alice_sink is None


async def test_markers_by_stanza_id_and_origin_id(h: Harness) -> None:
    await h.login("alice")
    bob, bob_sink = await h.login("bob")
    await chat(h, "alice", "bob", extra="<origin-id xmlns='urn:xmpp:sid:0' id='org-7'/>", mid="c7")
    (got,) = bob_sink.take()
    uid = sid_of(got)
    await h.send(
        bob,
        marker("alice", "received", "org-7"),
    )
    await h.send(
        bob,
        marker("alice", "displayed", uid),
    )
    (d,) = await records(h, "MESSAGE_DELIVERIES")
    assert d.get("received_at") is not None and d.get("displayed_at") is not None


async def test_markers_from_a_non_recipient_are_not_recorded(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    carol, _ = await h.login("carol")
    await chat(h, "alice", "bob", mid="p1")
    (msg,) = await records(h, "MESSAGES")
    uid = str(msg.get("uuid"))
    await h.send(
        carol,
        marker("alice", "displayed", uid),
    )
    await h.send(
        carol, f"<message to='alice@{D}'><received xmlns='urn:xmpp:receipts' id='p1'/></message>"
    )
    (d,) = await records(h, "MESSAGE_DELIVERIES")
    assert d.get("displayed_at") is None and d.get("received_at") is None
    assert len(await records(h, "IDENTITIES", name=f"carol@{D}")) == 0


async def test_marker_for_an_older_message_is_checked_by_the_writer(h: Harness) -> None:
    await h.login("alice")
    bob, _ = await h.login("bob")
    carol, _ = await h.login("carol")
    await chat(h, "alice", "bob")
    (msg,) = await records(h, "MESSAGES")
    uid = str(msg.get("uuid"))
    t = tracker(h)
    t.recent.pop(uid)  # as after a restart
    await h.send(
        carol,
        marker("alice", "displayed", uid),
    )
    await h.send(
        bob,
        marker("alice", "displayed", uid),
    )
    (d,) = await records(h, "MESSAGE_DELIVERIES")
    assert d.get("displayed_at") == h.clock.now()
    assert d.get("recipient") == await identity_id(h, f"bob@{D}")
