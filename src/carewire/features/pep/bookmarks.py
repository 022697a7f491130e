"""XEP-0402 compatibility and XEP-0411: PEP bookmarks (``urn:xmpp:bookmarks:1``), private-storage
bookmarks (XEP-0048 in XEP-0049 ``storage:bookmarks``) and the XEP-0048 PEP node
``storage:bookmarks`` kept as one list.

A client that writes ``<storage xmlns='storage:bookmarks'/>`` through
``jabber:iq:private`` has its conferences published as ``urn:xmpp:bookmarks:1``
items (one per room, the room's JID as item id; removed rooms are retracted) and
as the ``storage:bookmarks`` node's ``current`` item (XEP-0411), so PEP clients are
notified; a PEP publish, retract or node deletion rewrites the other two copies.
Each conversion is marked internal so it does not convert back. Listeners
(:meth:`BookmarkSync.on_rooms`) hear the room list after a PEP change — the clinical
bookmarks feature keeps CONVERSATIONS.bookmarked_users from it, as it does from
private-storage writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from xml.etree.ElementTree import Element, SubElement

from carewire.core.feature import FeatureContext
from carewire.features.pep.service import BOOKMARKS, ChangeKind, PepChange, PepService
from carewire.xmpp.errors import RemoteProtocolError, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

LEGACY = "storage:bookmarks"
LEGACY_STORAGE = f"{{{LEGACY}}}storage"
#: XEP-0402 §4 (Example 2): the options a bookmarks node is published with.
NODE_OPTIONS: dict[str, list[str]] = {
    "FORM_TYPE": ["http://jabber.org/protocol/pubsub#publish-options"],
    "pubsub#persist_items": ["true"],
    "pubsub#max_items": ["max"],
    "pubsub#send_last_published_item": ["never"],
    "pubsub#access_model": ["whitelist"],
}
#: XEP-0411 §6: "the user is the only one who has access to that node".
LEGACY_NODE_OPTIONS: dict[str, list[str]] = {
    "FORM_TYPE": ["http://jabber.org/protocol/pubsub#publish-options"],
    "pubsub#access_model": ["whitelist"],
}
CONVERSION_FEATURES = (
    f"{BOOKMARKS}#compat",
    f"{BOOKMARKS}#compat-pep",
    "urn:xmpp:bookmarks-conversion:0",
)
_B = f"{{{BOOKMARKS}}}"
_L = f"{{{LEGACY}}}"
_TRUE = ("1", "true")

RoomsListener = Callable[[str, list[str]], None]


def to_pep(conference: Element, extensions: Element | None = None) -> tuple[str, Element] | None:
    """A legacy ``<conference/>`` as (room JID, XEP-0402 ``<conference/>``), or None if bad."""
    try:
        room = str(JID.parse(conference.get("jid", "")).bare)
    except InvalidJID:
        return None
    attrs = {}
    if conference.get("name"):
        attrs["name"] = conference.get("name", "")
    if conference.get("autojoin", "false").lower() in _TRUE:
        attrs["autojoin"] = "true"
    out = Element(f"{_B}conference", attrs)
    for child in ("nick", "password"):
        text = conference.findtext(f"{_L}{child}")
        if text:
            SubElement(out, f"{_B}{child}").text = text
    if extensions is not None:
        out.append(extensions)
    return room, out


def to_legacy(room: str, conference: Element) -> Element:
    """A XEP-0402 item as a legacy ``<conference/>`` (extensions stay in PEP only)."""
    attrs = {"jid": room, "autojoin": "true" if conference.get("autojoin") in _TRUE else "false"}
    if conference.get("name"):
        attrs["name"] = conference.get("name", "")
    out = Element(f"{_L}conference", attrs)
    for child in ("nick", "password"):
        text = conference.findtext(f"{_B}{child}")
        if text:
            SubElement(out, f"{_L}{child}").text = text
    return out


class BookmarkSync:
    """Keeps the two bookmark stores of each account in step."""

    def __init__(self, ctx: FeatureContext, service: PepService) -> None:
        self.ctx = ctx
        self.service = service
        self._rooms_listeners: list[RoomsListener] = []

    def on_rooms(self, listener: RoomsListener) -> None:
        """Call ``listener(login, room JIDs)`` after a PEP change of a user's bookmarks."""
        self._rooms_listeners.append(listener)

    async def from_private(self, login: str, element: Element) -> None:
        """Private storage listener: publish the stored conferences to PEP (both nodes)."""
        if element.tag != LEGACY_STORAGE:
            return
        await self._to_bookmarks2(login, element)
        await self._to_legacy_pep(login, element)

    async def on_started(self, _payload: object = None) -> None:
        """Hook ``server/started``: :meth:`convert_stored`."""
        await self.convert_stored()

    async def convert_stored(self) -> int:
        """XEP-0411 §5: private-storage bookmarks stored before PEP had them are published
        (at start-up, for accounts without a XEP-0402 node), so PEP-only clients see them."""
        converted = {n.owner for n in await self.ctx.stores.pep.nodes_named(BOOKMARKS)}
        count = 0
        for login, xml in (await self.ctx.stores.private.get_all(LEGACY_STORAGE)).items():
            if login in converted:
                continue
            try:
                storage = parse_document(xml)
            except RemoteProtocolError:
                continue
            if storage.tag == LEGACY_STORAGE and storage.find(f"{_L}conference") is not None:
                await self.from_private(login, storage)
                count += 1
        if count:
            log.info("bookmarks of %d accounts converted to PEP", count)
        return count

    async def from_legacy_pep(self, change: PepChange) -> None:
        """XEP-0411 listener: a client published ``storage:bookmarks`` to PEP."""
        if change.internal or change.kind is not ChangeKind.PUBLISHED or change.payload is None:
            return
        storage = change.payload
        if storage.tag != LEGACY_STORAGE:
            return
        await self.ctx.stores.private.set(change.owner, LEGACY_STORAGE, serialize(storage, None))
        await self._to_bookmarks2(change.owner, storage)
        rooms = [c.get("jid", "") for c in storage.findall(f"{_L}conference")]
        for listener in self._rooms_listeners:
            listener(change.owner, rooms)

    async def from_pep(self, change: PepChange) -> None:
        """XEP-0402 listener: rewrite the private-storage and XEP-0411 copies from the items."""
        if change.internal:
            return
        items = await self.ctx.stores.pep.items(change.owner, BOOKMARKS)
        storage = Element(LEGACY_STORAGE)
        rooms = []
        for item in reversed(items):
            try:
                payload = parse_document(item.payload)
            except RemoteProtocolError:
                continue
            storage.append(to_legacy(item.item_id, payload))
            rooms.append(item.item_id)
        await self.ctx.stores.private.set(change.owner, LEGACY_STORAGE, serialize(storage, None))
        await self._to_legacy_pep(change.owner, storage)
        for listener in self._rooms_listeners:
            listener(change.owner, rooms)

    async def _to_bookmarks2(self, login: str, storage: Element) -> None:
        current = {i.item_id: i for i in await self.ctx.stores.pep.items(login, BOOKMARKS)}
        wanted: dict[str, Element] = {}
        for conference in storage.findall(f"{_L}conference"):
            old = current.get(conference.get("jid", ""))
            extensions = _extensions(old.payload) if old is not None else None
            converted = to_pep(conference, extensions)
            if converted is not None:
                wanted[converted[0]] = converted[1]
        node_exists = await self.ctx.stores.pep.get_node(login, BOOKMARKS) is not None
        try:
            for room, conference in wanted.items():
                old = current.get(room)
                if old is not None and old.payload == serialize(conference, None):
                    continue
                options = None if node_exists else NODE_OPTIONS
                await self.service.publish(
                    login, BOOKMARKS, room, conference, options=options, internal=True
                )
                node_exists = True
            for room in current.keys() - wanted.keys():
                await self.service.retract(login, BOOKMARKS, room, notify=True, internal=True)
        except StanzaError as exc:  # e.g. an item over the size limit: the PEP copy lags
            log.warning("bookmarks of a user not converted to PEP: %s", exc.condition.value)

    async def _to_legacy_pep(self, login: str, storage: Element) -> None:
        """XEP-0411 §4: the ``storage:bookmarks`` node follows; its subscribers are told."""
        exists = await self.ctx.stores.pep.get_node(login, LEGACY) is not None
        try:
            await self.service.publish(
                login,
                LEGACY,
                "current",
                storage,
                options=None if exists else LEGACY_NODE_OPTIONS,
                internal=True,
            )
        except StanzaError as exc:
            log.warning("bookmarks of a user not converted to PEP: %s", exc.condition.value)


def _extensions(payload: str) -> Element | None:
    try:
        return parse_document(payload).find(f"{_B}extensions")
    except RemoteProtocolError:
        return None
