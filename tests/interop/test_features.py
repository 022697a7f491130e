"""Server features over a raw stream: roster versioning, presence, vCard, private storage,
blocking, entity time, version, in-band registration.

The raw client shows the exact stanzas, so these tests pin down what slixmpp
and aioxmpp hide (the version-match answer, error conditions, payloads).
"""

from __future__ import annotations

import asyncio
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.interop.helpers import own_server, raw_login
from tests.interop.rawclient import RawClient
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

NS_ROSTER = "jabber:iq:roster"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def parse(stanza: str) -> ET.Element:
    """One received stanza as an element (stanzas inherit jabber:client on the TCP stream)."""
    return ET.fromstring(stanza)


def error_condition(stanza: str) -> str | None:
    """The defined stanza-error condition of an error reply."""
    err = parse(stanza).find("error")
    if err is None:
        err = parse(stanza).find("{jabber:client}error")
    if err is None:
        return None
    for child in err:
        if child.tag.startswith(f"{{{NS_STANZAS}}}") and not child.tag.endswith("}text"):
            return child.tag.split("}", 1)[1]
    return None


def is_result(stanza: str) -> bool:
    return parse(stanza).get("type") == "result"


def presence_re(*, ptype: str | None = None, sender: str) -> re.Pattern[str]:
    """A received <presence/> start tag with this type (None: available) from ``sender``."""
    kind = rf"(?=[^>]*\btype=[\"']{ptype}[\"'])" if ptype else r"(?![^>]*\btype=)"
    return re.compile(rf"<presence\b{kind}(?=[^>]*\bfrom=[\"']{re.escape(sender)}[\"'])[^>]*>")


async def subscribe_both(a: RawClient, b: RawClient) -> None:
    """Mutual presence subscription between two raw sessions."""
    a_bare, b_bare = a.jid.split("/")[0], b.jid.split("/")[0]
    for x, y, x_bare, y_bare in ((a, b, a_bare, b_bare), (b, a, b_bare, a_bare)):
        await x.send(f"<presence to='{y_bare}' type='subscribe'/>")
        await y.read_until(presence_re(ptype="subscribe", sender=x_bare))
        await y.send(f"<presence to='{x_bare}' type='subscribed'/>")
        await x.read_until(presence_re(ptype="subscribed", sender=y_bare))


# -- SASL ------------------------------------------------------------------------------


async def _tls_stream(server: RunningServer, port: str) -> RawClient:
    """A secured, not yet authenticated stream on the STARTTLS or the direct-TLS port."""
    direct = port == "c2s_tls"
    client = await RawClient.connect(server.ports[port], domain=server.domain, direct_tls=direct)
    features = await client.open_stream()
    if not direct:
        features = await client.starttls()
    for mech in ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1"):
        assert f"<mechanism>{mech}</mechanism>" in features, features
    return client


@pytest.mark.parametrize("port", ["c2s", "c2s_tls"])
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS"])
async def test_scram_plus_channel_binding(server: RunningServer, port: str, mechanism: str) -> None:
    """SCRAM-*-PLUS with tls-server-end-point succeeds, and the server proves the password too."""
    login, password = server.account()
    client = await _tls_stream(server, port)
    result = await client.auth_scram(login, password, mechanism)  # verifies server-final
    assert result.startswith("<success"), result
    await client.open_stream()
    client.jid = await client.bind()
    await client.end_stream()


async def test_scram_plus_with_wrong_binding_data_fails(server: RunningServer) -> None:
    """Channel-binding data of another certificate (a MITM) makes SCRAM-PLUS fail."""
    login, password = server.account()
    client = await _tls_stream(server, "c2s")
    result = await client.auth_scram(
        login, password, "SCRAM-SHA-256-PLUS", channel_binding=("tls-server-end-point", b"\0" * 32)
    )
    assert result.startswith("<failure"), result
    await client.aclose()


async def test_scram_downgrade_is_detected(server: RunningServer) -> None:
    """RFC 5802 §6: GS2 flag 'y' (client could bind, thinks the server cannot) fails here."""
    login, password = server.account()
    client = await _tls_stream(server, "c2s")
    assert client.ssl_object is not None
    result = await client.auth_scram(
        login,
        password,
        "SCRAM-SHA-256",
        channel_binding=("tls-server-end-point", client.ssl_object),
    )
    assert result.startswith("<failure"), result
    await client.aclose()


# -- roster ---------------------------------------------------------------------------


async def test_roster_versioning(server: RunningServer) -> None:
    """RFC 6121 §2.6: the version moves with each change; the current one gets an empty result."""
    client = await raw_login(server)
    contact, _ = server.account()
    first = parse(await client.iq("get", f"<query xmlns='{NS_ROSTER}'/>"))
    query = first.find(f"{{{NS_ROSTER}}}query")
    assert query is not None and query.get("ver") is not None, ET.tostring(first)
    v0 = query.get("ver")

    item = f"<item jid='{contact}@{server.domain}' name='Ward clerk'/>"
    assert is_result(await client.iq("set", f"<query xmlns='{NS_ROSTER}'>{item}</query>"))
    full = parse(await client.iq("get", f"<query xmlns='{NS_ROSTER}' ver='{v0}'/>"))
    query = full.find(f"{{{NS_ROSTER}}}query")
    assert query is not None, "an outdated version must get the roster (or pushes)"
    v1 = query.get("ver")
    assert v1 and v1 != v0, ET.tostring(full)
    assert [i.get("jid") for i in query] == [f"{contact}@{server.domain}"], ET.tostring(full)

    same = parse(await client.iq("get", f"<query xmlns='{NS_ROSTER}' ver='{v1}'/>"))
    assert same.get("type") == "result" and len(same) == 0, ET.tostring(same)
    await client.end_stream()


async def test_roster_set_with_two_items_is_bad_request(server: RunningServer) -> None:
    """RFC 6121 §2.3.3: a roster set must contain exactly one item."""
    client = await raw_login(server)
    items = "".join(f"<item jid='x{i}@{server.domain}'/>" for i in range(2))
    reply = await client.iq("set", f"<query xmlns='{NS_ROSTER}'>{items}</query>")
    assert error_condition(reply) == "bad-request", reply
    await client.end_stream()


# -- presence ----------------------------------------------------------------------------


async def test_presence_probe_and_unavailable_on_disconnect(server: RunningServer) -> None:
    """Contacts get available presence on login (probes) and unavailable when a session dies."""
    login, password = server.account()
    a = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    b = await raw_login(server, resource="b")
    for c in (a, b):
        await c.iq("get", f"<query xmlns='{NS_ROSTER}'/>")
        await c.send("<presence><priority>1</priority></presence>")
    await subscribe_both(a, b)

    # A second session of A comes online: the server probes B and tells it B's presence,
    # and B learns about the new resource.
    a2 = await RawClient.login(
        server.ports["c2s"], login, password, domain=server.domain, resource="a2"
    )
    await a2.send("<presence/>")
    await a2.read_until(presence_re(sender=b.jid))
    await b.read_until(presence_re(sender=a2.jid))

    # a2 vanishes without closing its stream: B gets unavailable presence for it.
    await a2.aclose()
    await b.read_until(presence_re(ptype="unavailable", sender=a2.jid))
    await a.end_stream()
    await b.end_stream()


# -- vCard, private storage ----------------------------------------------------------------


async def test_vcard_set_and_get(server: RunningServer) -> None:
    """XEP-0054: a user stores a vCard; the user and others can read it."""
    owner = await raw_login(server)
    other = await raw_login(server)
    name = f"Dr. {uuid.uuid4().hex[:6]}"
    vcard = f"<vCard xmlns='vcard-temp'><FN>{name}</FN><ROLE>Cardiology</ROLE></vCard>"
    assert is_result(await owner.iq("set", vcard))
    mine = await owner.iq("get", "<vCard xmlns='vcard-temp'/>")
    assert f"<FN>{name}</FN>" in mine, mine
    theirs = await other.iq("get", "<vCard xmlns='vcard-temp'/>", to=owner.jid.split("/")[0])
    assert f"<FN>{name}</FN>" in theirs and "Cardiology" in theirs, theirs
    await owner.end_stream()
    await other.end_stream()


async def test_private_xml_storage(server: RunningServer) -> None:
    """XEP-0049: private XML is stored per namespace and only for its owner."""
    owner = await raw_login(server)
    other = await raw_login(server)
    payload = "<prefs xmlns='urn:example:carewire:prefs'><theme>dark</theme></prefs>"
    assert is_result(await owner.iq("set", f"<query xmlns='jabber:iq:private'>{payload}</query>"))
    got = await owner.iq(
        "get",
        "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:carewire:prefs'/></query>",
    )
    assert "<theme>dark</theme>" in got, got
    denied = await other.iq(
        "get",
        "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:carewire:prefs'/></query>",
        to=owner.jid.split("/")[0],
    )
    assert parse(denied).get("type") == "error", denied
    assert "dark" not in denied
    await owner.end_stream()
    await other.end_stream()


# -- blocking --------------------------------------------------------------------------------


async def test_blocking(server: RunningServer) -> None:
    """XEP-0191: a blocked contact's messages are not delivered; unblocking restores them."""
    a = await raw_login(server, resource="a")
    b = await raw_login(server, resource="b")
    b_bare = b.jid.split("/")[0]
    assert is_result(
        await a.iq("set", f"<block xmlns='urn:xmpp:blocking'><item jid='{b_bare}'/></block>")
    )
    blocklist = await a.iq("get", "<blocklist xmlns='urn:xmpp:blocking'/>")
    assert b_bare in blocklist, blocklist

    await b.message(a.jid, "blocked-body")
    bounce = await b.read_until(re.compile(r"<message\b[^>]*type=\"error\".*?</message>", re.S))
    assert "service-unavailable" in bounce, bounce
    await a.message(b.jid, "to-blocked")
    refused = await a.read_until(re.compile(r"<message\b[^>]*type=\"error\".*?</message>", re.S))
    assert "not-acceptable" in refused and "urn:xmpp:blocking:errors" in refused, refused

    assert is_result(
        await a.iq("set", f"<unblock xmlns='urn:xmpp:blocking'><item jid='{b_bare}'/></unblock>")
    )
    await b.message(a.jid, "after-unblock")
    await a.read_message("after-unblock")
    assert "blocked-body" not in a.transcript
    await a.end_stream()
    await b.end_stream()


# -- time, version, unknown ---------------------------------------------------------------------


async def test_entity_time(server: RunningServer) -> None:
    """XEP-0202: the server tells its UTC time and offset."""
    client = await raw_login(server)
    reply = parse(await client.iq("get", "<time xmlns='urn:xmpp:time'/>", to=server.domain))
    assert reply.get("type") == "result", ET.tostring(reply)
    utc = reply.findtext("{urn:xmpp:time}time/{urn:xmpp:time}utc")
    tzo = reply.findtext("{urn:xmpp:time}time/{urn:xmpp:time}tzo")
    assert utc and tzo, ET.tostring(reply)
    assert re.fullmatch(r"[+-]\d\d:\d\d|Z", tzo), tzo
    when = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    assert abs(when - datetime.now(UTC)) < timedelta(minutes=1), utc
    await client.end_stream()


async def test_version_is_hidden_by_default(server: RunningServer) -> None:
    """XEP-0092 answers service-unavailable unless version_visible is set."""
    client = await raw_login(server)
    reply = await client.iq("get", "<query xmlns='jabber:iq:version'/>", to=server.domain)
    assert error_condition(reply) == "service-unavailable", reply
    await client.end_stream()


# -- in-band registration -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def options_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Registration on, version visible, offline messages kept only 2 s, contact addresses."""
    env = {
        "CAREWIRE_XMPP_REGISTER_ENABLED": "true",
        "CAREWIRE_XMPP_VERSION_VISIBLE": "true",
        "CAREWIRE_XMPP_OFFLINE_MESSAGE_TIMEOUT": "2s",
        "CAREWIRE_CONTACT_ADMIN": "mailto:xmpp@carewire.test,xmpp:admin@carewire.test",
    }
    with own_server(tmp_path_factory, "options", env, accounts=10) as server:
        yield server


async def test_version_when_visible(options_server: RunningServer) -> None:
    """With version_visible the server answers XEP-0092 with its name and version."""
    client = await raw_login(options_server)
    reply = parse(await client.iq("get", "<query xmlns='jabber:iq:version'/>", to=client.domain))
    assert reply.get("type") == "result", ET.tostring(reply)
    assert reply.findtext("{jabber:iq:version}query/{jabber:iq:version}name"), ET.tostring(reply)
    assert reply.findtext("{jabber:iq:version}query/{jabber:iq:version}version")
    await client.end_stream()


async def test_offline_messages_expire(options_server: RunningServer) -> None:
    """A stored message older than offline_message_timeout is not delivered; a fresh one is."""
    server = options_server
    sender = await raw_login(server)
    login, password = server.account()
    bare = f"{login}@{server.domain}"
    await sender.message(bare, "stale-message")
    await asyncio.sleep(2.5)
    await sender.message(bare, "fresh-message")
    assert is_result(await sender.ping())  # both are stored before the recipient logs in
    recipient = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    await recipient.send("<presence/>")
    fresh = await recipient.read_message("fresh-message")
    fresh += await recipient.read_until("</message>")
    assert "urn:xmpp:delay" in fresh, fresh
    assert "stale-message" not in recipient.transcript
    await recipient.end_stream()
    await sender.end_stream()


async def test_registration_is_off_by_default(server: RunningServer) -> None:
    """Without register_enabled the feature is not advertised and a register IQ is refused."""
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    features = await client.starttls()
    assert "iq-register" not in features, features
    await client.send("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>")
    text = await client.read_until_closed()
    assert "<not-authorized" in text or "service-unavailable" in text, text
    await client.aclose()


async def test_in_band_registration(options_server: RunningServer) -> None:
    """XEP-0077: the form, a new account that can log in, a conflict for a taken name, and a
    password shorter than the console's minimum refused."""
    server = options_server
    login, password = f"reg{uuid.uuid4().hex[:8]}", "Secret-pw-1234"
    client = await RawClient.connect(server.ports["c2s"], domain=server.domain)
    await client.open_stream()
    features = await client.starttls()
    assert "http://jabber.org/features/iq-register" in features, features
    form = await client.iq("get", "<query xmlns='jabber:iq:register'/>")
    assert "<username" in form and "<password" in form, form
    fields = f"<username>{login}</username><password>{password}</password>"
    assert is_result(await client.iq("set", f"<query xmlns='jabber:iq:register'>{fields}</query>"))
    taken = await client.iq(
        "set",
        "<query xmlns='jabber:iq:register'><username>user0</username>"
        "<password>whatever-1234</password></query>",
    )
    assert error_condition(taken) == "conflict", taken
    short = await client.iq(
        "set",
        f"<query xmlns='jabber:iq:register'><username>{login}x</username>"
        "<password>Short-pw-1</password></query>",
    )
    assert error_condition(short) == "not-acceptable" and "at least 12" in short, short
    await client.aclose()
    new = await RawClient.login(
        server.ports["c2s"], login, password, domain=server.domain, mechanism="SCRAM-SHA-256"
    )
    assert new.jid.startswith(f"{login}@{server.domain}/")
    await new.end_stream()
    listed = await asyncio.to_thread(server.cli, "user", "list")
    assert f"{login}@{server.domain}" in listed.stdout, listed.stdout


async def test_contact_addresses_in_the_server_disco(
    options_server: RunningServer, slix: Callable[..., Awaitable[SlixClient]]
) -> None:
    """XEP-0157: slixmpp reads the serverinfo form the [contact] settings make."""
    login, password = options_server.account()
    client = await slix(options_server, login, password)
    info = await client.plugin["xep_0030"].get_info(jid=options_server.domain, timeout=10)
    [form] = info.xml.iter("{jabber:x:data}x")
    values = {
        f.get("var"): [v.text for v in f.iter("{jabber:x:data}value")]
        for f in form.iter("{jabber:x:data}field")
    }
    assert values == {
        "FORM_TYPE": ["http://jabber.org/network/serverinfo"],
        "admin-addresses": ["mailto:xmpp@carewire.test", "xmpp:admin@carewire.test"],
    }
