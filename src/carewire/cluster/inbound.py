"""What a node does with a stanza another node sent it (RFC 6121 §8.5 on the holding node).

A ``DELIVER`` envelope names a local session: the stanza is delivered to it
through the router (its ``session/deliver`` hooks run here: blocking, client
state, tracking, stream management). When that session ended meanwhile, a
chat or normal message goes to the bare JID instead (RFC 6121 §8.5.3.2.1),
and an IQ request is answered with ``service-unavailable``. A ``ROUTE``
envelope is routed here as if it had arrived here (a room this node owns).
A ``CLOSE`` envelope ends a local session.
"""

from __future__ import annotations

from carewire.cluster.wire import Envelope, Kind
from carewire.core.kernel import Kernel
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document

ENDED = "Ended by another node of the server"


async def handle(kernel: Kernel, envelope: Envelope) -> None:
    """Act on ``envelope``.

    Raises:
        InvalidJID: An address in it does not parse.
        RemoteProtocolError: Its stanza is not well-formed XML.
        ValueError: A CLOSE with an unknown stream condition.
    """
    to = JID.parse(envelope.to)
    sessions, router = kernel.sessions, kernel.router
    if envelope.kind is Kind.CLOSE:
        session = sessions.local(to)
        if session is not None:
            condition = StreamCondition(envelope.body) if envelope.body else None
            session.sink.close(condition, ENDED)
        return
    stanza = parse_document(envelope.body)
    if envelope.kind is Kind.ROUTE:
        await router.route(stanza, from_jid=JID.parse(envelope.sender), to_jid=to)
        return
    session = sessions.local(to)
    if session is not None:
        router.deliver(session, stanza)
    elif stanza.tag == st.MESSAGE and stanza.get("type", "normal") in ("chat", "normal"):
        # RFC 6121 §8.5.3.2.1: the resource is gone; chat and normal go to the bare JID.
        sender = JID.parse(stanza.get("from") or kernel.hosts.domain)
        await router.route(stanza, from_jid=sender, to_jid=to.bare)
    elif stanza.tag == st.IQ and stanza.get("type") in ("get", "set"):
        router.reply_error(stanza, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE))
