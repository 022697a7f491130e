"""What clients build on PEP: XEP-0402 bookmarks with private storage, XEP-0084 avatars with the
vCard (XEP-0398), and the OMEMO policy (XEP-0384 nodes)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.core.feature import FeatureConfig
from carewire.core.stores import PepItem
from carewire.features.pep import PepFeature
from carewire.features.pep.model import PUBSUB, PUBSUB_EVENT
from carewire.features.pep.omemo import DEFAULT_REASON
from carewire.xmpp import ns
from carewire.xmpp.parser import parse_document
from tests.features.harness import Harness, error_condition, make_harness
from tests.features.pep_helpers import (
    EVENT,
    error_text,
    events,
    items_query,
    notify,
    online,
    publish,
)
from tests.features.test_presence import befriend

FEATURES = ["roster", "presence", "disco", "vcard", "private", "pep"]
BM = "urn:xmpp:bookmarks:1"
LEGACY = "storage:bookmarks"
DATA = "urn:xmpp:avatar:data"
META = "urn:xmpp:avatar:metadata"
DEVICELIST = "eu.siacs.conversations.axolotl.devicelist"
P = f"{{{PUBSUB}}}"
E = f"{{{PUBSUB_EVENT}}}"
V = f"{{{ns.VCARD}}}"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
IMAGE_ID = hashlib.sha1(IMAGE).hexdigest()
IMAGE_B64 = base64.b64encode(IMAGE).decode()


async def _harness(tmp_path: Path, **config: str) -> Harness:
    return await make_harness(tmp_path, features=FEATURES, config=FeatureConfig(**config))  # type: ignore[arg-type]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await _harness(tmp_path)
    yield harness
    await harness.close()


def private_bookmarks(*conferences: str) -> str:
    return (
        "<iq type='set' id='priv'><query xmlns='jabber:iq:private'>"
        f"<storage xmlns='storage:bookmarks'>{''.join(conferences)}</storage></query></iq>"
    )


def pep_bookmark(room: str, name: str, nick: str = "") -> str:
    nick_el = f"<nick>{nick}</nick>" if nick else ""
    return publish(
        BM,
        f"<conference xmlns='{BM}' name='{name}' autojoin='true'>{nick_el}</conference>",
        room,
        {
            "pubsub#persist_items": "true",
            "pubsub#max_items": "max",
            "pubsub#access_model": "whitelist",
            "pubsub#send_last_published_item": "never",
        },
    )


# -- bookmarks (XEP-0402 §5.3, XEP-0411) ----------------------------------------------------


async def test_private_storage_bookmarks_become_pep_items(h: Harness) -> None:
    ana, asink = await online(h, "ana", "phone", notify(BM))
    asink.take()
    room = f"rounds@chat.{h.domain}"
    await h.send(
        ana,
        private_bookmarks(
            f"<conference jid='{room}' name='Rounds' autojoin='1'><nick>Ana</nick></conference>",
            "<conference jid='not a jid@@' name='bad'/>",
        ),
    )
    got = asink.take()
    assert next(s for s in got if s.get("id") == "priv").get("type") == "result"
    [event] = [s for s in got if s.find(EVENT) is not None]  # PEP clients are told
    item = event.find(f"{EVENT}/{E}items/{E}item")
    assert item is not None and item.get("id") == room
    reply = await h.ask("ana", items_query(BM))
    [conf] = reply.findall(f"{P}pubsub/{P}items/{P}item/{{{BM}}}conference")
    assert conf.get("name") == "Rounds" and conf.get("autojoin") == "true"
    assert conf.findtext(f"{{{BM}}}nick") == "Ana"
    # The node is private to its owner (XEP-0411 §6).
    reply = await h.ask("bob", items_query(BM, f"ana@{h.domain}"))
    assert error_condition(reply) == "not-allowed"
    # Removing it from private storage retracts it.
    await h.send(ana, private_bookmarks())
    retracts = [e for e in events(asink) if e.find(f"{EVENT}/{E}items/{E}retract") is not None]
    assert len(retracts) == 1
    assert (await h.ask("ana", items_query(BM))).findall(f"{P}pubsub/{P}items/{P}item") == []


async def test_pep_bookmarks_are_written_to_private_storage(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    room, other = f"icu@chat.{h.domain}", f"er@chat.{h.domain}"
    assert (await h.ask("ana", pep_bookmark(room, "ICU", "Dr A"))).get("type") == "result"
    assert (await h.ask("ana", pep_bookmark(other, "ER"))).get("type") == "result"
    reply = await h.ask(
        "ana",
        "<iq type='get' id='g'><query xmlns='jabber:iq:private'>"
        "<storage xmlns='storage:bookmarks'/></query></iq>",
    )
    confs = reply.findall(
        "{jabber:iq:private}query/{storage:bookmarks}storage/{storage:bookmarks}conference"
    )
    assert [(c.get("jid"), c.get("name"), c.get("autojoin")) for c in confs] == [
        (room, "ICU", "true"),
        (other, "ER", "true"),
    ]
    assert confs[0].findtext("{storage:bookmarks}nick") == "Dr A"
    retract = (
        f"<iq type='set' id='r'><pubsub xmlns='{PUBSUB}'><retract node='{BM}' notify='true'>"
        f"<item id='{room}'/></retract></pubsub></iq>"
    )
    assert (await h.ask("ana", retract)).get("type") == "result"
    stored = await h.kernel.stores.private.get("ana", "{storage:bookmarks}storage")
    assert stored is not None and room not in stored and other in stored
    await h.send(ana, "<presence type='unavailable'/>")


async def test_xep_0411_the_storage_bookmarks_node_is_a_third_view(h: Harness) -> None:
    ana, asink = await online(h, "ana", "phone", notify(LEGACY))
    asink.take()
    room, other = f"lab@chat.{h.domain}", f"pharmacy@chat.{h.domain}"
    # Private storage → the storage:bookmarks node (its +notify resources are told).
    await h.send(ana, private_bookmarks(f"<conference jid='{room}' name='Lab' autojoin='true'/>"))
    [event] = [s for s in asink.take() if s.find(EVENT) is not None]
    assert event.find(f"{EVENT}/{E}items/{E}item/{{storage:bookmarks}}storage") is not None
    # A XEP-0048-over-PEP client publishes the list: private storage and XEP-0402 follow.
    storage = (
        f"<storage xmlns='storage:bookmarks'><conference jid='{other}' name='Pharmacy' "
        "autojoin='false'><nick>Ana</nick></conference></storage>"
    )
    assert (await h.ask("ana", publish(LEGACY, storage, "current"))).get("type") == "result"
    stored = await h.kernel.stores.private.get("ana", "{storage:bookmarks}storage")
    assert stored is not None and other in stored and room not in stored
    items = (await h.ask("ana", items_query(BM))).findall(f"{P}pubsub/{P}items/{P}item")
    assert [i.get("id") for i in items] == [other]
    # A XEP-0402 publish rewrites the storage:bookmarks node.
    await h.ask("ana", pep_bookmark(room, "Lab"))
    [current] = await h.kernel.stores.pep.items("ana", LEGACY)
    assert room in current.payload and other in current.payload
    # Only its owner reads it (XEP-0411 §6).
    reply = await h.ask("bob", items_query(LEGACY, f"ana@{h.domain}"))
    assert error_condition(reply) == "not-allowed"


async def test_bookmarks_stored_before_pep_are_converted_at_start(h: Harness) -> None:
    from carewire.features.pep import BookmarkSync

    await h.account("ana")
    await h.account("bob")
    room = f"old@chat.{h.domain}"
    legacy = f"<storage xmlns='storage:bookmarks'><conference jid='{room}' name='Old'/></storage>"
    await h.kernel.stores.private.set("ana", "{storage:bookmarks}storage", legacy)
    await h.kernel.stores.private.set("bob", "{storage:bookmarks}storage", "<oops")
    sync = h.kernel.ctx.require(BookmarkSync)
    assert await sync.convert_stored() == 1
    [item] = await h.kernel.stores.pep.items("ana", BM)
    assert item.item_id == room
    assert await sync.convert_stored() == 0  # once


# -- avatars (XEP-0084, XEP-0398) -------------------------------------------------------


async def _publish_avatar(h: Harness, login: str) -> None:
    reply = await h.ask(login, publish(DATA, f"<data xmlns='{DATA}'>{IMAGE_B64}</data>", IMAGE_ID))
    assert reply.get("type") == "result"
    info = f"<info id='{IMAGE_ID}' bytes='{len(IMAGE)}' type='image/png' width='8' height='8'/>"
    reply = await h.ask(
        login, publish(META, f"<metadata xmlns='{META}'>{info}</metadata>", IMAGE_ID)
    )
    assert reply.get("type") == "result"


async def test_a_pep_avatar_becomes_the_vcard_photo_and_the_presence_hash(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    bob, bsink = await online(h, "bob", "phone", notify(META))
    await befriend(h, ana, bob)
    await h.kernel.stores.vcards.set("ana", f"<vCard xmlns='{ns.VCARD}'><FN>Ana</FN></vCard>")
    bsink.take()
    await _publish_avatar(h, "ana")
    [note] = events(bsink)
    assert note.find(f"{EVENT}/{E}items/{E}item/{{{META}}}metadata") is not None
    vcard = parse_document(await h.kernel.stores.vcards.get("ana") or "")
    assert vcard.findtext(f"{V}FN") == "Ana"  # the rest of the vCard stays
    assert vcard.findtext(f"{V}PHOTO/{V}TYPE") == "image/png"
    assert base64.b64decode(vcard.findtext(f"{V}PHOTO/{V}BINVAL") or "") == IMAGE
    # XEP-0398 §4: the hash goes into presence; an empty <photo/> is left alone.
    await h.send(ana, "<presence><show>away</show></presence>")
    [pres] = [s for s in bsink.take() if s.tag.endswith("presence")]
    assert pres.findtext("{vcard-temp:x:update}x/{vcard-temp:x:update}photo") == IMAGE_ID
    await h.send(ana, "<presence><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
    [pres] = [s for s in bsink.take() if s.tag.endswith("presence")]
    assert pres.findtext("{vcard-temp:x:update}x/{vcard-temp:x:update}photo") == ""
    # An empty metadata item (avatar disabled) removes the photo.
    await h.ask("ana", publish(META, f"<metadata xmlns='{META}'/>", "current"))
    vcard = parse_document(await h.kernel.stores.vcards.get("ana") or "")
    assert vcard.find(f"{V}PHOTO") is None and vcard.findtext(f"{V}FN") == "Ana"


async def test_metadata_naming_a_wrong_image_leaves_the_vcard(h: Harness) -> None:
    wrong = "0" * 40
    await h.ask("ana", publish(DATA, f"<data xmlns='{DATA}'>{IMAGE_B64}</data>", wrong))
    await h.ask(
        "ana",
        publish(
            META,
            f"<metadata xmlns='{META}'><info id='{wrong}' bytes='1' type='image/png'/></metadata>",
            wrong,
        ),
    )
    assert await h.kernel.stores.vcards.get("ana") is None


async def test_a_vcard_photo_is_published_as_a_pep_avatar(h: Harness) -> None:
    ana, _ = await online(h, "ana", "phone", notify())
    bob, bsink = await online(h, "bob", "phone", notify(META))
    await befriend(h, ana, bob)
    bsink.take()
    vcard = (
        f"<vCard xmlns='{ns.VCARD}'><FN>Ana</FN><PHOTO><TYPE>image/png</TYPE>"
        f"<BINVAL>{IMAGE_B64}</BINVAL></PHOTO></vCard>"
    )
    assert (await h.ask("ana", f"<iq type='set' id='v'>{vcard}</iq>")).get("type") == "result"
    [note] = events(bsink)
    info = note.find(f"{EVENT}/{E}items/{E}item/{{{META}}}metadata/{{{META}}}info")
    assert info is not None and info.get("id") == IMAGE_ID and info.get("bytes") == str(len(IMAGE))
    reply = await h.ask("bob", items_query(DATA, f"ana@{h.domain}"))
    [data] = reply.findall(f"{P}pubsub/{P}items/{P}item")
    assert data.get("id") == IMAGE_ID and data.findtext(f"{{{DATA}}}data") == IMAGE_B64


# -- OMEMO policy (XEP-0384 nodes) ---------------------------------------------------------


DEVICES = "<list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/></list>"


async def test_refused_omemo_publishes_get_not_allowed_with_the_reason(h: Harness) -> None:
    for node, payload in (
        (DEVICELIST, DEVICES),
        (
            "eu.siacs.conversations.axolotl.bundles:1234",
            "<bundle xmlns='eu.siacs.conversations.axolotl'/>",
        ),
        (
            "urn:xmpp:omemo:2:devices",
            "<devices xmlns='urn:xmpp:omemo:2'><device id='1'/></devices>",
        ),
        ("urn:xmpp:omemo:2:bundles", "<bundle xmlns='urn:xmpp:omemo:2'/>"),
    ):
        reply = await h.ask("ana", publish(node, payload, "current"))
        assert error_condition(reply) == "not-allowed", node
        assert error_text(reply) == DEFAULT_REASON
    create = f"<pubsub xmlns='{PUBSUB}'><create node='{DEVICELIST}'/></pubsub>"
    create = f"<iq type='set' id='c'>{create}</iq>"
    assert error_condition(await h.ask("ana", create)) == "not-allowed"
    assert await h.kernel.stores.pep.list_nodes("ana") == []
    # The account's disco#info says so.
    reply = await h.ask(
        "ana", f"<iq type='get' id='d' to='ana@{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    fields = {
        f.get("var"): f.findtext(f"{{{ns.DATA_FORMS}}}value")
        for f in reply.iter(f"{{{ns.DATA_FORMS}}}field")
    }
    assert fields == {
        "FORM_TYPE": "urn:carewire:e2e:0",
        "e2e-encryption": "refuse",
        "reason": DEFAULT_REASON,
    }


async def test_stored_device_lists_are_emptied_when_refused(h: Harness) -> None:
    await h.account("ana")
    stamp = h.kernel.clock.now()
    for node, payload in (
        (DEVICELIST, DEVICES),
        (
            "eu.siacs.conversations.axolotl.bundles:1234",
            "<bundle xmlns='eu.siacs.conversations.axolotl'/>",
        ),
    ):
        item = PepItem(item_id="current", payload=payload, publisher="ana", published_at=stamp)
        await h.kernel.stores.pep.publish("ana", node, item, config="{}", max_items=1)
    await h.kernel.ctx.require(PepFeature).sweep_e2e()
    [item] = await h.kernel.stores.pep.items("ana", DEVICELIST)
    assert parse_document(item.payload).find("{eu.siacs.conversations.axolotl}device") is None
    assert [n.node for n in await h.kernel.stores.pep.list_nodes("ana")] == [DEVICELIST]


async def test_allowed_omemo_publishes_work(tmp_path: Path) -> None:
    h = await _harness(tmp_path, e2e_encryption="allow")
    try:
        assert (await h.ask("ana", publish(DEVICELIST, DEVICES, "current"))).get("type") == "result"
        reply = await h.ask(
            "ana",
            f"<iq type='get' id='d' to='ana@{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>",
        )
        values = [
            f.findtext(f"{{{ns.DATA_FORMS}}}value") for f in reply.iter(f"{{{ns.DATA_FORMS}}}field")
        ]
        assert "allow" in values
        await h.kernel.ctx.require(PepFeature).sweep_e2e()  # nothing to do
        [item] = await h.kernel.stores.pep.items("ana", DEVICELIST)
        assert "1234" in item.payload
    finally:
        await h.close()


async def test_a_custom_reason_is_shown(tmp_path: Path) -> None:
    h = await _harness(tmp_path, e2e_reason="Use the hospital app's secure messaging.")
    try:
        reply = await h.ask("ana", publish(DEVICELIST, DEVICES, "current"))
        assert error_text(reply) == "Use the hospital app's secure messaging."
    finally:
        await h.close()
