"""Message expiration (carewire.features.expiry) on the whole assembly, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from xml.etree.ElementTree import Element

from carewire.datasets.query import Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    MessageExpiration,
    Organisation,
    OrganisationUpdate,
)
from carewire.features.expiry import Expirer, OrganisationLifetimes
from carewire.features.tracking import MessageTracker
from carewire.features.tracking.stanzas import EXPIRY, parse_datetime
from carewire.xmpp import ns
from tests.features import directory_setup
from tests.features.directory_setup import Directory
from tests.features.harness import RecordingSink
from tests.features.test_mam import bodies, mam
from tests.features.test_muc_helpers import CHAT, join, make_room, messages

directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

MSG = f"{{{ns.CLIENT}}}message"
RETRACT = f"{{{ns.RETRACT}}}retract"


async def set_expiration(d: Directory, org: Organisation, value: MessageExpiration) -> None:
    settings = replace(org.settings, message_expiration=value)
    await d.svc.organisations.update(SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings))
    await d.h.kernel.ctx.require(OrganisationLifetimes).refresh()


async def two_orgs(d: Directory) -> tuple[Organisation, Organisation]:
    """Abelard (alice; 30 minutes) and Bellwood (bob; the default 7 days), affiliated."""
    abelard = await d.hospital("Abelard Medical Center")
    bellwood = await d.practice(abelard, "Bellwood Practice")
    await d.user(abelard, "alice", "Alice", "Able")
    await d.user(bellwood, "bob", "Bob", "Brown")
    await set_expiration(d, abelard, MessageExpiration.MINUTES_30)
    return abelard, bellwood


def expirer(d: Directory) -> Expirer:
    return d.h.kernel.ctx.require(Expirer)


async def states(d: Directory) -> dict[str, str]:
    """Each MESSAGES record's state, by body."""
    await d.h.kernel.ctx.require(MessageTracker).flush()
    assert d.h.platform is not None
    page = await d.h.platform.datasets.query("MESSAGES", Query(limit=100))
    return {str(r.get("message")): str(r.get("state")) for r in page.records}


def retractions(sink: RecordingSink) -> list[Element]:
    out = []
    for m in sink.take():
        if m.tag == MSG and m.find(f".//{RETRACT}") is not None:
            out.append(m)
    return out


async def test_the_senders_organisation_sets_each_messages_expiry(d: Directory) -> None:
    await two_orgs(d)
    alice, alice_sink = await d.h.login("alice")
    bob, bob_sink = await d.h.login("bob")
    sent_at = d.h.clock.now()
    await d.h.send(
        alice,
        f"<message to='bob@{d.domain}' type='chat' id='m1'><body>from alice</body>"
        "<origin-id xmlns='urn:xmpp:sid:0' id='orig-1'/></message>",
    )
    await d.h.send(
        bob, f"<message to='alice@{d.domain}' type='chat'><body>from bob</body></message>"
    )
    got = [m for m in bob_sink.take() if m.findtext(f"{{{ns.CLIENT}}}body") == "from alice"]
    hint = got[0].find(f"{{{EXPIRY}}}expires")
    assert hint is not None
    at = parse_datetime(hint.get("at", ""))
    assert at is not None and timedelta(minutes=29) < at - sent_at <= timedelta(minutes=30)
    alice_sink.take()

    d.h.clock.advance(29 * 60)
    assert (await expirer(d).expire_due()).messages == 0
    d.h.clock.advance(2 * 60)
    counts = await expirer(d).expire_due()
    assert counts.messages == 1
    assert await states(d) == {"from alice": "expired", "from bob": "valid"}
    # The recipient is told in the sender's name, by the id the sender gave it.
    (told,) = retractions(bob_sink)
    assert told.get("from") == f"alice@{d.domain}" and told.get("type") == "chat"
    retract = told.find(RETRACT)
    assert retract is not None and retract.get("id") == "orig-1"
    # The sender's own devices get a "sent" carbon of it.
    (own,) = retractions(alice_sink)
    inner = own.find(f"{{{ns.CARBONS}}}sent/{{{ns.FORWARD}}}forwarded/{MSG}")
    assert inner is not None and inner.get("to") == f"bob@{d.domain}"
    # Gone from the archive on both sides; the other message stays.
    results, _ = await mam(d.h, bob)
    assert bodies(results) == ["from bob"]
    results, _ = await mam(d.h, alice)
    assert bodies(results) == ["from bob"]
    # Nothing is left to expire early; the 7-day message expires on its day.
    d.h.clock.advance(7 * 86400)
    assert (await expirer(d).expire_due()).messages == 1
    assert await states(d) == {"from alice": "expired", "from bob": "expired"}


async def test_messages_expire_one_by_one_in_order(d: Directory) -> None:
    await two_orgs(d)
    alice, _ = await d.h.login("alice")
    bob, bob_sink = await d.h.login("bob")
    for n in range(3):
        await d.h.send(
            alice, f"<message to='bob@{d.domain}' type='chat' id='m{n}'><body>m{n}</body></message>"
        )
        d.h.clock.advance(10 * 60)
    bob_sink.take()
    # 30 minutes after the first: only it; 10 minutes later the second.
    assert (await expirer(d).expire_due()).messages == 1
    assert [r.find(RETRACT).get("id") for r in retractions(bob_sink)] == ["m0"]  # type: ignore[union-attr]
    assert await states(d) == {"m0": "expired", "m1": "valid", "m2": "valid"}
    d.h.clock.advance(10 * 60)
    assert (await expirer(d).expire_due()).messages == 1
    results, _ = await mam(d.h, bob)
    assert bodies(results) == ["m2"]
    assert await d.h.kernel.ctx.stores.expiry.next_at() is not None


async def test_a_later_setting_change_does_not_move_messages_already_sent(d: Directory) -> None:
    abelard, _ = await two_orgs(d)
    alice, _ = await d.h.login("alice")
    await d.h.login("bob")
    await d.h.send(alice, f"<message to='bob@{d.domain}' type='chat'><body>early</body></message>")
    await set_expiration(d, abelard, MessageExpiration.DAYS_30)
    await d.h.send(alice, f"<message to='bob@{d.domain}' type='chat'><body>late</body></message>")
    d.h.clock.advance(31 * 60)
    await expirer(d).expire_due()
    assert await states(d) == {"early": "expired", "late": "valid"}


async def test_an_offline_recipient_loses_the_copy_and_gets_the_retraction(d: Directory) -> None:
    await two_orgs(d)
    alice, _ = await d.h.login("alice")
    await d.h.send(
        alice, f"<message to='bob@{d.domain}' type='chat' id='x1'><body>secret</body></message>"
    )
    await d.settle()
    offline = d.h.kernel.ctx.stores.offline
    assert await offline.count("bob") == 1
    d.h.clock.advance(31 * 60)
    counts = await expirer(d).expire_due()
    assert counts.offline == 1
    # What is left for bob is the retraction, not the message.
    stored = await offline.fetch("bob", now=d.h.clock.now())
    assert len(stored) == 1
    assert "secret" not in stored[0].stanza and "urn:xmpp:message-retract:1" in stored[0].stanza
    _, bob_sink = await d.h.login("bob")
    assert [m for m in bob_sink.sent if m.find(RETRACT) is not None] == []  # login() took them
    # The metadata stays: the MESSAGES record with its delivery.
    assert await states(d) == {"secret": "expired"}


async def test_room_messages_leave_the_history_and_occupants_are_told(d: Directory) -> None:
    await two_orgs(d)
    alice, alice_sink = await make_room(d.h, "alice", "ward3")
    bob, bob_sink = await d.h.login("bob")
    await join(d.h, bob, "ward3", "bob")
    await d.h.send(
        alice, f"<message to='ward3@{CHAT}' type='groupchat'><body>rounds</body></message>"
    )
    d.h.clock.advance(20 * 60)
    await d.h.send(bob, f"<message to='ward3@{CHAT}' type='groupchat'><body>bed 4</body></message>")
    alice_sink.take()
    bob_sink.take()
    d.h.clock.advance(11 * 60)
    counts = await expirer(d).expire_due()
    assert counts.messages == 1 and counts.room_history == 1
    told = retractions(bob_sink)
    assert len(told) == 1 and told[0].get("from") == f"ward3@{CHAT}"
    moderated = told[0].find(f"{RETRACT}/{{{ns.MODERATE}}}moderated")
    assert moderated is not None
    # A new occupant is replayed only what has not expired.
    carol, carol_sink = await d.h.login("carol")
    await join(d.h, carol, "ward3", "carol")
    replayed = [m.findtext(f"{{{ns.CLIENT}}}body") for m in messages(carol_sink.take())]
    assert "rounds" not in replayed and "bed 4" in replayed
