"""XEP-0163 PEP with XEP-0223 persistence (carewire.features.pep): publish, read, notify, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.feature import FeatureConfig
from carewire.core.sessions import Session
from carewire.features.pep.model import PUBSUB, PUBSUB_OWNER
from carewire.features.pep.notify import notify_set
from carewire.xmpp import ns
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness
from tests.features.pep_helpers import (
    EVENT,
    app_error,
    caps_presence,
    events,
    items_query,
    notify,
    online,
    publish,
    settle,
)
from tests.features.test_presence import befriend

FEATURES = ["roster", "presence", "disco", "vcard", "private", "pep"]
GEO = "http://jabber.org/protocol/geoloc"
TUNE = "http://jabber.org/protocol/tune"
P = f"{{{PUBSUB}}}"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    config = FeatureConfig(pep_item_max_bytes=200, pep_avatar_max_bytes=400, pep_max_items=5)
    harness = await make_harness(tmp_path, features=FEATURES, config=config)
    yield harness
    await harness.close()


def owner_iq(kind: str, inner: str) -> str:
    return f"<iq type='{kind}' id='o'><pubsub xmlns='{PUBSUB_OWNER}'>{inner}</pubsub></iq>"


def item_ids(reply: Element) -> list[str | None]:
    return [i.get("id") for i in reply.findall(f"{P}pubsub/{P}items/{P}item")]


def geo(text: str) -> str:
    return f"<geoloc xmlns='{GEO}'><text>{text}</text></geoloc>"


async def test_account_disco_says_pep(h: Harness) -> None:
    reply = await h.ask(
        "ana", f"<iq type='get' id='d' to='ana@{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    query = reply.find(f"{{{ns.DISCO_INFO}}}query")
    assert query is not None
    identities = {
        (i.get("category"), i.get("type")) for i in query.findall(f"{{{ns.DISCO_INFO}}}identity")
    }
    assert ("pubsub", "pep") in identities and ("account", "registered") in identities
    features = {f.get("var") for f in query.findall(f"{{{ns.DISCO_INFO}}}feature")}
    for var in (
        f"{PUBSUB}#publish",
        f"{PUBSUB}#publish-options",
        f"{PUBSUB}#auto-create",
        f"{PUBSUB}#persistent-items",
        f"{PUBSUB}#last-published",
        f"{PUBSUB}#access-presence",
        f"{PUBSUB}#filtered-notifications",
        f"{PUBSUB}#retract-items",
        f"{PUBSUB}#delete-items",
        f"{PUBSUB}#config-node-max",
        f"{PUBSUB}#item-ids",
        "urn:xmpp:bookmarks:1#compat",
        "urn:xmpp:bookmarks:1#compat-pep",
        "urn:xmpp:bookmarks-conversion:0",
        "urn:xmpp:pep-vcard-conversion:0",
    ):
        assert var in features, var


async def test_publish_auto_creates_and_items_are_read_back(h: Harness) -> None:
    reply = await h.ask("ana", publish(GEO, geo("ward 4"), "g1"))
    assert reply.get("type") == "result"
    published = reply.find(f"{P}pubsub/{P}publish/{P}item")
    assert published is not None and published.get("id") == "g1"
    # No id: the service makes one and says which.
    reply = await h.ask("ana", publish(GEO, geo("ward 5")))
    generated = reply.find(f"{P}pubsub/{P}publish/{P}item")
    assert generated is not None and generated.get("id")
    reply = await h.ask("ana", items_query(GEO))
    items = reply.findall(f"{P}pubsub/{P}items/{P}item")
    # The default node keeps one item (max_items 1).
    assert [i.get("id") for i in items] == [generated.get("id")]
    assert items[0].findtext(f"{{{GEO}}}geoloc/{{{GEO}}}text") == "ward 5"


async def test_max_items_and_item_ids(h: Harness) -> None:
    options = {"pubsub#max_items": "3", "pubsub#access_model": "open"}
    for n in range(4):
        assert (
            await h.ask(
                "ana",
                publish(TUNE, f"<tune xmlns='{TUNE}'><title>{n}</title></tune>", f"t{n}", options),
            )
        ).get("type") == "result"
    ids = item_ids
    assert ids(await h.ask("ana", items_query(TUNE))) == ["t1", "t2", "t3"]
    assert ids(await h.ask("ana", items_query(TUNE, extra=" max_items='2'"))) == ["t2", "t3"]
    assert ids(
        await h.ask(
            "bob", items_query(TUNE, to=f"ana@{h.domain}", inner="<item id='t1'/><item id='zz'/>")
        )
    ) == ["t1"]
    # 'max' means the server's largest number (5 here); the existing node has 3: not met.
    reply = await h.ask(
        "ana", publish(TUNE, f"<tune xmlns='{TUNE}'/>", "t9", {"pubsub#max_items": "max"})
    )
    assert error_condition(reply) == "conflict" and app_error(reply) == "precondition-not-met"


async def test_notifications_follow_presence_subscription_and_notify(h: Harness) -> None:
    ana, asink = await online(h, "ana", "phone", notify(GEO))
    bob, bsink = await online(h, "bob", "phone", notify(GEO))
    _bob2, b2sink = await online(h, "bob", "desk", notify(TUNE))  # no +notify for geoloc
    _carl, csink = await online(h, "carl", "phone", notify(GEO))  # not subscribed to ana
    await befriend(h, ana, bob)
    for sink in (asink, bsink, b2sink, csink):
        sink.take()
    await h.send(ana, publish(GEO, geo("theatre 2"), "now"))
    [to_bob] = events(bsink)
    assert to_bob.get("type") == "headline" and to_bob.get("from") == f"ana@{h.domain}"
    assert to_bob.get("to") == str(bob.jid)
    item = to_bob.find(
        f"{EVENT}/{{http://jabber.org/protocol/pubsub#event}}items/{{http://jabber.org/protocol/pubsub#event}}item"
    )
    assert item is not None and item.get("id") == "now"
    assert events(b2sink) == [] and events(csink) == []
    # The owner's own resource that +notify hears too.
    own = events(asink)
    assert len(own) == 1 and own[0].get("to") == str(ana.jid)


async def test_last_item_is_delivered_on_available_presence(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    bob, bsink = await online(h, "bob", "phone", notify())
    await befriend(h, ana, bob)
    await h.send(ana, publish(GEO, geo("ICU"), "last"))
    await h.unbind(bob)
    bob, bsink = await online(h, "bob", "tablet", notify(GEO))
    got = events(bsink)
    assert len(got) == 1 and got[0].get("from") == f"ana@{h.domain}"
    assert got[0].find(f"{{{ns.DELAY}}}delay") is not None
    # A second client with the same capabilities: cached, no question asked, item sent.
    _, b2sink = await online(h, "bob", "tablet2", notify(GEO), answer=False)
    sent = b2sink.take()
    assert not [s for s in sent if s.find(f"{{{ns.DISCO_INFO}}}query") is not None]
    assert len([s for s in sent if s.find(EVENT) is not None]) == 1


async def test_caps_that_do_not_match_their_hash_are_not_cached(h: Harness) -> None:
    session, sink = await h.bind("bob", "liar")
    await h.send(session, caps_presence(notify(GEO), ver="bm90LXRoZS1oYXNo"))
    await settle_after_answer(h, session, sink)
    session2, sink2 = await h.bind("bob", "liar2")
    await h.send(session2, caps_presence(notify(GEO), ver="bm90LXRoZS1oYXNo"))
    await settle_after_answer(h, session2, sink2, expect_query=True)


async def settle_after_answer(
    h: Harness, session: Session, sink: RecordingSink, *, expect_query: bool = True
) -> None:
    for _ in range(3):
        await asyncio.sleep(0)
    queries = [s for s in sink.take() if s.find(f"{{{ns.DISCO_INFO}}}query") is not None]
    assert bool(queries) is expect_query
    for q in queries:
        reply = (
            f"<iq type='result' id='{q.get('id')}' to='{h.domain}'>"
            f"<query xmlns='{ns.DISCO_INFO}'><feature var='{GEO}+notify'/></query></iq>"
        )
        await h.send(session, reply)
    await settle(h)


async def test_access_models(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    bob, _ = await online(h, "bob", "phone", notify())
    await befriend(h, ana, bob)
    await h.send(ana, publish(GEO, geo("x"), "p"))  # presence (default)
    await h.send(
        ana,
        publish("private", "<secret xmlns='urn:t'/>", "w", {"pubsub#access_model": "whitelist"}),
    )
    await h.send(
        ana, publish("public", "<notice xmlns='urn:t'/>", "o", {"pubsub#access_model": "open"})
    )
    ana_jid = f"ana@{h.domain}"
    assert (await h.ask("bob", items_query(GEO, ana_jid))).get("type") == "result"
    reply = await h.ask("carl", items_query(GEO, ana_jid))
    assert (
        error_condition(reply) == "not-authorized"
        and app_error(reply) == "presence-subscription-required"
    )
    reply = await h.ask("bob", items_query("private", ana_jid))
    assert error_condition(reply) == "not-allowed" and app_error(reply) == "closed-node"
    assert (await h.ask("ana", items_query("private"))).get("type") == "result"
    assert (await h.ask("carl", items_query("public", ana_jid))).get("type") == "result"
    reply = await h.ask("bob", items_query("nothing-here", ana_jid))
    assert error_condition(reply) == "item-not-found"
    # disco#items lists the nodes each may read (XEP-0060 §5.2).
    for who, nodes in (
        ("ana", ["private", "public", GEO]),
        ("bob", ["public", GEO]),
        ("carl", ["public"]),
    ):
        query = f"<iq type='get' id='i' to='{ana_jid}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
        found = (await h.ask(who, query)).iter(f"{{{ns.DISCO_ITEMS}}}item")
        assert sorted(i.get("node", "") for i in found) == sorted(nodes), who


async def test_configure_delete_and_purge(h: Harness) -> None:
    ana, asink = await online(h, "ana", "phone", notify(TUNE))
    for n in range(3):
        await h.send(
            ana, publish(TUNE, f"<tune xmlns='{TUNE}'/>", f"t{n}", {"pubsub#max_items": "5"})
        )
    reply = await h.ask(
        "ana",
        owner_iq("get", f"<configure node='{TUNE}'/>"),
    )
    values = {
        f.get("var"): f.findtext(f"{{{ns.DATA_FORMS}}}value")
        for f in reply.iter(f"{{{ns.DATA_FORMS}}}field")
    }
    assert values["pubsub#max_items"] == "5" and values["pubsub#access_model"] == "presence"
    form = (
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
        "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
        "<field var='pubsub#max_items'><value>1</value></field>"
        "<field var='pubsub#access_model'><value>open</value></field></x>"
    )
    reply = await h.ask(
        "ana",
        owner_iq("set", f"<configure node='{TUNE}'>{form}</configure>"),
    )
    assert reply.get("type") == "result"
    items = (await h.ask("ana", items_query(TUNE))).findall(f"{P}pubsub/{P}items/{P}item")
    assert [i.get("id") for i in items] == ["t2"]
    asink.take()
    reply = await h.ask(
        "ana",
        owner_iq("set", f"<purge node='{TUNE}'/>"),
    )
    assert reply.get("type") == "result"
    assert (await h.ask("ana", items_query(TUNE))).findall(f"{P}pubsub/{P}items/{P}item") == []
    reply = await h.ask(
        "ana",
        owner_iq("set", f"<delete node='{TUNE}'/>"),
    )
    assert reply.get("type") == "result"
    kinds = [e.find(EVENT)[0].tag.rpartition("}")[2] for e in events(asink)]  # type: ignore[index]
    assert kinds == ["purge", "delete"]
    assert error_condition(await h.ask("ana", items_query(TUNE))) == "item-not-found"
    reply = await h.ask(
        "ana",
        owner_iq("set", f"<delete node='{TUNE}'/>"),
    )
    assert error_condition(reply) == "item-not-found"
    reply = await h.ask(
        "ana", f"<iq type='set' id='n'><pubsub xmlns='{PUBSUB}'><create node='made'/></pubsub></iq>"
    )
    assert reply.get("type") == "result"
    reply = await h.ask(
        "ana", f"<iq type='set' id='n'><pubsub xmlns='{PUBSUB}'><create node='made'/></pubsub></iq>"
    )
    assert error_condition(reply) == "conflict"
    await h.send(ana, "<presence type='unavailable'/>")


async def test_a_new_subscriber_gets_the_last_items(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    bob, bsink = await online(h, "bob", "phone", notify(GEO))
    await h.send(ana, publish(GEO, geo("lab"), "g"))
    assert events(bsink) == []  # not subscribed yet
    await befriend(h, ana, bob)  # ana approves bob's request: bob now sees ana's presence
    got = events(bsink)
    assert [e.get("from") for e in got] == [f"ana@{h.domain}"]


async def test_a_client_that_does_not_answer_its_caps_query_gets_no_notifications(
    tmp_path: Path,
) -> None:
    h = await make_harness(tmp_path, features=FEATURES, config=FeatureConfig(ping_timeout=0.05))
    try:
        silent, sink = await online(h, "bob", "silent", notify(GEO), answer=False)
        assert any(s.find(f"{{{ns.DISCO_INFO}}}query") is not None for s in sink.take())
        refusing, rsink = await h.bind("bob", "refusing")
        await h.send(refusing, caps_presence(notify(GEO)))
        await settle_after_error(h, refusing, rsink)
        assert notify_set(silent) == frozenset() and notify_set(refusing) == frozenset()
    finally:
        await h.close()


async def settle_after_error(h: Harness, session: Session, sink: RecordingSink) -> None:
    for _ in range(3):
        await asyncio.sleep(0)
    for q in [s for s in sink.take() if s.find(f"{{{ns.DISCO_INFO}}}query") is not None]:
        error = (
            f"<iq type='error' id='{q.get('id')}' to='{h.domain}'><error type='cancel'>"
            "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
        await h.send(session, error)
    await settle(h)
