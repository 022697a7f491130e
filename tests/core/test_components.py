"""The kernel side of external components (XEP-0114): router attachment, handshake, routing, audit.

A real :class:`Router` with empty registries and real sans-IO streams; the
network side is a recording port, the audit trail a list (the interop tests
drive the same code through sockets and the real trail).
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import pytest

from carewire.core.components import ComponentConnection, ComponentHub
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.iq import IqRegistry
from carewire.core.router import Router
from carewire.core.sessions import Session, SessionManager
from carewire.security.audit import AuditEvent, Outcome
from carewire.xmpp import ns
from carewire.xmpp.component import handshake_digest
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document

DOMAIN = "example.test"
GW = f"gw.{DOMAIN}"
AWAY = f"away.{DOMAIN}"
SECRET = "a-long-enough-component-secret"


class Port:
    """Records what the kernel hands the network side."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    def send_element(self, element: Element) -> None:
        self.sent.append(element)


class Trail:
    """The audit trail as a list."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> object:
        self.events.append(event)
        return None


class Sink:
    """A client session's sink."""

    def __init__(self) -> None:
        self.sent: list[Element] = []

    def send_element(self, element: Element) -> None:
        self.sent.append(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        pass


def x(xml: str) -> Element:
    return parse_document(f"<w xmlns='{ns.CLIENT}'>{xml}</w>")[0]


@pytest.fixture
def router() -> Router:
    return Router(
        hosts=Hosts(domain=DOMAIN, components=frozenset({GW, AWAY})),
        hooks=HookBus(),
        sessions=SessionManager(),
        iq=IqRegistry(),
    )


@pytest.fixture
def trail() -> Trail:
    return Trail()


@pytest.fixture
def hub(router: Router, trail: Trail) -> ComponentHub:
    return ComponentHub(router=router, secrets={GW: SECRET, AWAY: SECRET}, audit=trail)


def header(domain: str = GW) -> bytes:
    return (
        f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='{ns.STREAM}' to='{domain}'>"
    ).encode()


async def attached(hub: ComponentHub, port: Port) -> ComponentConnection:
    conn = hub.connection(port, remote_ip="127.0.0.1")
    for event in conn.stream.receive_data(header()):
        await conn.handle(event)
    digest = handshake_digest(conn.stream.stream_id, SECRET)
    for event in conn.stream.receive_data(f"<handshake>{digest}</handshake>".encode()):
        await conn.handle(event)
    assert conn.is_attached
    conn.stream.data_to_send()
    return conn


def text(stream_out: list[bytes]) -> str:
    return b"".join(stream_out).decode()


# -- the router ---------------------------------------------------------------------------


def test_hosts_know_component_domains() -> None:
    hosts = Hosts(domain=DOMAIN, components=frozenset({GW}))
    assert hosts.is_local(GW) and not hosts.is_local("other.test")
    assert GW not in hosts.subdomains


async def test_the_router_attaches_only_configured_domains(router: Router) -> None:
    sink = Port()
    with pytest.raises(ValueError, match="not a configured component"):
        router.attach_component("other.test", sink.send_element)
    router.attach_component(GW, sink.send_element)
    with pytest.raises(ValueError, match="attached already"):
        router.attach_component(GW, sink.send_element)
    assert GW in router.service_domains and AWAY not in router.service_domains
    await router.route(
        x(f"<message to='bot@{GW}'/>"),
        from_jid=JID.parse(f"a@{DOMAIN}/r"),
        to_jid=JID.parse(f"bot@{GW}"),
    )
    assert [el.get("to") for el in sink.sent] == [f"bot@{GW}"]
    router.detach_component(GW, Port().send_element)  # someone else's sink: nothing happens
    assert GW in router.service_domains
    router.detach_component(GW, sink.send_element)
    assert GW not in router.service_domains


async def test_an_away_component_is_service_unavailable(router: Router) -> None:
    sink = Sink()
    router.sessions.add(Session(jid=JID.parse(f"a@{DOMAIN}/r"), sink=sink))
    msg = x(f"<message from='a@{DOMAIN}/r' to='bot@{AWAY}' id='m1'><body>hi</body></message>")
    await router.route(msg, from_jid=JID.parse(f"a@{DOMAIN}/r"), to_jid=JID.parse(f"bot@{AWAY}"))
    (reply,) = sink.sent
    assert reply.get("type") == "error" and reply.get("from") == f"bot@{AWAY}"
    assert reply.find(f"{{{ns.CLIENT}}}error/{{{ns.STANZAS_ERR}}}service-unavailable") is not None


# -- the hub ------------------------------------------------------------------------------


def test_the_hub_needs_configured_domains(router: Router) -> None:
    with pytest.raises(ValueError, match="not configured"):
        ComponentHub(router=router, secrets={"other.test": SECRET})


async def test_handshake_attaches_and_audits(hub: ComponentHub, trail: Trail) -> None:
    conn = await attached(hub, Port())
    assert GW in hub.attached
    (event,) = trail.events
    assert (event.action, event.target, event.outcome) == ("component.connect", GW, Outcome.SUCCESS)
    assert event.actor == f"component:{GW}" and event.remote_ip == "127.0.0.1"
    assert SECRET not in repr(event)
    await conn.closed()
    assert not hub.attached and GW not in hub.router.service_domains
    assert trail.events[-1].action == "component.disconnect"
    assert trail.events[-1].details["reason"] == "closed"


async def test_a_wrong_handshake_is_refused_and_audited(hub: ComponentHub, trail: Trail) -> None:
    conn = hub.connection(Port(), remote_ip="127.0.0.1")
    for item in conn.stream.receive_data(header()):
        await conn.handle(item)
    events = conn.stream.receive_data(b"<handshake>0000</handshake><message to='a@example.test'/>")
    for item in events:
        await conn.handle(item)  # the pipelined stanza is dropped, not routed
    assert "<not-authorized" in text(conn.stream.data_to_send())
    assert not conn.is_attached and hub.attached == ()
    (event,) = trail.events
    assert (event.action, event.outcome) == ("component.refused", Outcome.FAILURE)
    assert event.details == {"reason": "not-authorized"}
    await conn.closed()
    assert len(trail.events) == 1  # a refused stream has no disconnect


async def test_host_unknown_is_audited_once(hub: ComponentHub, trail: Trail) -> None:
    conn = hub.connection(Port(), remote_ip="10.1.2.3")
    for item in conn.stream.receive_data(header("nobody.test")):
        await conn.handle(item)
    assert "<host-unknown" in text(conn.stream.data_to_send())
    (event,) = trail.events
    assert event.target == "nobody.test" and event.details == {"reason": "host-unknown"}


async def test_a_second_stream_is_a_conflict(hub: ComponentHub, trail: Trail) -> None:
    first_port = Port()
    first = await attached(hub, first_port)
    second = hub.connection(Port(), remote_ip="127.0.0.1")
    for event in second.stream.receive_data(header()):
        await second.handle(event)
    digest = handshake_digest(second.stream.stream_id, SECRET)
    for event in second.stream.receive_data(f"<handshake>{digest}</handshake>".encode()):
        await second.handle(event)
    assert "<conflict" in text(second.stream.data_to_send())
    await second.closed()
    assert hub.attached == (GW,)  # the first keeps the domain
    await hub.router.route(
        x(f"<message to='{GW}'/>"), from_jid=JID.parse(DOMAIN), to_jid=JID.parse(GW)
    )
    assert len(first_port.sent) == 1
    assert trail.events[-1].details == {"reason": "conflict"}
    assert first.is_attached


async def test_a_lost_connection_never_attaches(hub: ComponentHub) -> None:
    """Events still queued when the connection is lost must not attach a dead stream."""
    conn = hub.connection(Port(), remote_ip="127.0.0.1")
    for event in conn.stream.receive_data(header()):
        await conn.handle(event)
    digest = handshake_digest(conn.stream.stream_id, SECRET)
    events = conn.stream.receive_data(f"<handshake>{digest}</handshake>".encode())
    await conn.closed()  # the socket went before the worker got to the handshake
    for event in events:
        await conn.handle(event)
    assert not conn.is_attached and hub.attached == ()


async def test_replies_go_back_to_the_component(hub: ComponentHub) -> None:
    port = Port()
    conn = await attached(hub, port)
    stream = conn.stream
    bad = f"<iq type='get' id='i1' from='bot@{GW}'><q xmlns='urn:x'/></iq>"  # no 'to'
    unknown = f"<iq type='get' id='i2' to='{DOMAIN}'><q xmlns='urn:x'/></iq>"  # no handler
    malformed = f"<message to='@@' from='{GW}'/>"
    for xml in (bad, unknown, malformed):
        for event in stream.receive_data(xml.encode()):
            await conn.handle(event)
    conditions = [
        re.sub(r"^\{[^}]*\}", "", el.find(f"{{{ns.CLIENT}}}error")[0].tag)  # type: ignore[index]
        for el in port.sent
    ]
    assert conditions == ["bad-request", "service-unavailable", "jid-malformed"]
    assert port.sent[1].get("to") == GW and port.sent[1].get("from") == DOMAIN
    assert conn.stanzas_in == 3 and conn.stanzas_out == 3
