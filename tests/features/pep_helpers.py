"""Helpers of the PEP feature tests: clients with entity capabilities, pubsub stanzas."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from xml.etree.ElementTree import Element, SubElement

from carewire.core.sessions import Session
from carewire.features.pep import PepFeature
from carewire.features.pep.caps import CAPS, verification_string
from carewire.features.pep.model import PUBSUB, PUBSUB_ERRORS, PUBSUB_EVENT
from carewire.xmpp import ns
from tests.features.harness import Harness, RecordingSink

CAPS_NODE = "https://carewire.test/client"
EVENT = f"{{{PUBSUB_EVENT}}}event"


def disco_info(features: list[str]) -> Element:
    query = Element(f"{{{ns.DISCO_INFO}}}query")
    SubElement(query, f"{{{ns.DISCO_INFO}}}identity", {"category": "client", "type": "phone"})
    for var in features:
        SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
    return query


def ver_of(features: list[str]) -> str:
    digest = hashlib.sha1(verification_string(disco_info(features)).encode()).digest()
    return base64.b64encode(digest).decode()


def caps_presence(features: list[str], *, ver: str | None = None) -> str:
    ver = ver or ver_of(features)
    return f"<presence><c xmlns='{CAPS}' hash='sha-1' node='{CAPS_NODE}' ver='{ver}'/></presence>"


def notify(*nodes: str) -> list[str]:
    return [ns.DISCO_INFO, *(f"{n}+notify" for n in nodes)]


async def settle(h: Harness) -> None:
    await asyncio.sleep(0)
    await h.kernel.ctx.require(PepFeature).settle()


async def online(
    h: Harness, login: str, resource: str, features: list[str], *, answer: bool = True
) -> tuple[Session, RecordingSink]:
    """Log in with caps; answer the server's disco#info question (if it asks)."""
    session, sink = await h.bind(login, resource)
    await h.send(session, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>")
    await h.send(session, caps_presence(features))
    for _ in range(3):
        await asyncio.sleep(0)
    if answer:
        for query in [s for s in sink.sent if s.find(f"{{{ns.DISCO_INFO}}}query") is not None]:
            if query.get("type") != "get":
                continue
            node = query.find(f"{{{ns.DISCO_INFO}}}query")
            assert node is not None
            result = disco_info(features)
            result.set("node", node.get("node", ""))
            reply = Element(f"{{{ns.CLIENT}}}iq", {"type": "result", "id": query.get("id", "")})
            reply.set("to", h.domain)
            reply.append(result)
            await h.send(session, reply)
    await settle(h)
    return session, sink


def publish(
    node: str, payload: str, item_id: str = "", options: dict[str, str] | None = None
) -> str:
    id_attr = f" id='{item_id}'" if item_id else ""
    form = ""
    if options:
        fields = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in options.items())
        form = (
            "<publish-options><x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'>"
            "<value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
            f"{fields}</x></publish-options>"
        )
    return (
        f"<iq type='set' id='pub'><pubsub xmlns='{PUBSUB}'><publish node='{node}'>"
        f"<item{id_attr}>{payload}</item></publish>{form}</pubsub></iq>"
    )


def items_query(node: str, to: str = "", extra: str = "", inner: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return (
        f"<iq type='get' id='items'{to_attr}><pubsub xmlns='{PUBSUB}'>"
        f"<items node='{node}'{extra}>{inner}</items></pubsub></iq>"
    )


def events(sink: RecordingSink) -> list[Element]:
    """The PEP event messages received (taken from the sink)."""
    return [s for s in sink.take() if s.find(EVENT) is not None]


def app_error(stanza: Element) -> str | None:
    """The pubsub#errors condition of an error reply, or None."""
    err = stanza.find(f"{{{ns.CLIENT}}}error")
    if err is None:
        return None
    for c in err:
        if c.tag.startswith(f"{{{PUBSUB_ERRORS}}}"):
            return c.tag.rpartition("}")[2]
    return None


def error_text(stanza: Element) -> str:
    return stanza.findtext(f"{{{ns.CLIENT}}}error/{{{ns.STANZAS_ERR}}}text") or ""
