"""The sessions other nodes hold, mirrored in memory for the router (docs/cluster.md).

Routing is synchronous (RFC 6121 §8.5 decisions are taken while a stanza is
handled), so a node cannot ask Redis which resources of an account exist: it
keeps a mirror of the other nodes' ``{p}sessions:{id}`` hashes, loaded in
full when it (re)connects and kept current by the events channel. Each entry
is a stand-in :class:`~carewire.core.sessions.Session` (``node`` set) with the
priority, presence and carbons setting the holder published; its sink
forwards stanzas to the holding node. The mirror is
:class:`~carewire.core.sessions.RemoteSessions` for the kernel's
``SessionManager``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from xml.etree.ElementTree import Element

from carewire.cluster.wire import SessionEntry, WireError
from carewire.core.sessions import Session, StanzaSink
from carewire.features.carbons import ENABLED as CARBONS_ENABLED
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

#: Makes the sink of a stand-in: (node, full JID) → where its stanzas go.
SinkFactory = Callable[[str, JID], StanzaSink]


def entry_of(session: Session) -> SessionEntry:
    """What other nodes must know of a local session."""
    presence = None if session.presence is None else serialize(session.presence, None)
    return SessionEntry(
        priority=session.priority,
        presence=presence,
        carbons=bool(session.data.get(CARBONS_ENABLED)),
        interested=session.is_interested,
    )


def _presence(entry: SessionEntry) -> Element | None:
    if entry.presence is None:
        return None
    try:
        return parse_document(entry.presence)
    except RemoteProtocolError:
        raise WireError("a session entry's presence is not XML") from None


class RemoteRegistry:
    """Stand-ins for the sessions of other nodes, by account and by node."""

    def __init__(self, domain: str, sinks: SinkFactory) -> None:
        self.domain = domain
        self._sinks = sinks
        self._by_user: dict[str, dict[str, Session]] = {}
        self._by_node: dict[str, dict[JID, Session]] = {}

    def __len__(self) -> int:
        return sum(len(sessions) for sessions in self._by_node.values())

    @property
    def nodes(self) -> frozenset[str]:
        """The nodes of which sessions are known."""
        return frozenset(self._by_node)

    # -- RemoteSessions ---------------------------------------------------------------

    def get(self, jid: JID) -> Session | None:
        """The stand-in bound to a full JID of our domain on another node."""
        if jid.localpart is None or jid.resource is None or jid.domain != self.domain:
            return None
        resources = self._by_user.get(jid.localpart)
        return resources.get(jid.resource) if resources else None

    def of_user(self, login: str) -> list[Session]:
        """The stand-ins of an account."""
        resources = self._by_user.get(login)
        return list(resources.values()) if resources else []

    # -- changes ----------------------------------------------------------------------

    def up(self, node: str, jid_text: str, body: str) -> Session | None:
        """A session on ``node`` was bound or changed; returns the stand-in (None: ignored).

        A malformed entry is logged and ignored: one bad writer must not stop routing.
        """
        try:
            jid = JID.parse(jid_text)
            entry = SessionEntry.decode(body)
            presence = _presence(entry)
        except (InvalidJID, WireError) as exc:
            log.warning("cluster: ignoring a session entry of node %s: %s", node, exc)
            return None
        if jid.localpart is None or jid.resource is None or jid.domain != self.domain:
            return None
        resources = self._by_user.setdefault(jid.localpart, {})
        session = resources.get(jid.resource)
        if session is None or session.node != node:
            if session is not None:
                self._by_node.get(session.node, {}).pop(jid, None)
            session = Session(jid=jid, sink=self._sinks(node, jid), transport="cluster", node=node)
            resources[jid.resource] = session
            self._by_node.setdefault(node, {})[jid] = session
        session.priority = entry.priority
        session.presence = presence
        session.is_interested = entry.interested
        if entry.carbons:
            session.data[CARBONS_ENABLED] = True
        else:
            session.data.pop(CARBONS_ENABLED, None)
        return session

    def down(self, node: str, jid_text: str) -> None:
        """A session on ``node`` ended."""
        try:
            jid = JID.parse(jid_text)
        except InvalidJID:
            return
        session = self._by_node.get(node, {}).pop(jid, None)
        if session is not None:
            self._drop(session)

    def forget(self, node: str) -> list[JID]:
        """``node`` is gone: forget its sessions; returns their JIDs."""
        sessions = self._by_node.pop(node, {})
        for session in sessions.values():
            self._drop(session)
        return list(sessions)

    def replace(self, node: str, entries: dict[str, str]) -> None:
        """``node``'s sessions are exactly ``entries`` (full JID → entry), as read from Redis."""
        known = {str(jid) for jid in self._by_node.get(node, {})}
        for jid_text in known - set(entries):
            self.down(node, jid_text)
        for jid_text, body in entries.items():
            self.up(node, jid_text, body)

    def _drop(self, session: Session) -> None:
        session.is_closed = True
        resources = self._by_user.get(session.username)
        if resources is not None and resources.get(session.resource) is session:
            del resources[session.resource]
            if not resources:
                del self._by_user[session.username]
