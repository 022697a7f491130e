"""XEP-0049 Private XML Storage: arbitrary namespaced XML a user keeps on the server.

Each stored fragment is keyed by the Clark name of its root element
(``{namespace}localname``), so a client reads back exactly the element it
wrote (e.g. ``<storage xmlns='storage:bookmarks'/>``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.errors import NotFoundError
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

QUERY = f"{{{ns.PRIVATE}}}query"
# Namespaces a fragment may not be stored in (XEP-0049 §2.3 "reserved").
RESERVED_NAMESPACES = frozenset({ns.PRIVATE, ns.CLIENT, ns.SERVER})
MAX_FRAGMENT_BYTES = 64 * 1024
#: Called after a client stored a fragment: (login, the stored element).
StoredListener = Callable[[str, Element], Awaitable[None]]


def _namespace(el: Element) -> str | None:
    tag = el.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    return tag[1:].partition("}")[0] or None


def _fragments(query: Element) -> list[Element]:
    """The query's children, checked as XEP-0049 §2.3 requires.

    "At least one child element with a proper namespace MUST be included;
    otherwise the server MUST respond with a "Not Acceptable" error"; an IQ
    set "MAY contain multiple elements qualified by the same namespace".
    """
    children = list(query)
    if not children:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "the query needs one namespaced child")
    namespaces = {_namespace(c) for c in children}
    if len(namespaces) != 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "all children must share one namespace")
    namespace = namespaces.pop()
    if namespace is None or namespace in RESERVED_NAMESPACES:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "reserved or missing namespace")
    return children


class PrivateStorage:
    """jabber:iq:private get/set on :class:`~carewire.core.stores.PrivateStore`."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self._listeners: list[StoredListener] = []

    def on_stored(self, listener: StoredListener) -> None:
        """Call ``listener`` after each fragment a client stores (XEP-0402 conversion)."""
        self._listeners.append(listener)

    async def get(self, req: IqRequest) -> Element | None:
        """Return the stored fragment, or the requested element empty if none is stored."""
        children = _fragments(req.payload)
        if len(children) != 1:
            # XEP-0049 §2.3: "A client MUST NOT query for more than [one] namespace
            # in a single IQ get request."
            raise StanzaError(StanzaCondition.BAD_REQUEST, "query one element at a time")
        wanted = children[0]
        login = _owner(req)
        stored = await self.ctx.stores.private.get(login, wanted.tag)
        fragment = _parse(stored, wanted.tag, login) if stored is not None else None
        result = Element(QUERY)
        result.append(fragment if fragment is not None else Element(wanted.tag))
        return result

    async def set(self, req: IqRequest) -> Element | None:
        """Store each child under its own name (the last one wins for repeated names)."""
        children = _fragments(req.payload)
        login = _owner(req)
        fragments: dict[str, str] = {}
        stored: dict[str, Element] = {}
        for c in children:
            xml = serialize(c, None)
            if len(xml.encode("utf-8")) > MAX_FRAGMENT_BYTES:
                raise StanzaError(
                    StanzaCondition.NOT_ACCEPTABLE,
                    f"a private XML fragment may be at most {MAX_FRAGMENT_BYTES} bytes",
                )
            fragments[c.tag] = xml
            stored[c.tag] = c
        try:
            for key, xml in fragments.items():
                await self.ctx.stores.private.set(login, key, xml)
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None
        for element in stored.values():
            for listener in self._listeners:
                await listener(login, element)
        return None

    async def other(self, req: IqRequest) -> Element | None:
        """XEP-0049 §2.3: "If a user attempts to get or set jabber:iq:private data that
        belongs to another user, the server MUST return a "Forbidden" or "Service
        Unavailable" error to the sender (... the former is preferable)".
        """
        raise StanzaError(StanzaCondition.FORBIDDEN, "private data belongs to its owner only")


def _owner(req: IqRequest) -> str:
    login = req.from_jid.localpart
    if login is None:  # pragma: no cover - ACCOUNT requests come from a bound session
        raise StanzaError(StanzaCondition.FORBIDDEN)
    return login


def _parse(xml: str, tag: str, login: str) -> Element | None:
    try:
        el = parse_document(xml)
    except RemoteProtocolError:
        log.error("stored private XML of %s is not well-formed; ignoring it", login)
        return None
    return el if el.tag == tag else None


def setup(ctx: FeatureContext) -> None:
    """Register the jabber:iq:private handlers."""
    storage = ctx.provide(PrivateStorage(ctx))
    ctx.disco.add_server_feature(ns.PRIVATE)
    ctx.iq.register(QUERY, storage.get, types=("get",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(QUERY, storage.set, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(QUERY, storage.other, types=("get", "set"), targets=(IqTarget.BARE,))
