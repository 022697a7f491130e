"""Tracking and archiving of federated conversations (carewire.features.tracking.remote).

MESSAGE_DELIVERIES rows for recipients on another domain (sent when handed to
the remote router, received/displayed from their receipts and markers, failed
on a bounce), messages from another domain recorded on arrival, and both
directions in the archive (XEP-0313).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.datasets.model import Record
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp import ns
from tests.features.federation_double import REMOTE, RecordingRemote, attach, inject, settle
from tests.features.harness import Harness, make_harness

D = "example.test"
ALICE = f"alice@{D}"
BOB = f"bob@{REMOTE}"
SID = f"{{{stanzas.SID}}}stanza-id"
FEATURES = ["message", "offline", "roster", "presence", "tracking", "mam", "federation"]
MAM = "urn:xmpp:mam:2"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, with_platform=True)
    yield harness
    await harness.close()


@pytest.fixture
def remote(h: Harness) -> RecordingRemote:
    return attach(h)


async def records(h: Harness, dataset: str, **eq: object) -> list[Record]:
    await h.kernel.ctx.require(MessageTracker).flush()
    assert h.platform is not None
    filters = tuple(Filter(field=k, op=FilterOp.EQ, value=v) for k, v in eq.items())
    page = await h.platform.datasets.query(dataset, Query(filters=filters, limit=1000))
    return list(page.records)


async def delivery_to(h: Harness, uid: str, jid: str) -> Record:
    (msg,) = await records(h, "MESSAGES", uuid=uid)
    (who,) = await records(h, "IDENTITIES", name=jid)
    (row,) = await records(h, "MESSAGE_DELIVERIES", message=msg.id, recipient=who.id)
    return row


async def send_to_bob(h: Harness, remote: RecordingRemote, mid: str = "m1") -> str:
    """alice/res sends bob@remote.test a chat message asking for a receipt; its stanza id."""
    (alice,) = h.kernel.sessions.of_user("alice")
    await h.send(
        alice,
        f"<message to='{BOB}' type='chat' id='{mid}'><body>bed 12 ready</body>"
        "<request xmlns='urn:xmpp:receipts'/><markable xmlns='urn:xmpp:chat-markers:0'/></message>",
    )
    await settle()
    sent = [s for s in remote.take() if s.get("id") == mid]
    if not sent:
        (msg,) = await records(h, "MESSAGES")
        return str(msg.get("uuid"))
    (out,) = sent
    ids = [(e.get("id"), e.get("by")) for e in out.findall(SID)]
    # XEP-0359: "For one-on-one messages the assigning entity is the account" (the sender's).
    ((uid, by),) = ids
    assert by == ALICE and uid is not None
    return uid


async def test_a_message_to_a_remote_user_is_tracked(h: Harness, remote: RecordingRemote) -> None:
    await h.login("alice")
    uid = await send_to_bob(h, remote)
    (msg,) = await records(h, "MESSAGES", uuid=uid)
    assert msg.get("message") == "bed 12 ready"
    (conv,) = await records(h, "CONVERSATIONS", jid1=ALICE, jid2=BOB)
    assert msg.get("conversation") == conv.id
    row = await delivery_to(h, uid, BOB)
    assert row.get("sent_at") == h.clock.now() and row.get("received_at") is None
    (bob,) = await records(h, "IDENTITIES", name=BOB)
    assert bob.get("usr") is None  # not a user of ours
    # The remote client's receipt and displayed marker come back through federation.
    await inject(
        h,
        f"<message from='{BOB}/phone' to='{ALICE}/res' id='r1'>"
        "<received xmlns='urn:xmpp:receipts' id='m1'/></message>",
    )
    await inject(
        h,
        f"<message from='{BOB}/phone' to='{ALICE}' type='chat' id='r2'>"
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>",
    )
    row = await delivery_to(h, uid, BOB)
    assert row.get("received_at") is not None and row.get("displayed_at") is not None
    assert row.get("failed_at") is None


async def test_a_message_from_a_remote_user_is_tracked_and_archived(
    h: Harness, remote: RecordingRemote
) -> None:
    _, sink = await h.login("alice")
    await send_to_bob(h, remote)
    forged = f"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='{ALICE}'/>"
    theirs = f"<stanza-id xmlns='urn:xmpp:sid:0' id='theirs' by='{BOB}'/>"
    await inject(
        h,
        f"<message from='{BOB}/phone' to='{ALICE}' type='chat' id='b1'>"
        f"<body>on my way</body>{theirs}{forged}</message>",
    )
    (got,) = sink.take()
    ids = [(e.get("id"), e.get("by")) for e in got.findall(SID)]
    assert ("forged", ALICE) not in ids and ("theirs", BOB) in ids
    ours = [i for i, by in ids if by == ALICE]
    assert len(ours) == 1
    row = await delivery_to(h, str(ours[0]), ALICE)
    assert row.get("sent_at") is not None
    # alice's receipt for it is recorded too.
    (alice,) = h.kernel.sessions.of_user("alice")
    await h.send(
        alice, f"<message to='{BOB}/phone'><received xmlns='urn:xmpp:receipts' id='b1'/></message>"
    )
    assert (await delivery_to(h, str(ours[0]), ALICE)).get("received_at") is not None
    # Both directions are in alice's archive, with bob@remote.test.
    sink.take()
    form = (
        f"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{MAM}</value>"
        f"</field><field var='with'><value>{BOB}</value></field></x>"
    )
    await h.send(
        alice, f"<iq type='set' id='q'><query xmlns='{MAM}' queryid='f'>{form}</query></iq>"
    )
    got_all = sink.take()
    fwd = "{urn:xmpp:forward:0}forwarded"
    bodies = [
        m.findtext(f"{{{MAM}}}result/{fwd}/{{{ns.CLIENT}}}message/{{{ns.CLIENT}}}body")
        for m in got_all[:-1]
    ]
    assert bodies == ["bed 12 ready", "on my way"]
    assert got_all[-1].get("type") == "result"


async def test_a_bounce_from_the_remote_side_is_a_failed_delivery(
    h: Harness, remote: RecordingRemote
) -> None:
    await h.login("alice")
    uid = await send_to_bob(h, remote)
    await inject(
        h,
        f"<message type='error' from='{BOB}' to='{ALICE}/res' id='m1'>"
        "<body>bed 12 ready</body><error type='wait'>"
        "<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    )
    row = await delivery_to(h, uid, BOB)
    assert row.get("failed_at") is not None and row.get("failure") == "remote-server-timeout"


async def test_a_domain_refused_at_once_is_a_failed_delivery(
    h: Harness, remote: RecordingRemote
) -> None:
    remote.refused.add(REMOTE)
    _, sink = await h.login("alice")
    uid = await send_to_bob(h, remote)
    row = await delivery_to(h, uid, BOB)
    assert row.get("failure") == "remote-server-not-found" and row.get("failed_at") is not None
    assert [s.get("type") for s in sink.take()] == ["error"]


async def test_an_error_for_an_unknown_message_changes_nothing(
    h: Harness, remote: RecordingRemote
) -> None:
    await h.login("alice")
    await inject(
        h,
        f"<message type='error' from='{BOB}' to='{ALICE}/res' id='nope'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></message>",
    )
    assert await records(h, "MESSAGE_DELIVERIES") == []
