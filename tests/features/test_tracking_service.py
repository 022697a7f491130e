"""Message tracking: rooms, expiry, the MessageTracker service, the batching writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.core import hook_names as H
from carewire.core.events import RoomEvent, RoomMessageEvent
from carewire.datasets.query import Query
from carewire.errors import ConfigError, NotFoundError, ValidationError
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp.jid import JID
from tests.features.harness import Harness, make_harness, x
from tests.features.test_tracking import (
    FEATURES,
    SID,
    chat,
    datasets,
    identity_id,
    records,
    sid_of,
    tracker,
)

D = "example.test"
ROOM = f"ward3@chat.{D}"
EXPIRED = f"{{{stanzas.CONVERSATION}}}expired"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


def room_event(subject: str = "Ward 3", members: tuple[str, ...] = ("alice", "bob")) -> RoomEvent:
    return RoomEvent(
        room=JID.parse(ROOM),
        subject=subject,
        members=frozenset(f"{m}@{D}" for m in members),
        is_persistent=True,
    )


async def groupchat(h: Harness, body: str, *, sender: str = "alice", nick: str = "Alice") -> str:
    stanza = x(
        f"<message from='{ROOM}/{nick}' type='groupchat' id='g1'><body>{body}</body></message>"
    )
    event = RoomMessageEvent(
        room=JID.parse(ROOM),
        stanza=stanza,
        sender=JID.parse(f"{sender}@{D}/res"),
        nick=nick,
        recipients=frozenset({f"alice@{D}", f"bob@{D}"}),
        members=frozenset({f"alice@{D}", f"bob@{D}"}),
    )
    await h.kernel.hooks.fire(H.MUC_GROUPCHAT, event)
    el = stanza.find(SID)
    assert el is not None and el.get("by") == ROOM
    bob = h.kernel.sessions.get(JID.parse(f"bob@{D}/res"))
    if bob is not None:
        h.kernel.router.deliver(bob, stanza)
    return el.get("id", "")


async def test_room_conversation_and_groupchat_messages(h: Harness) -> None:
    await h.login("alice")
    bob, _ = await h.login("bob")
    await h.kernel.hooks.fire(H.MUC_ROOM_CHANGED, room_event())
    uid = await groupchat(h, "rounds at 9")
    (conv,) = await records(h, "CONVERSATIONS", jid1=ROOM, jid2="ROOM")
    assert conv.get("topic") == "Ward 3" and conv.get("activity_state") == "active"
    (msg,) = await records(h, "MESSAGES", uuid=uid)
    assert msg.get("conversation") == conv.id and msg.get("nick") == "Alice"
    assert msg.get("from") == await identity_id(h, f"alice@{D}")
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert delivery.get("recipient") == await identity_id(h, f"bob@{D}")
    # A marker into the room references the stanza id.
    await h.send(
        bob,
        f"<message to='{ROOM}' type='groupchat'>"
        f"<displayed xmlns='urn:xmpp:chat-markers:0' id='{uid}'/></message>",
    )
    (delivery,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id)
    assert delivery.get("displayed_at") == h.clock.now()
    # The subject changes; then the room is destroyed.
    await h.kernel.hooks.fire(H.MUC_ROOM_CHANGED, room_event("Ward 3 night", ("alice",)))
    (conv,) = await records(h, "CONVERSATIONS", jid1=ROOM)
    assert conv.get("topic") == "Ward 3 night"
    await h.kernel.hooks.fire(H.MUC_ROOM_DESTROYED, room_event())
    (conv,) = await records(h, "CONVERSATIONS", jid1=ROOM)
    assert conv.get("activity_state") == "closed"
    states = [r.get("activity_state") for r in await records(h, "CONVERSATION_HISTORY")]
    assert states == ["active", "closed"]


async def test_groupchat_without_content_is_not_recorded(h: Harness) -> None:
    stanza = x(f"<message from='{ROOM}/a' type='groupchat'><subject>s</subject></message>")
    event = RoomMessageEvent(
        room=JID.parse(ROOM),
        stanza=stanza,
        sender=None,
        nick="",
        recipients=frozenset(),
        members=frozenset(),
    )
    await h.kernel.hooks.fire(H.MUC_GROUPCHAT, event)
    assert stanza.find(SID) is None
    assert await records(h, "MESSAGES") == []


async def test_expiry_after_ttl_from_the_last_message(h: Harness) -> None:
    _, alice = await h.login("alice")
    _, bob = await h.login("bob")
    t = tracker(h)
    await t.ensure_conversation(f"bob@{D}", f"alice@{D}", ttl=60)
    await chat(h, "alice", "bob", "first")
    h.clock.advance(50 * 60)
    await chat(h, "bob", "alice", "second")
    alice.take()
    bob.take()
    h.clock.advance(50 * 60)  # 100 minutes after the first, 50 after the last
    await t.expire_due()
    (conv,) = await records(h, "CONVERSATIONS")
    assert conv.get("activity_state") == "active"
    h.clock.advance(10 * 60)
    await t.expire_due()
    (conv,) = await records(h, "CONVERSATIONS")
    assert conv.get("activity_state") == "expired"
    assert {m.get("state") for m in await records(h, "MESSAGES")} == {"expired"}
    for sink in (alice, bob):
        (notice,) = sink.take()
        assert notice.get("type") == "headline" and notice.get("from") == D
        el = notice.find(EXPIRED)
        assert el is not None
        assert (el.get("jid1"), el.get("jid2")) == (f"alice@{D}", f"bob@{D}")
    # A new message brings the conversation back; the old messages stay expired.
    await chat(h, "alice", "bob", "third")
    (conv,) = await records(h, "CONVERSATIONS")
    assert conv.get("activity_state") == "active"
    states = [r.get("activity_state") for r in await records(h, "CONVERSATION_HISTORY")]
    assert states == ["active", "expired", "active"]
    assert [m.get("state") for m in await records(h, "MESSAGES")] == ["expired", "expired", "valid"]


async def test_expiry_of_a_conversation_never_seen_counts_from_first_sight(h: Harness) -> None:
    t = tracker(h)
    await t.ensure_conversation(f"alice@{D}", f"bob@{D}", ttl=1)
    t.last_activity.clear()  # as after a restart: no message, no known activity
    await t.expire_due()
    h.clock.advance(61)
    await t.expire_due()
    (conv,) = await records(h, "CONVERSATIONS")
    assert conv.get("activity_state") == "expired"


async def test_expire_conversation_action(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    await chat(h, "alice", "bob")
    t = tracker(h)
    assert await t.expire_conversation(f"bob@{D}|alice@{D}/phone") is True
    (conv,) = await records(h, "CONVERSATIONS")
    assert conv.get("activity_state") == "expired"
    assert await t.expire_conversation(f"alice@{D}|carol@{D}") is False
    assert await t.expire_conversation(f"nosuch@chat.{D}") is False
    for bad in ("not a jid@@", f"alice@{D}", "@|x"):
        with pytest.raises(ValidationError):
            await t.expire_conversation(bad)


async def test_leave_conversation_action(h: Harness) -> None:
    await h.kernel.hooks.fire(H.MUC_ROOM_CHANGED, room_event(members=("alice", "bob", "carol")))
    t = tracker(h)
    await t.leave_conversation(ROOM, [f"carol@{D}/phone"])
    (conv,) = await records(h, "CONVERSATIONS", jid1=ROOM)
    ds = datasets(h)
    link = ds.registry.get("CONVERSATIONS").link("members")
    assert link is not None
    member_ids = (await ds.store.follow(ds.registry.get("CONVERSATIONS"), link, [conv.id]))[conv.id]
    logins = sorted(
        str(u.get("login"))
        for u in (await ds.store.get_many(ds.registry.get("USERS"), member_ids)).values()
    )
    assert logins == ["alice", "bob"]
    rows = await records(h, "CONVERSATION_HISTORY", conversation=conv.id)
    assert [(r.get("activity_state"), r.get("member")) for r in rows][-1] == (
        "inactive",
        await identity_id(h, f"carol@{D}"),
    )
    assert not t.is_room_participant(ROOM, f"carol@{D}")
    with pytest.raises(NotFoundError):
        await t.leave_conversation(f"other@chat.{D}", [f"alice@{D}"])
    with pytest.raises(ValidationError):
        await t.leave_conversation(ROOM, ["@@bad"])


async def test_ensure_conversation_record_message_and_message_id(h: Harness) -> None:
    t = tracker(h)
    await t.ensure_conversation(ROOM, "ROOM", ttl=30, topic="Code blue", members=[f"alice@{D}"])
    (conv,) = await records(h, "CONVERSATIONS", jid1=ROOM)
    assert (conv.get("ttl"), conv.get("topic")) == (30, "Code blue")
    with pytest.raises(ValidationError):
        await t.ensure_conversation(f"alice@{D}", f"bob@{D}", ttl=0)
    stanza = x(f"<message type='groupchat' from='{ROOM}'><body>system notice</body></message>")
    uid = t.stamp(stanza, JID.parse(f"{ROOM}/nick"))
    assert sid_of(stanza) == uid
    await t.record_message(
        conversation=(ROOM, "ROOM"),
        sender=f"alice@{D}",
        recipients=[f"bob@{D}"],
        stanza=stanza,
        uuid=uid,
        system=True,
        acknowledgeable=True,
    )
    rid = await t.message_id(uid)
    assert rid is not None
    msg = await datasets(h).get("MESSAGES", rid)
    assert msg.get("from") is None and msg.get("acknowledgeable") == "t"
    assert msg.get("conversation") == conv.id
    assert await t.message_id("nope") is None


async def test_durability_barrier_commits_queued_writes(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    t = tracker(h)
    await t.writer.stop()  # no background commits: only the barrier can commit
    await chat(h, "alice", "bob")
    assert len(t.writer) > 0
    assert (await datasets(h).query("MESSAGES", _all())).total == 0
    await h.kernel.ctx.durability.flush()
    assert len(t.writer) == 0
    assert (await datasets(h).query("MESSAGES", _all())).total == 1


async def test_writer_task_commits_without_a_flush(h: Harness) -> None:
    await h.login("alice")
    await h.login("bob")
    await chat(h, "alice", "bob")
    for _ in range(100):
        if (await datasets(h).query("MESSAGES", _all())).total:
            break
        await asyncio.sleep(0.02)
    assert (await datasets(h).query("MESSAGES", _all())).total == 1


async def test_a_failing_batch_keeps_the_other_writes(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    t = tracker(h)
    await t.writer.stop()
    stanza = x("<message type='chat'><body>secret patient detail</body></message>")
    for uid in ("u-1", "u-dup", "u-dup", "u-2"):
        await t.record_message(
            conversation=(f"zed@{D}", f"amy@{D}"),
            sender=f"amy@{D}",
            recipients=[f"zed@{D}"],
            stanza=stanza,
            uuid=uid,
        )
    with caplog.at_level(logging.INFO):
        await t.flush()
    assert t.writer.dropped == 1
    msgs = await records(h, "MESSAGES")
    assert [m.get("uuid") for m in msgs] == ["u-1", "u-dup", "u-2"]
    (conv,) = await records(h, "CONVERSATIONS")
    assert {m.get("conversation") for m in msgs} == {conv.id}
    assert "secret" not in caplog.text and "patient" not in caplog.text
    assert "dropped" in caplog.text


async def test_many_messages_are_committed_in_batches(h: Harness) -> None:
    t = tracker(h)
    stanza = x("<message type='chat'><body>x</body></message>")
    for i in range(450):
        await t.record_message(
            conversation=(f"a@{D}", f"b@{D}"),
            sender=f"a@{D}",
            recipients=[f"b@{D}"],
            stanza=stanza,
            uuid=f"n-{i}",
        )
    await t.flush()
    assert (await datasets(h).query("MESSAGES", _all())).total == 450
    assert t.writer.committed >= 450


async def test_without_the_platform_tracking_refuses_to_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature 'tracking' needs DatasetService"):
        await make_harness(tmp_path / "refused", features=FEATURES)


async def test_a_kernel_without_tracking_routes_untracked(tmp_path: Path) -> None:
    plain = await make_harness(tmp_path, features=[f for f in FEATURES if f != "tracking"])
    try:
        assert plain.kernel.ctx.find(MessageTracker) is None
        assert "urn:xmpp:sid:0" not in plain.kernel.disco.server_features
        await plain.login("alice")
        _, bob = await plain.login("bob")
        alice = plain.kernel.sessions.get(JID.parse(f"alice@{D}/res"))
        assert alice is not None
        await plain.send(alice, f"<message to='bob@{D}' type='chat'><body>x</body></message>")
        (got,) = bob.take()
        assert got.find(SID) is None
    finally:
        await plain.close()


def _all() -> Query:
    return Query(limit=1)
