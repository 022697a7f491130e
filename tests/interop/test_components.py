"""External components (XEP-0114) against a real server: slixmpp's ComponentXMPP and raw sockets.

One server subprocess for the module, configured with twenty component domains
(``gw0`` … ``gw19``, one per test so no test waits for another's stream to go)
and one whose secret comes from the environment. slixmpp clients talk to
slixmpp components through it; raw sockets send what no library would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import slixmpp
from slixmpp import JID

from carewire.xmpp.component import handshake_digest
from tests.interop.slix import SlixClient
from tests.serverproc import DOMAIN, RunningServer, init_data_dir, server_env, serving

pytestmark = pytest.mark.interop

SECRET = "component-secret-0123456789"
ENV_SECRET = "another-secret-from-the-environment"
GATEWAYS = [f"gw{n}.{DOMAIN}" for n in range(20)]
ENV_GATEWAY = f"pager.{DOMAIN}"
MAX_STANZA = 20_000
TIMEOUT = 10.0
Factory = Callable[..., Awaitable[SlixClient]]


@pytest.fixture(scope="module")
def cserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("components")
    env = server_env(
        {
            "CAREWIRE_COMPONENTS_PORT": "0",
            "CAREWIRE_COMPONENTS_MAX_STANZA_BYTES": str(MAX_STANZA),
            "PAGER_COMPONENT_SECRET": ENV_SECRET,
        }
    )
    init_data_dir(data_dir, accounts=30, env=env)
    secrets = "".join(f'"{gw}" = "{SECRET}"\n' for gw in GATEWAYS)
    with (data_dir / "carewire.toml").open("a") as f:
        f.write(
            f"\n[components.secrets]\n{secrets}\n"
            f'[[components.component]]\ndomain = "{ENV_GATEWAY}"\n'
            'secret_env = "PAGER_COMPONENT_SECRET"\n'
        )
    with serving(data_dir, accounts=30, env=env) as server:
        yield server


_gateways = itertools.count()


@pytest.fixture
def gw() -> str:
    """A component domain no other test uses."""
    return GATEWAYS[next(_gateways)]


class Component:
    """A connected slixmpp ComponentXMPP and what it received."""

    def __init__(self, xmpp: slixmpp.ComponentXMPP) -> None:
        self.xmpp = xmpp
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        xmpp.add_event_handler("message", self.messages.put_nowait)

    async def disconnect(self) -> None:
        if self.xmpp.transport is None:
            return
        try:
            await asyncio.wait_for(self.xmpp.disconnect(wait=5), TIMEOUT)
        finally:
            if self.xmpp.transport is not None:
                self.xmpp.abort()
            await asyncio.sleep(0)


@pytest.fixture
async def attach(cserver: RunningServer) -> AsyncIterator[Callable[..., Awaitable[Component]]]:
    """``await attach(domain)``: a slixmpp component attached (all disconnected after)."""
    made: list[Component] = []

    async def make(domain: str, secret: str = SECRET) -> Component:
        port = cserver.ports["component"]
        xmpp = slixmpp.ComponentXMPP(domain, secret, "127.0.0.1", port)  # type: ignore[no-untyped-call]
        xmpp.register_plugin("xep_0030")
        comp = Component(xmpp)
        made.append(comp)
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        xmpp.add_event_handler(
            "session_start", lambda _e: None if started.done() else started.set_result(None)
        )
        xmpp.connect()
        await asyncio.wait_for(started, TIMEOUT)
        return comp

    try:
        yield make
    finally:
        await asyncio.gather(*(c.disconnect() for c in made), return_exceptions=True)


class Raw:
    """A component connection driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = ""

    @classmethod
    async def open(cls, server: RunningServer) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["component"])
        raw = cls(reader, writer)
        _open_raws.append(raw)
        return raw

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def until(self, pattern: str) -> re.Match[str]:
        """Read until ``pattern`` matches what arrived (bounded)."""

        async def loop() -> re.Match[str]:
            while (m := re.search(pattern, self.received)) is None:
                chunk = await self.reader.read(65536)
                assert chunk, f"connection closed; got {self.received!r}"
                self.received += chunk.decode()
            return m

        return await asyncio.wait_for(loop(), TIMEOUT)

    async def to_end(self) -> str:
        """Everything until the server closes the connection."""

        async def loop() -> str:
            while chunk := await self.reader.read(65536):
                self.received += chunk.decode()
            return self.received

        return await asyncio.wait_for(loop(), TIMEOUT)

    async def open_stream(self, domain: str) -> str:
        """Send the header for ``domain``; the stream id of the server's answer."""
        await self.send(
            "<stream:stream xmlns='jabber:component:accept' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
        )
        return (await self.until(r"<stream:stream [^>]*id='([^']+)'")).group(1)

    async def authenticate(self, domain: str, secret: str = SECRET) -> None:
        stream_id = await self.open_stream(domain)
        await self.send(f"<handshake>{handshake_digest(stream_id, secret)}</handshake>")
        await self.until(r"<handshake/>")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


_open_raws: list[Raw] = []


@pytest.fixture(autouse=True)
async def _close_raws() -> AsyncIterator[None]:
    """Close the raw connections a test opened (also when it fails)."""
    yield
    while _open_raws:
        await _open_raws.pop().close()


def stream_error(text: str) -> str:
    m = re.search(r"<stream:error><([a-z-]+) ", text)
    assert m is not None, text
    return m.group(1)


async def user(cserver: RunningServer, slix: Factory) -> SlixClient:
    """A fresh user, available (messages to the bare JID reach it) once this returns."""
    login, password = cserver.account()
    client = await slix(cserver, login, password)
    client.xmpp.send_presence()
    # An IQ round trip on the same stream: the presence was handled before its answer.
    await client.plugin["xep_0030"].get_info(jid=JID(DOMAIN), timeout=TIMEOUT)
    return client


def audit_lines(cserver: RunningServer) -> list[str]:
    r = cserver.cli("audit", "list", "--action", "component", "--limit", "200")
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


# -- stanzas both ways ----------------------------------------------------------------------


async def test_a_client_messages_the_component_and_gets_its_reply(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)

    def echo(msg: Any) -> None:
        if msg["type"] in ("chat", "normal"):
            msg.reply(f"echo: {msg['body']}").send()

    comp.xmpp.add_event_handler("message", echo)
    client = await user(cserver, slix)
    client.xmpp.send_message(mto=JID(f"bot@{gw}"), mbody="hello gateway", mtype="chat")
    got = await asyncio.wait_for(comp.messages.get(), TIMEOUT)
    assert got["from"] == client.jid and got["to"] == f"bot@{gw}"
    reply = await client.next(client.messages)
    assert reply["body"] == "echo: hello gateway"
    assert reply["from"].bare == f"bot@{gw}"


async def test_the_component_sends_to_a_user(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)
    client = await user(cserver, slix)
    comp.xmpp.send_message(
        mto=JID(client.jid.bare),
        mfrom=JID(f"alerts@{gw}/pager"),
        mbody="bed 12 calls",
        mtype="chat",
    )
    msg = await client.next(client.messages)
    assert msg["body"] == "bed 12 calls" and msg["from"] == f"alerts@{gw}/pager"


async def test_iq_round_trips(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)
    comp.xmpp.plugin["xep_0030"].add_identity(category="gateway", itype="sms", name="SMS")
    client = await user(cserver, slix)
    # A client asks the component; the component's answer comes back.
    info = await client.plugin["xep_0030"].get_info(jid=JID(gw), timeout=TIMEOUT)
    assert ("gateway", "sms", None, "SMS") in info["disco_info"]["identities"]
    # The component asks the server: its disco#items lists the attached component.
    items = await comp.xmpp.plugin["xep_0030"].get_items(
        jid=JID(DOMAIN), ifrom=JID(gw), timeout=TIMEOUT
    )
    listed = {item[0] for item in items["disco_items"]["items"]}
    assert gw in listed and ENV_GATEWAY not in listed  # only components attached now
    # The component asks a user's bare JID (the server answers for the account).
    vinfo = await comp.xmpp.plugin["xep_0030"].get_info(
        jid=JID(client.jid.bare), ifrom=JID(gw), timeout=TIMEOUT
    )
    assert ("account", "registered", None, None) in vinfo["disco_info"]["identities"]


async def test_a_component_speaks_to_another_component(
    attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    first = await attach(gw)
    other = await attach(ENV_GATEWAY, ENV_SECRET)  # its secret came from the environment
    first.xmpp.send_message(
        mto=JID(f"x@{ENV_GATEWAY}"), mfrom=JID(f"a@{gw}"), mbody="between gateways"
    )
    got = await asyncio.wait_for(other.messages.get(), TIMEOUT)
    assert got["body"] == "between gateways" and got["from"] == f"a@{gw}"


async def test_a_disconnected_component_is_service_unavailable(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)
    client = await user(cserver, slix)
    await comp.disconnect()
    client.xmpp.send_message(mto=JID(f"bot@{gw}"), mbody="anyone there?", mtype="chat")
    error = await client.next(client.errors)
    assert error["error"]["condition"] == "service-unavailable"
    with pytest.raises(slixmpp.exceptions.IqError) as exc:
        await client.plugin["xep_0030"].get_info(jid=JID(gw), timeout=TIMEOUT)
    assert exc.value.iq["error"]["condition"] == "service-unavailable"
    # It comes back: stanzas reach it again.
    again = await attach(gw)
    client.xmpp.send_message(mto=JID(f"bot@{gw}"), mbody="welcome back", mtype="chat")
    got = await asyncio.wait_for(again.messages.get(), TIMEOUT)
    assert got["body"] == "welcome back"


# -- refusals and bad input -------------------------------------------------------------------


async def test_a_wrong_secret_is_not_authorized(cserver: RunningServer, gw: str) -> None:
    raw = await Raw.open(cserver)
    await raw.open_stream(gw)
    await raw.send(f"<handshake>{handshake_digest('not-the-id', SECRET)}</handshake>")
    assert stream_error(await raw.to_end()) == "not-authorized"
    assert SECRET not in cserver.log()
    lines = audit_lines(cserver)
    assert any("component.refused" in ln and gw in ln and "failure" in ln for ln in lines)


async def test_an_unknown_domain_is_host_unknown(cserver: RunningServer) -> None:
    raw = await Raw.open(cserver)
    await raw.send(
        "<stream:stream xmlns='jabber:component:accept' "
        "xmlns:stream='http://etherx.jabber.org/streams' to='nobody.example.org'>"
    )
    assert stream_error(await raw.to_end()) == "host-unknown"


async def test_a_second_stream_for_an_attached_domain_is_a_conflict(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)
    raw = await Raw.open(cserver)
    stream_id = await raw.open_stream(gw)
    await raw.send(f"<handshake>{handshake_digest(stream_id, SECRET)}</handshake>")
    assert stream_error(await raw.to_end()) == "conflict"
    # The component already attached keeps its stream.
    client = await user(cserver, slix)
    client.xmpp.send_message(mto=JID(f"bot@{gw}"), mbody="still you?", mtype="chat")
    assert (await asyncio.wait_for(comp.messages.get(), TIMEOUT))["body"] == "still you?"


async def test_spoofing_from_ends_only_that_stream(
    cserver: RunningServer, slix: Factory, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    client = await user(cserver, slix)
    other_gw = GATEWAYS[next(_gateways)]
    bystander = await attach(other_gw)
    raw = await Raw.open(cserver)
    await raw.authenticate(gw)
    await raw.send(
        f"<message from='{client.jid.bare}' to='{client.jid.bare}'><body>forged</body></message>"
    )
    assert stream_error(await raw.to_end()) == "invalid-from"
    # Nothing was delivered, and the client's and the other component's streams go on.
    client.xmpp.send_message(mto=JID(f"bot@{other_gw}"), mbody="are you fine?", mtype="chat")
    assert (await asyncio.wait_for(bystander.messages.get(), TIMEOUT))["body"] == "are you fine?"
    assert client.messages.empty()


@pytest.mark.parametrize(
    ("after_header", "condition"),
    [
        ("<message to='someone@carewire.test'><body>early</body></message>", "not-authorized"),
        ("<<>", "not-well-formed"),
        ("<!-- a comment -->", "restricted-xml"),
    ],
)
async def test_bad_input_before_the_handshake(
    cserver: RunningServer, after_header: str, condition: str
) -> None:
    raw = await Raw.open(cserver)
    await raw.open_stream(GATEWAYS[-1])  # never attached by a test: the handshake never succeeds
    await raw.send(after_header)
    assert stream_error(await raw.to_end()) == condition


async def test_bad_input_after_the_handshake_ends_only_that_stream(
    cserver: RunningServer, slix: Factory, gw: str
) -> None:
    client = await user(cserver, slix)
    for bad, condition in (
        (f"<message to='{client.jid.bare}'><body>{'x' * MAX_STANZA}</body></message>", "policy"),
        ("<message to='a@carewire.test'><<", "not-well-formed"),
        ("<frobnicate xmlns='urn:x'/>", "unsupported-stanza-type"),
    ):
        raw = await Raw.open(cserver)
        await raw.authenticate(gw)
        await raw.send(bad)
        assert stream_error(await raw.to_end()).startswith(condition)
    assert client.xmpp.transport is not None  # the client's stream is untouched
    info = await client.plugin["xep_0030"].get_info(jid=JID(DOMAIN), timeout=TIMEOUT)
    assert info["type"] == "result"


async def test_stanzas_without_to_get_bad_request(cserver: RunningServer, gw: str) -> None:
    raw = await Raw.open(cserver)
    await raw.authenticate(gw)
    await raw.send(f"<iq type='get' id='q1' from='{gw}'><query xmlns='urn:x'/></iq>")
    m = await raw.until(r"<iq [^>]*type=\"error\"[^>]*>.*?</iq>")
    assert "bad-request" in m.group(0) and 'id="q1"' in m.group(0)
    await raw.send(f"<iq type='get' id='q2' to='{DOMAIN}'><query xmlns='urn:x'/></iq>")
    m = await raw.until(r"<iq [^>]*id=\"q2\"[^>]*>.*?</iq>")
    assert "service-unavailable" in m.group(0)  # answered to the component domain (no 'from')
    await raw.close()


async def test_connects_and_disconnects_are_audited(
    cserver: RunningServer, attach: Callable[..., Awaitable[Component]], gw: str
) -> None:
    comp = await attach(gw)
    await comp.disconnect()

    async def wait_for_disconnect() -> list[str]:
        while True:
            lines = [ln for ln in audit_lines(cserver) if gw in ln]
            if any("component.disconnect" in ln for ln in lines):
                return lines
            await asyncio.sleep(0.2)

    lines = await asyncio.wait_for(wait_for_disconnect(), TIMEOUT)
    assert any("component.connect" in ln and "success" in ln for ln in lines)


def test_the_listener_is_on_loopback(cserver: RunningServer) -> None:
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{cserver.ports['component']}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        pytest.skip("ss is not available")
    (line,) = out.stdout.splitlines()
    assert line.split()[3].startswith("127.0.0.1:")  # the local address


def test_without_components_nothing_listens(server: RunningServer) -> None:
    assert "component" not in server.ports and "c2s" in server.ports
