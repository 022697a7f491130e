"""Directory groups as addresses on groups.DOMAIN (carewire.features.groups)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.datasets.model import Record
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import SYSTEM_CALLER, Group, Organisation
from carewire.features.groups import GROUP, NOT_A_MEMBER
from carewire.features.tracking import MessageTracker
from carewire.xmpp import ns
from tests.features import directory_setup
from tests.features.directory_setup import Directory, error_text
from tests.features.harness import RecordingSink, error_condition

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

MESSAGE = f"{{{ns.CLIENT}}}message"
BODY = f"{{{ns.CLIENT}}}body"
ADDRESS = "{http://jabber.org/protocol/address}"
NICK = "{http://jabber.org/protocol/nick}nick"
SID = "{urn:xmpp:sid:0}stanza-id"
INFO = f"{{{ns.DISCO_INFO}}}"
ITEMS = f"{{{ns.DISCO_ITEMS}}}"


async def records(d: Directory, dataset: str, **eq: object) -> list[Record]:
    await d.h.kernel.ctx.require(MessageTracker).flush()
    assert d.h.platform is not None
    filters = tuple(Filter(field=k, op=FilterOp.EQ, value=v) for k, v in eq.items())
    page = await d.h.platform.datasets.query(dataset, Query(filters=filters, limit=1000))
    return list(page.records)


async def unit(d: Directory) -> tuple[Organisation, Group]:
    """Abelard's Cardiology: alice, bob, cleo; dan is in Abelard but not in it."""
    org = await d.hospital("Abelard Medical Center")
    cardiology = await d.group(org, "Cardiology")
    for login, first in (("alice", "Alice"), ("bob", "Bob"), ("cleo", "Cleo")):
        await d.user(org, login, first, "Able", groups=[cardiology])
    await d.user(org, "dan", "Dan", "Doe")
    return org, cardiology


def group_jid(d: Directory, group: Group) -> str:
    return f"{group.slug}@groups.{d.domain}"


def to_group(d: Directory, group: Group, body: str, mid: str = "g1") -> str:
    return (
        f"<message to='{group_jid(d, group)}' type='chat' id='{mid}'><body>{body}</body></message>"
    )


def messages(sink: RecordingSink) -> list[Element]:
    """The messages a session received since the last look (presence set aside)."""
    return [s for s in sink.take() if s.tag == MESSAGE]


def bodies(stanzas: list[Element]) -> list[str]:
    return [s.findtext(BODY) or "" for s in stanzas if s.tag == MESSAGE]


async def test_a_members_message_reaches_every_other_member(d: Directory) -> None:
    _, cardiology = await unit(d)
    alice, alice_sink = await d.h.login("alice")
    _, bob_sink = await d.h.login("bob")
    _, dan_sink = await d.h.login("dan")
    await d.h.send(alice, to_group(d, cardiology, "rounds at 9"))
    (got,) = messages(bob_sink)
    assert got.get("type") == "chat"
    assert got.get("from") == group_jid(d, cardiology)
    assert got.get("to") == d.jid("bob")
    assert got.findtext(BODY) == "rounds at 9"
    (address,) = got.iter(f"{ADDRESS}address")
    assert address.get("type") == "ofrom" and address.get("jid") == d.jid("alice")
    assert got.findtext(NICK) == "Alice Able"
    sid = got.find(SID)
    assert sid is not None and sid.get("by") == group_jid(d, cardiology)
    assert messages(alice_sink) == []  # not to the sender
    assert messages(dan_sink) == []  # not a member


async def test_one_message_record_and_one_delivery_per_recipient(d: Directory) -> None:
    _, cardiology = await unit(d)
    alice, _ = await d.h.login("alice")
    _, bob_sink = await d.h.login("bob")
    await d.h.send(alice, to_group(d, cardiology, "lab results in"))  # cleo is offline
    (got,) = messages(bob_sink)
    sid = got.find(SID)
    assert sid is not None
    (msg,) = await records(d, "MESSAGES", uuid=sid.get("id"))
    assert msg.get("message") == "lab results in"
    assert msg.get("nick") == "Alice Able"
    (conv,) = await records(d, "CONVERSATIONS", jid1=group_jid(d, cardiology), jid2=GROUP)
    assert msg.get("conversation") == conv.id
    deliveries = await records(d, "MESSAGE_DELIVERIES", message=msg.id)
    (bob_id,) = await records(d, "IDENTITIES", name=d.jid("bob"))
    (cleo_id,) = await records(d, "IDENTITIES", name=d.jid("cleo"))
    assert sorted(int(str(r.get("recipient"))) for r in deliveries) == sorted(
        [bob_id.id, cleo_id.id]
    )
    assert all(r.get("sent_at") is not None for r in deliveries)
    assert len(await records(d, "MESSAGES")) == 1


async def test_offline_members_get_it_at_their_next_login(d: Directory) -> None:
    _, cardiology = await unit(d)
    alice, _ = await d.h.login("alice")
    await d.h.send(alice, to_group(d, cardiology, "handover"))
    cleo, cleo_sink = await d.h.bind("cleo")
    await d.h.send(cleo, "<presence/>")
    stored = [s for s in cleo_sink.take() if s.tag == MESSAGE]
    assert bodies(stored) == ["handover"]
    assert stored[0].get("from") == group_jid(d, cardiology)
    assert stored[0].find(f"{{{ns.DELAY}}}delay") is not None


async def test_a_non_member_is_refused(d: Directory) -> None:
    _, cardiology = await unit(d)
    _, bob_sink = await d.h.login("bob")
    reply = await d.reply("dan", to_group(d, cardiology, "hello?"))
    assert error_condition(reply) == "forbidden"
    assert error_text(reply) == NOT_A_MEMBER
    assert messages(bob_sink) == []


async def test_whole_group_messaging_lets_the_organisation_in(d: Directory) -> None:
    _, cardiology = await unit(d)
    await d.svc.groups.update(SYSTEM_CALLER, cardiology.id, whole_group_messaging=True)
    _, bob_sink = await d.h.login("bob")
    dan, dan_sink = await d.h.login("dan")
    await d.h.send(dan, to_group(d, cardiology, "for the whole unit"))
    assert bodies(bob_sink.take()) == ["for the whole unit"]
    assert messages(dan_sink) == []


async def test_another_organisations_user_is_refused(d: Directory) -> None:
    _, cardiology = await unit(d)
    await d.svc.groups.update(SYSTEM_CALLER, cardiology.id, whole_group_messaging=True)
    bellwood = await d.hospital("Bellwood Hospital")
    await d.user(bellwood, "bea", "Bea", "Bell")
    reply = await d.reply("bea", to_group(d, cardiology, "hi"))
    assert error_condition(reply) == "forbidden"
    assert error_text(reply) == "You may not message users of Abelard Medical Center"
    legacy = await d.reply("legacy", to_group(d, cardiology, "hi"))
    assert error_condition(legacy) == "forbidden"


async def test_an_unknown_group_is_not_found(d: Directory) -> None:
    await unit(d)
    reply = await d.reply(
        "alice", f"<message to='nobody@groups.{d.domain}' type='chat'><body>x</body></message>"
    )
    assert error_condition(reply) == "item-not-found"


async def test_membership_changes_apply_to_the_next_message(d: Directory) -> None:
    _, cardiology = await unit(d)
    alice, _ = await d.h.login("alice")
    _, dan_sink = await d.h.login("dan")
    _, bob_sink = await d.h.login("bob")
    await d.add(cardiology, "dan")
    await d.h.send(alice, to_group(d, cardiology, "welcome dan", "g1"))
    assert bodies(dan_sink.take()) == ["welcome dan"]
    await d.remove(cardiology, "bob")
    await d.h.send(alice, to_group(d, cardiology, "bob left", "g2"))
    assert "bob left" not in bodies(bob_sink.take())


async def test_receipts_and_chat_states_go_no_further(d: Directory) -> None:
    _, cardiology = await unit(d)
    alice, alice_sink = await d.h.login("alice")
    _, bob_sink = await d.h.login("bob")
    await d.h.send(
        alice,
        f"<message to='{group_jid(d, cardiology)}' type='chat'>"
        "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    assert messages(bob_sink) == [] and messages(alice_sink) == []


async def test_service_discovery(d: Directory) -> None:
    org, cardiology = await unit(d)
    await d.group(org, "Night Shift")  # dan may not message it: not a member, not for everyone
    await d.group(org, "Everyone", everyone=True)
    service = f"groups.{d.domain}"
    info = await d.reply(
        "dan", f"<iq type='get' id='i' to='{service}'><query xmlns='{INFO[1:-1]}'/></iq>"
    )
    identity = info.find(f"{INFO}query/{INFO}identity")
    assert identity is not None and identity.get("category") == "directory"
    features = {f.get("var") for f in info.iter(f"{INFO}feature")}
    assert ns.DISCO_ITEMS in features
    assert "http://jabber.org/protocol/address" not in features  # not a multicast service
    items = await d.reply(
        "alice", f"<iq type='get' id='l' to='{service}'><query xmlns='{ITEMS[1:-1]}'/></iq>"
    )
    listed = [(i.get("jid"), i.get("name")) for i in items.iter(f"{ITEMS}item")]
    assert listed == [
        (group_jid(d, cardiology), "Cardiology"),
        (f"everyone@{service}", "Everyone"),
    ]
    group = group_jid(d, cardiology)
    members = await d.reply(
        "dan", f"<iq type='get' id='m' to='{group}'><query xmlns='{ITEMS[1:-1]}'/></iq>"
    )
    assert [i.get("jid") for i in members.iter(f"{ITEMS}item")] == [
        d.jid("alice"),
        d.jid("bob"),
        d.jid("cleo"),
    ]
    bellwood = await d.hospital("Bellwood Hospital")
    await d.user(bellwood, "bea", "Bea", "Bell")
    hidden = await d.reply(
        "bea",
        f"<iq type='get' id='h' to='{group_jid(d, cardiology)}'><query xmlns='{INFO[1:-1]}'/></iq>",
    )
    assert error_condition(hidden) == "item-not-found"
    server = await d.reply(
        "bea", f"<iq type='get' id='s' to='{d.domain}'><query xmlns='{ITEMS[1:-1]}'/></iq>"
    )
    assert service in {i.get("jid") for i in server.iter(f"{ITEMS}item")}
