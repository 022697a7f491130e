"""The router: 'from' stamping, pre-<kind> hooks, delivery by address, IQ dispatch, stanza errors.

The router is built directly on a hook bus, a session manager and an IQ
registry with no feature loaded, so every hook and IQ handler a test sees is
one it registered itself; sessions write into recording sinks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import DeliveryEvent, IqRequest, StanzaEvent
from carewire.core.feature import IqRegistry, IqTarget
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.router import Router
from carewire.core.sessions import Session, SessionManager
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StanzaCondition, StanzaError, StreamCondition
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import make

DOMAIN = "example.test"
PING = f"{{{ns.PING}}}ping"
VERSION = f"{{{ns.VERSION}}}query"


@dataclass(eq=False)
class RecordingSink:
    """A session's connection: keeps what the router writes to it."""

    sent: list[Element] = field(default_factory=list)

    def send_element(self, element: Element) -> None:
        self.sent.append(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        raise AssertionError("the router never closes a stream")

    def take(self) -> list[Element]:
        """What was written since the last take()."""
        taken, self.sent = self.sent, []
        return taken


def x(xml: str) -> Element:
    """A stanza as a client writes it (``jabber:client`` is the stream's default namespace)."""
    return parse_document(f"<stream xmlns='{ns.CLIENT}'>{xml}</stream>")[0]


def error_condition(reply: Element) -> str:
    """The RFC 6120 §8.3.3 condition of an error reply."""
    assert reply.get("type") == "error", "not an error reply"
    error = reply.find(f"{{{ns.CLIENT}}}error")
    assert error is not None
    (condition,) = (
        child.tag.rpartition("}")[2]
        for child in error
        if child.tag.startswith(f"{{{ns.STANZAS_ERR}}}") and not child.tag.endswith("}text")
    )
    return condition


class Net:
    """A router with empty registries, and helpers to bind sessions and record hooks."""

    def __init__(self) -> None:
        self.hooks = HookBus()
        self.sessions = SessionManager()
        self.iq = IqRegistry()
        self.router = Router(
            hosts=Hosts(domain=DOMAIN), hooks=self.hooks, sessions=self.sessions, iq=self.iq
        )

    def bind(self, full_jid: str) -> tuple[Session, RecordingSink]:
        sink = RecordingSink()
        session = Session(jid=JID.parse(full_jid), sink=sink)
        assert self.sessions.add(session) is None
        return session, sink

    def record(self, name: str, *, handled: bool = False) -> list[StanzaEvent]:
        """Events fired on hook ``name``; the handler reports ``handled``."""
        seen: list[StanzaEvent] = []

        def handler(event: StanzaEvent) -> bool:
            seen.append(event)
            return handled

        self.hooks.on(name, handler)
        return seen

    def answer(
        self, tag: str, target: IqTarget, reply: Callable[[IqRequest], Element | None]
    ) -> list[IqRequest]:
        """Register an IQ get handler for ``tag`` at ``target``; returns the requests it saw."""
        seen: list[IqRequest] = []

        async def handler(request: IqRequest) -> Element | None:
            seen.append(request)
            return reply(request)

        self.iq.register(tag, handler, types=("get",), targets=(target,))
        return seen


@pytest.fixture
def net() -> Net:
    return Net()


ALL_DELIVERY_HOOKS = (
    H.MESSAGE_HOST,
    H.MESSAGE_BARE,
    H.MESSAGE_FULL,
    H.PRESENCE_HOST,
    H.PRESENCE_BARE,
    H.PRESENCE_FULL,
)


# -- stamping and validation ----------------------------------------------------


async def test_from_is_stamped_with_the_sessions_full_jid(net: Net) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    seen = net.record(H.MESSAGE_BARE)
    forged = x(f"<message from='mallory@{DOMAIN}/x' to='bob@{DOMAIN}'><body>hi</body></message>")
    await net.router.route_from_session(alice, forged)
    (event,) = seen
    assert event.stanza.get("from") == f"alice@{DOMAIN}/phone"
    assert event.from_jid == alice.jid
    assert event.to_jid == JID.parse(f"bob@{DOMAIN}")
    assert event.origin is alice


async def test_an_element_that_is_no_stanza_is_a_stream_error(net: Net) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    with pytest.raises(RemoteProtocolError) as caught:
        await net.router.route_from_session(alice, x("<foo/>"))
    assert caught.value.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE


async def test_malformed_to_is_answered_with_jid_malformed_before_any_hook(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(H.PRE_MESSAGE)
    await net.router.route_from_session(
        alice, x("<message id='m1' to='a@b@c'><body>hi</body></message>")
    )
    assert pre == []
    (reply,) = sink.take()
    assert (reply.get("type"), reply.get("id"), reply.get("to")) == (
        "error",
        "m1",
        f"alice@{DOMAIN}/phone",
    )
    assert error_condition(reply) == "jid-malformed"


@pytest.mark.parametrize(
    "iq",
    [
        "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>",  # no id
        "<iq type='fetch' id='q'><ping xmlns='urn:xmpp:ping'/></iq>",  # unknown type
        "<iq type='get' id='q'/>",  # get without a child
        "<iq type='set' id='q'><a xmlns='urn:t'/><b xmlns='urn:t'/></iq>",  # two children
    ],
)
async def test_malformed_iq_is_a_bad_request(net: Net, iq: str) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(H.PRE_IQ)
    await net.router.route_from_session(alice, x(iq))
    assert pre == []
    (reply,) = sink.take()
    assert reply.get("type") == "error"
    assert error_condition(reply) == "bad-request"


# -- pre-<kind> hooks -----------------------------------------------------------


@pytest.mark.parametrize(
    ("stanza", "pre_hook"),
    [
        (f"<message to='bob@{DOMAIN}'><body>hi</body></message>", H.PRE_MESSAGE),
        (f"<presence to='bob@{DOMAIN}' type='subscribe'/>", H.PRE_PRESENCE),
        (f"<iq type='get' id='v' to='{DOMAIN}'><query xmlns='{ns.VERSION}'/></iq>", H.PRE_IQ),
    ],
)
async def test_a_pre_hook_that_handles_the_stanza_stops_routing(
    net: Net, stanza: str, pre_hook: str
) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(pre_hook, handled=True)
    delivered = [net.record(name) for name in ALL_DELIVERY_HOOKS]
    version = net.answer(VERSION, IqTarget.HOST, lambda r: None)
    await net.router.route_from_session(alice, x(stanza))
    (event,) = pre
    assert event.from_jid == alice.jid and event.origin is alice
    assert all(d == [] for d in delivered)
    assert version == []
    assert sink.take() == []


async def test_a_pre_hook_that_passes_lets_the_stanza_through(net: Net) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(H.PRE_MESSAGE, handled=False)
    bare = net.record(H.MESSAGE_BARE)
    await net.router.route_from_session(alice, x(f"<message to='bob@{DOMAIN}'/>"))
    assert len(pre) == 1 and len(bare) == 1
    assert pre[0].stanza is bare[0].stanza


async def test_a_stanza_error_raised_by_a_pre_hook_becomes_an_error_reply(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")

    def refuse(event: StanzaEvent) -> bool:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "blocked")

    net.hooks.on(H.PRE_MESSAGE, refuse)
    bare = net.record(H.MESSAGE_BARE)
    await net.router.route_from_session(
        alice, x(f"<message id='m2' to='bob@{DOMAIN}'><body>hi</body></message>")
    )
    assert bare == []
    (reply,) = sink.take()
    assert error_condition(reply) == "not-acceptable"
    assert (reply.get("id"), reply.get("from")) == ("m2", f"bob@{DOMAIN}")
    # Messages keep their payload in the error reply (RFC 6120 §8.3.1).
    assert reply.find(f"{{{ns.CLIENT}}}body") is not None


async def test_a_message_without_to_goes_to_the_senders_bare_jid(net: Net) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(H.PRE_MESSAGE)
    bare = net.record(H.MESSAGE_BARE)
    await net.router.route_from_session(alice, x("<message><body>note</body></message>"))
    assert pre[0].to_jid == JID.parse(f"alice@{DOMAIN}")
    assert bare[0].to_jid == JID.parse(f"alice@{DOMAIN}")


async def test_presence_without_to_is_left_to_the_pre_presence_hooks(net: Net) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    pre = net.record(H.PRE_PRESENCE)
    delivered = [net.record(name) for name in ALL_DELIVERY_HOOKS]
    await net.router.route_from_session(alice, x("<presence/>"))
    (event,) = pre
    assert event.to_jid is None
    assert all(d == [] for d in delivered)


# -- delivery by address --------------------------------------------------------


@pytest.mark.parametrize(
    ("stanza", "hook", "to"),
    [
        ("<message to='{to}'/>", H.MESSAGE_HOST, DOMAIN),
        ("<message to='{to}'/>", H.MESSAGE_BARE, f"bob@{DOMAIN}"),
        ("<message to='{to}'/>", H.MESSAGE_FULL, f"bob@{DOMAIN}/desk"),
        ("<presence to='{to}'/>", H.PRESENCE_HOST, DOMAIN),
        ("<presence to='{to}' type='probe'/>", H.PRESENCE_BARE, f"bob@{DOMAIN}"),
        ("<presence to='{to}'/>", H.PRESENCE_FULL, f"bob@{DOMAIN}/desk"),
    ],
)
async def test_delivery_hook_by_address(net: Net, stanza: str, hook: str, to: str) -> None:
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    recorded = {name: net.record(name) for name in ALL_DELIVERY_HOOKS}
    await net.router.route_from_session(alice, x(stanza.format(to=to)))
    assert {name: len(events) for name, events in recorded.items()} == {
        name: int(name == hook) for name in ALL_DELIVERY_HOOKS
    }
    (event,) = recorded[hook]
    assert event.to_jid == JID.parse(to)
    assert event.from_jid == alice.jid
    assert event.origin is alice


async def test_route_carries_server_generated_stanzas_without_origin(net: Net) -> None:
    full = net.record(H.MESSAGE_FULL)
    stanza = x(f"<message to='bob@{DOMAIN}/desk'/>")
    await net.router.route(
        stanza, from_jid=JID.parse(DOMAIN), to_jid=JID.parse(f"bob@{DOMAIN}/desk")
    )
    (event,) = full
    assert event.origin is None and event.from_jid == JID.parse(DOMAIN)


async def test_route_without_a_destination_does_nothing(net: Net) -> None:
    recorded = [net.record(name) for name in ALL_DELIVERY_HOOKS]
    await net.router.route(x("<presence/>"), from_jid=JID.parse(f"a@{DOMAIN}/r"), to_jid=None)
    assert all(r == [] for r in recorded)


async def test_a_stanza_error_from_a_delivery_hook_is_answered_from_the_address(
    net: Net,
) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")

    def unavailable(event: StanzaEvent) -> bool:
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    net.hooks.on(H.MESSAGE_BARE, unavailable)
    await net.router.route_from_session(alice, x(f"<message id='m3' to='bob@{DOMAIN}'/>"))
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"
    assert (reply.get("from"), reply.get("to")) == (f"bob@{DOMAIN}", f"alice@{DOMAIN}/phone")


async def test_a_remote_domain_is_not_found_federation_is_off(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    recorded = [net.record(name) for name in ALL_DELIVERY_HOOKS]
    await net.router.route_from_session(alice, x("<message id='m4' to='bob@elsewhere.example'/>"))
    assert all(r == [] for r in recorded)
    (reply,) = sink.take()
    assert error_condition(reply) == "remote-server-not-found"
    assert reply.get("from") == "bob@elsewhere.example"


async def test_an_error_is_never_answered_with_an_error(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    await net.router.route_from_session(
        alice, x("<message type='error' id='e' to='bob@elsewhere.example'/>")
    )
    await net.router.route_from_session(
        alice, x("<iq type='result' id='r' to='bob@elsewhere.example'/>")
    )
    assert sink.take() == []


async def test_an_error_reply_for_a_sender_that_is_gone_is_dropped(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    stanza = x("<message id='m5' to='bob@elsewhere.example'/>")
    stanza.set("from", str(alice.jid))
    net.sessions.remove(alice)
    await net.router.route(
        stanza, from_jid=alice.jid, to_jid=JID.parse("bob@elsewhere.example"), origin=alice
    )
    assert sink.take() == []


# -- sub-domain services ----------------------------------------------------------


async def test_a_sub_domain_service_gets_every_stanza_for_its_domain(net: Net) -> None:
    calls: list[tuple[str, JID, JID, Session | None]] = []

    async def rooms(stanza: Element, from_jid: JID, to_jid: JID, origin: Session | None) -> None:
        calls.append((stanza.tag.rpartition("}")[2], from_jid, to_jid, origin))

    net.router.add_service(f"chat.{DOMAIN}", rooms)
    alice, _ = net.bind(f"alice@{DOMAIN}/phone")
    recorded = [net.record(name) for name in (*ALL_DELIVERY_HOOKS, H.PRE_IQ)]
    await net.router.route_from_session(alice, x(f"<presence to='icu@chat.{DOMAIN}/alice'/>"))
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='d' to='chat.{DOMAIN}'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    )
    assert [c[0] for c in calls] == ["presence", "iq"]
    assert calls[0][1:] == (alice.jid, JID.parse(f"icu@chat.{DOMAIN}/alice"), alice)
    assert calls[1][2] == JID.parse(f"chat.{DOMAIN}")
    assert recorded[:6] == [[]] * 6  # not delivered as a local address
    assert len(recorded[6]) == 1  # but pre-iq saw what the client sent


async def test_a_sub_domain_without_its_service_is_unavailable(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    await net.router.route_from_session(alice, x(f"<message id='m6' to='p1@patients.{DOMAIN}'/>"))
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"
    assert reply.get("from") == f"p1@patients.{DOMAIN}"


async def test_a_service_raising_a_stanza_error_fails_the_stanza(net: Net) -> None:
    async def forbidden(stanza: Element, f: JID, t: JID, origin: Session | None) -> None:
        raise StanzaError(StanzaCondition.FORBIDDEN)

    net.router.add_service(f"chat.{DOMAIN}", forbidden)
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    await net.router.route_from_session(alice, x(f"<message id='m7' to='icu@chat.{DOMAIN}'/>"))
    (reply,) = sink.take()
    assert error_condition(reply) == "forbidden"


async def test_services_only_for_our_sub_domains_and_one_each(net: Net) -> None:
    async def handler(stanza: Element, f: JID, t: JID, origin: Session | None) -> None:
        return None

    assert not net.router.service_domains
    with pytest.raises(ValueError, match="not a sub-domain"):
        net.router.add_service("chat.elsewhere.example", handler)
    with pytest.raises(ValueError, match="not a sub-domain"):
        net.router.add_service(DOMAIN, handler)
    net.router.add_service(f"patients.{DOMAIN}", handler)
    net.router.add_service(f"chat.{DOMAIN}", handler)
    with pytest.raises(ValueError, match="two services"):
        net.router.add_service(f"chat.{DOMAIN}", handler)
    assert net.router.service_domains == (f"chat.{DOMAIN}", f"patients.{DOMAIN}")


# -- IQ -------------------------------------------------------------------------


async def test_an_iq_to_the_server_is_answered_by_its_host_handler(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    seen = net.answer(VERSION, IqTarget.HOST, lambda r: make(VERSION, text="v1"))
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='v1' to='{DOMAIN}'><query xmlns='{ns.VERSION}'/></iq>")
    )
    (request,) = seen
    assert (request.type, request.payload.tag) == ("get", VERSION)
    assert request.from_jid == alice.jid and request.to_jid == JID.parse(DOMAIN)
    assert request.origin is alice
    (reply,) = sink.take()
    assert (reply.get("type"), reply.get("id")) == ("result", "v1")
    assert (reply.get("from"), reply.get("to")) == (DOMAIN, f"alice@{DOMAIN}/phone")
    assert reply.findtext(VERSION) == "v1"


async def test_an_iq_without_to_is_for_the_senders_own_account(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    own = net.answer(PING, IqTarget.ACCOUNT, lambda r: None)
    other = net.answer(PING, IqTarget.BARE, lambda r: None)
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='p1'><ping xmlns='{ns.PING}'/></iq>")
    )
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='p2' to='alice@{DOMAIN}'><ping xmlns='{ns.PING}'/></iq>")
    )
    assert [r.to_jid for r in own] == [JID.parse(f"alice@{DOMAIN}")] * 2
    assert other == []
    first, second = sink.take()
    # An empty result, addressed from the account itself (RFC 6120 §10.3.3).
    assert (first.get("type"), first.get("id"), len(first)) == ("result", "p1", 0)
    assert first.get("from") == f"alice@{DOMAIN}"
    assert (second.get("id"), second.get("from")) == ("p2", f"alice@{DOMAIN}")


async def test_an_iq_to_another_accounts_bare_jid_uses_the_bare_handler(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    own = net.answer(PING, IqTarget.ACCOUNT, lambda r: None)
    other = net.answer(PING, IqTarget.BARE, lambda r: None)
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='p3' to='bob@{DOMAIN}'><ping xmlns='{ns.PING}'/></iq>")
    )
    assert own == [] and len(other) == 1
    (reply,) = sink.take()
    assert (reply.get("type"), reply.get("from")) == ("result", f"bob@{DOMAIN}")


@pytest.mark.parametrize("to", [DOMAIN, f"bob@{DOMAIN}", None])
async def test_an_iq_nobody_handles_is_service_unavailable(net: Net, to: str | None) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    # A handler for another type, and one for another target, do not count.
    net.iq.register(PING, _never, types=("set",), targets=tuple(IqTarget))
    to_attr = f" to='{to}'" if to else ""
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='u'{to_attr}><ping xmlns='{ns.PING}'/></iq>")
    )
    (reply,) = sink.take()
    assert (reply.get("type"), reply.get("id")) == ("error", "u")
    assert error_condition(reply) == "service-unavailable"
    # The payload of an IQ is not echoed in its error.
    assert reply.find(PING) is None


async def _never(request: IqRequest) -> Element | None:
    raise AssertionError("this handler must not run")


async def test_a_stanza_error_from_an_iq_handler_becomes_the_reply(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")

    def missing(request: IqRequest) -> Element | None:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such thing")

    net.answer(VERSION, IqTarget.HOST, missing)
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='nf' to='{DOMAIN}'><query xmlns='{ns.VERSION}'/></iq>")
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "item-not-found"
    assert reply.get("from") == DOMAIN


async def test_a_crashing_iq_handler_is_an_internal_server_error(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")

    def crash(request: IqRequest) -> Element | None:
        raise KeyError("bug")

    net.answer(VERSION, IqTarget.HOST, crash)
    with caplog.at_level(logging.ERROR, logger="carewire.core.router"):
        await net.router.route_from_session(
            alice, x(f"<iq type='get' id='ie' to='{DOMAIN}'><query xmlns='{ns.VERSION}'/></iq>")
        )
    (reply,) = sink.take()
    assert error_condition(reply) == "internal-server-error"
    assert "IQ handler" in caplog.text and "KeyError" in caplog.text


async def test_an_iq_to_a_full_jid_goes_to_that_resource(net: Net) -> None:
    alice, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    _, bob_sink = net.bind(f"bob@{DOMAIN}/desk")
    handlers = net.answer(PING, IqTarget.BARE, lambda r: None)
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='f1' to='bob@{DOMAIN}/desk'><ping xmlns='{ns.PING}'/></iq>")
    )
    assert handlers == []
    (got,) = bob_sink.take()
    assert (got.get("id"), got.get("from")) == ("f1", f"alice@{DOMAIN}/phone")
    assert got.find(PING) is not None
    assert alice_sink.take() == []


async def test_an_iq_to_an_absent_resource_is_service_unavailable(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='f2' to='bob@{DOMAIN}/gone'><ping xmlns='{ns.PING}'/></iq>")
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"
    assert reply.get("from") == f"bob@{DOMAIN}/gone"


async def test_iq_responses_to_a_full_jid_are_delivered_or_dropped(net: Net) -> None:
    _, alice_sink = net.bind(f"alice@{DOMAIN}/phone")
    bob, bob_sink = net.bind(f"bob@{DOMAIN}/desk")
    await net.router.route_from_session(
        bob, x(f"<iq type='result' id='f1' to='alice@{DOMAIN}/phone'/>")
    )
    (got,) = alice_sink.take()
    assert (got.get("type"), got.get("from")) == ("result", f"bob@{DOMAIN}/desk")
    await net.router.route_from_session(
        bob, x(f"<iq type='error' id='f3' to='alice@{DOMAIN}/gone'/>")
    )
    assert alice_sink.take() == [] and bob_sink.take() == []


# -- server-originated queries --------------------------------------------------


async def test_query_sends_an_iq_and_returns_the_sessions_answer(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    asking = asyncio.create_task(
        net.router.query(alice, x(f"<iq type='get'><ping xmlns='{ns.PING}'/></iq>"), timeout=5)
    )
    await asyncio.sleep(0)
    (sent,) = sink.take()
    iq_id = sent.get("id", "")
    assert iq_id.startswith("cw-")
    assert (sent.get("to"), sent.get("from")) == (f"alice@{DOMAIN}/phone", DOMAIN)
    await net.router.route_from_session(alice, x(f"<iq type='result' id='{iq_id}' to='{DOMAIN}'/>"))
    answer = await asyncio.wait_for(asking, 5)
    assert (answer.get("type"), answer.get("id")) == ("result", iq_id)
    assert answer.get("from") == f"alice@{DOMAIN}/phone"


async def test_query_ignores_answers_from_anyone_else_and_times_out(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    mallory, _ = net.bind(f"mallory@{DOMAIN}/x")
    asking = asyncio.create_task(
        net.router.query(alice, x(f"<iq type='get'><ping xmlns='{ns.PING}'/></iq>"), timeout=0.2)
    )
    await asyncio.sleep(0)
    (sent,) = sink.take()
    await net.router.route_from_session(
        mallory, x(f"<iq type='result' id='{sent.get('id')}' to='{DOMAIN}'/>")
    )
    assert not asking.done()
    with pytest.raises(TimeoutError):
        await asking
    # Once given up, a late answer finds nothing waiting (and is dropped quietly).
    await net.router.route_from_session(
        alice, x(f"<iq type='result' id='{sent.get('id')}' to='{DOMAIN}'/>")
    )
    assert sink.take() == []


# -- delivery to one session -------------------------------------------------------


async def test_deliver_runs_the_session_deliver_hook_and_send_from_server_does_not(
    net: Net,
) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    seen: list[DeliveryEvent] = []

    def drop_headlines(event: DeliveryEvent) -> None:
        seen.append(event)
        if event.stanza.get("type") == "headline":
            event.targets[0] = None

    net.router.deliver(alice, x("<message type='chat' id='before'/>"))
    net.hooks.on(H.SESSION_DELIVER, drop_headlines)
    net.router.deliver(alice, x("<message type='headline' id='dropped'/>"))
    net.router.deliver(alice, x("<message type='chat' id='kept'/>"))
    net.router.send_from_server(alice, x("<message type='headline' id='direct'/>"))
    assert [s.get("id") for s in sink.take()] == ["before", "kept", "direct"]
    assert [e.stanza.get("id") for e in seen] == ["dropped", "kept"]
    assert all(e.targets == [(alice, e.stanza)] for e in seen[1:])


async def test_iq_results_go_through_the_session_deliver_hook(net: Net) -> None:
    alice, sink = net.bind(f"alice@{DOMAIN}/phone")
    net.answer(PING, IqTarget.HOST, lambda r: None)
    net.hooks.on(H.SESSION_DELIVER, lambda event: event.targets.clear())
    await net.router.route_from_session(
        alice, x(f"<iq type='get' id='h' to='{DOMAIN}'><ping xmlns='{ns.PING}'/></iq>")
    )
    assert sink.take() == []
