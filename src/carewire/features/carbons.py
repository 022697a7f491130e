"""XEP-0280 Message Carbons: every resource of a user sees the user's conversations.

Theory of operation
-------------------
A resource turns carbons on or off for itself with an IQ set of
``<enable/>`` / ``<disable/>`` (``urn:xmpp:carbons:2``), remembered in
``session.data["carbons"]``. For an *eligible* message (:func:`is_eligible`):

- what a resource sends (hook ``pre-message``, after blocking accepted it)
  is copied, wrapped in ``<sent/>``, to the sender's other carbons-enabled
  resources;
- what an account receives (hooks ``message/bare`` and ``message/full``,
  just before the default delivery of :mod:`carewire.features.message`) is
  copied, wrapped in ``<received/>``, to its carbons-enabled resources that
  do not get the original: the original goes to the addressed resource, or
  to the highest-priority resources for the bare JID (RFC 6121 §8.5.2).

XEP-0280 §7: a copy is never sent to the resource that sent or received the
original. A message with ``<private/>`` or the XEP-0334 ``<no-copy/>`` hint
is not copied, and ``<private/>`` is removed before the message is
delivered. Copies come from the account's bare JID and wrap the original in
``<forwarded xmlns='urn:xmpp:forward:0'/>`` (XEP-0297).
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.events import IqRequest, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext, IqTarget
from carewire.core.sessions import Session
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.xml import deep_copy

log = logging.getLogger(__name__)

CARBONS = "urn:xmpp:carbons:2"
FORWARD = "urn:xmpp:forward:0"
HINTS = "urn:xmpp:hints"  # XEP-0334
RECEIPTS = "urn:xmpp:receipts"  # XEP-0184
MARKERS = "urn:xmpp:chat-markers:0"  # XEP-0333
CHATSTATES = "http://jabber.org/protocol/chatstates"  # XEP-0085
PRIVATE = f"{{{CARBONS}}}private"
NO_COPY = f"{{{HINTS}}}no-copy"
BODY = f"{{{ns.CLIENT}}}body"
ENABLED = "carbons"  # session.data key
# pre-message: after blocking (1000) refused what it refuses. message/*: before delivery (-1000).
SENT_PRIORITY = 0
RECEIVED_PRIORITY = -900
# Payloads of instant messaging that make even a body-less normal message eligible.
_IM_PAYLOADS = frozenset({RECEIPTS, MARKERS, CHATSTATES})


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag[:1] == "{" else ""


def is_eligible(message: Element) -> bool:
    """XEP-0280 §6: whether a message is copied to the user's other resources.

    Chat messages are; normal messages with a body, or with receipts, chat
    markers or chat states, are. Never: other types, messages marked
    ``<private/>`` or ``<no-copy/>``, and carbon copies themselves.
    """
    msg_type = message.get("type", "normal")
    if message.tag != st.MESSAGE or msg_type not in ("chat", "normal"):
        return False
    namespaces = set()
    for child in message:
        if child.tag in (PRIVATE, NO_COPY) or _namespace(child.tag) == CARBONS:
            return False
        namespaces.add(_namespace(child.tag))
    if msg_type == "chat":
        return True
    return message.find(BODY) is not None or bool(namespaces & _IM_PAYLOADS)


def strip_private(message: Element) -> None:
    """XEP-0280 §7.2: the <private/> marker is removed before delivery."""
    if message.find(PRIVATE) is None:
        return  # the usual case: nothing to copy the child list for
    for child in list(message):
        if child.tag == PRIVATE:
            message.remove(child)


def wrap(kind: str, original: Element, to: Session) -> Element:
    """A ``<sent/>`` or ``<received/>`` copy of ``original`` for the resource ``to``."""
    copy = Element(
        st.MESSAGE,
        {"from": str(to.jid.bare), "to": str(to.jid), "type": original.get("type", "normal")},
    )
    holder = SubElement(copy, f"{{{CARBONS}}}{kind}")
    SubElement(holder, f"{{{FORWARD}}}forwarded").append(deep_copy(original))
    return copy


class Carbons:
    """Copies of a user's messages to the user's other resources."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.sessions = ctx.sessions
        self.router = ctx.router

    async def enable(self, req: IqRequest) -> Element | None:
        """IQ set ``<enable/>``: copies for the requesting resource from now on."""
        session = self._origin(req)
        session.data[ENABLED] = True
        await self.ctx.hooks.fire(H.SESSION_CHANGED, SessionEvent(session=session))
        return None

    async def disable(self, req: IqRequest) -> Element | None:
        """IQ set ``<disable/>``: no more copies for the requesting resource."""
        session = self._origin(req)
        session.data.pop(ENABLED, None)
        await self.ctx.hooks.fire(H.SESSION_CHANGED, SessionEvent(session=session))
        return None

    @staticmethod
    async def enable_inline(session: Session, _element: Element) -> Element | None:
        """XEP-0386 inline ``<enable/>``: "As this operation MUST succeed, no response"."""
        session.data[ENABLED] = True
        return None

    @staticmethod
    def _origin(req: IqRequest) -> Session:
        if req.origin is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "carbons are a per-resource setting")
        return req.origin

    def _anyone_enabled(self, login: str) -> bool:
        """Whether a session of ``login`` enabled carbons (else there is nobody to copy to)."""
        return any(session.data.get(ENABLED) for session in self.sessions.of_user(login))

    def _copy_to(self, kind: str, login: str, original: Element, skip: list[Session]) -> None:
        for session in self.sessions.of_user(login):
            if session.data.get(ENABLED) and session not in skip:
                self.router.deliver(session, wrap(kind, original, session))

    def on_sent(self, event: StanzaEvent) -> bool:
        """Hook ``pre-message``: copies of what a resource sends."""
        origin = event.origin
        if origin is None or not self._anyone_enabled(origin.username):
            return False
        if not is_eligible(event.stanza):
            return False
        if event.to_jid is not None and event.to_jid.bare == origin.jid.bare:
            return False  # to the user's own account: the received side copies it
        self._copy_to("sent", origin.username, event.stanza, [origin])
        return False

    def on_bare(self, event: StanzaEvent) -> bool:
        """Hook ``message/bare``: copies for the resources the original does not reach."""
        assert event.to_jid is not None and event.to_jid.localpart is not None
        login = event.to_jid.localpart
        if self._anyone_enabled(login) and is_eligible(event.stanza):
            recipients = self.sessions.top_priority(login)
            self._copy_to("received", login, event.stanza, [*recipients, *self._own(event)])
        strip_private(event.stanza)
        return False

    def on_full(self, event: StanzaEvent) -> bool:
        """Hook ``message/full``: copies for the other resources of the addressed account."""
        assert event.to_jid is not None and event.to_jid.localpart is not None
        login = event.to_jid.localpart
        if self._anyone_enabled(login) and is_eligible(event.stanza):
            target = self.sessions.get(event.to_jid)
            # RFC 6121 §8.5.3.2.1: without that resource, chat and normal go to the bare JID.
            recipients = [target] if target is not None else self.sessions.top_priority(login)
            self._copy_to("received", login, event.stanza, [*recipients, *self._own(event)])
        strip_private(event.stanza)
        return False

    @staticmethod
    def _own(event: StanzaEvent) -> list[Session]:
        """The sending resource, when a user writes to their own account."""
        return [event.origin] if event.origin is not None else []


def setup(ctx: FeatureContext) -> None:
    """Register the carbons IQs, the disco feature and the copy hooks."""
    carbons = Carbons(ctx)
    targets = (IqTarget.HOST, IqTarget.ACCOUNT)
    ctx.iq.register(f"{{{CARBONS}}}enable", carbons.enable, types=("set",), targets=targets)
    ctx.iq.register(f"{{{CARBONS}}}disable", carbons.disable, types=("set",), targets=targets)
    ctx.disco.add_server_feature(CARBONS)
    ctx.bind2.register(CARBONS, (f"{{{CARBONS}}}enable",), carbons.enable_inline)
    ctx.hooks.on(H.PRE_MESSAGE, carbons.on_sent, priority=SENT_PRIORITY)
    ctx.hooks.on(H.MESSAGE_BARE, carbons.on_bare, priority=RECEIVED_PRIORITY)
    ctx.hooks.on(H.MESSAGE_FULL, carbons.on_full, priority=RECEIVED_PRIORITY)
