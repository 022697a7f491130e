"""Stanza helpers: replies, error replies and validation (RFC 6120 §8).

Pure functions over :class:`xml.etree.ElementTree.Element` stanzas in the
``jabber:client`` namespace.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

MESSAGE = f"{{{ns.CLIENT}}}message"
PRESENCE = f"{{{ns.CLIENT}}}presence"
IQ = f"{{{ns.CLIENT}}}iq"
STANZA_KINDS = {MESSAGE: "message", PRESENCE: "presence", IQ: "iq"}
IQ_TYPES = frozenset({"get", "set", "result", "error"})
MESSAGE_TYPES = frozenset({"normal", "chat", "groupchat", "headline", "error"})
PRESENCE_TYPES = frozenset(
    {"unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "error"}
)


def stanza_kind(element: Element) -> str | None:
    """'message', 'presence' or 'iq' for a stanza, else None."""
    return STANZA_KINDS.get(element.tag)


def validate_iq(iq: Element) -> None:
    """RFC 6120 §8.2.3: an IQ has an id and a type; get/set have exactly one child.

    Raises:
        StanzaError: ``bad-request`` when the IQ is malformed.
    """
    iq_type = iq.get("type")
    if iq.get("id") is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "iq without id")
    if iq_type not in IQ_TYPES:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "iq type must be get, set, result or error")
    if iq_type in ("get", "set") and len(iq) != 1:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "iq get/set must have exactly one child")


def iq_result(request: Element, payload: Element | None = None) -> Element:
    """The ``result`` reply to an IQ get/set, addressed back to its sender."""
    attrs = {"type": "result", "id": request.get("id", "")}
    if request.get("from") is not None:
        attrs["to"] = request.get("from", "")
    if request.get("to") is not None:
        attrs["from"] = request.get("to", "")
    reply = Element(IQ, attrs)
    if payload is not None:
        reply.append(payload)
    return reply


def error_reply(stanza: Element, error: StanzaError, *, default_from: str | None = None) -> Element:
    """The error reply to ``stanza`` (RFC 6120 §8.3.1): same kind and id, swapped addresses.

    The original payload of IQs is not echoed (§8.3.1 permits either); for
    messages and presence the children are kept so the sender can tell which
    stanza failed.
    """
    attrs = {"type": "error"}
    if stanza.get("id") is not None:
        attrs["id"] = stanza.get("id", "")
    if stanza.get("from") is not None:
        attrs["to"] = stanza.get("from", "")
    sender = stanza.get("to") or default_from
    if sender is not None:
        attrs["from"] = sender
    reply = Element(stanza.tag, attrs)
    if stanza.tag != IQ:
        for c in stanza:
            if c.tag != f"{{{ns.CLIENT}}}error":
                reply.append(c)
    reply.append(error.to_element())
    return reply


def can_reply_with_error(stanza: Element) -> bool:
    """RFC 6120 §8.3.1: never answer an error (or an IQ result) with an error."""
    t = stanza.get("type")
    if t == "error":
        return False
    return not (stanza.tag == IQ and t == "result")
