"""A simulated SASL2 client on the real stream machine, no sockets (tests of XEP-0388/0484)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from scramp import ScramClient

from carewire.core.auth import Authenticator
from carewire.core.c2s import ClientConnection, ConnectionInfo, stream_config
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.parser import DEFAULT_LIMITS, parse_document
from carewire.xmpp.sasl2 import FAST, HT_NONE, SASL2, ht_initiator
from carewire.xmpp.stream import C2SStream
from tests.features.harness import Harness

HEADER = (
    f"<stream:stream xmlns='jabber:client' xmlns:stream='{ns.STREAM}' "
    "to='example.test' version='1.0'>"
)
SECRET = b"s" * 32
CB = b"\x01" * 32  # tls-server-end-point data of the test "certificate"
AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"
AGENT_XML = f"<user-agent id='{AGENT}'><software>Ward</software><device>Phone</device></user-agent>"


@dataclass(eq=False)
class StreamSink:
    """What net does: stanzas go into the stream, close closes it."""

    stream: C2SStream
    closed: list[StreamCondition | None] = field(default_factory=list)

    def send_element(self, element: Element) -> None:
        self.stream.send_element(element)

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        self.closed.append(condition)
        self.stream.close(condition, text)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def element(text: str, name: str) -> Element:
    """The first top-level ``<name>`` element the server wrote."""
    found = re.search(rf"<{name}[ >/]", text)
    assert found, f"no <{name}> in {text!r}"
    start = found.start()
    tag_end = text.index(">", start)
    if text[tag_end - 1] == "/":
        return parse_document(text[start : tag_end + 1])
    end = text.index(f"</{name}>", start) + len(name) + 3
    return parse_document(text[start:end])


def failure_of(text: str) -> tuple[str, str]:
    """(condition, text) of a SASL2 <failure/>."""
    failure = element(text, "failure")
    assert failure.tag == f"{{{SASL2}}}failure", text
    condition = next(c.tag.split("}")[1] for c in failure if c.tag.startswith(f"{{{ns.SASL}}}"))
    return condition, failure.findtext(f"{{{SASL2}}}text", "")


class Client:
    """One simulated connection speaking SASL2."""

    def __init__(self, h: Harness, auth: Authenticator, *, cb: bytes | None = CB) -> None:
        info = ConnectionInfo(
            remote_ip="192.0.2.9", transport="c2s-tls", is_tls_active=True, channel_binding=cb
        )
        self.stream = C2SStream(
            stream_config(h.kernel, info, allow_register=False, limits=DEFAULT_LIMITS)
        )
        self.conn = ClientConnection(
            kernel=h.kernel,
            auth=auth,
            stream=self.stream,
            sink=StreamSink(self.stream),
            info=info,
            fake_secret=SECRET,
        )
        self.features = ""

    async def feed(self, data: str) -> str:
        for event in self.stream.receive_data(data.encode()):
            await self.conn.handle(event)
        return b"".join(self.stream.data_to_send()).decode()

    async def open(self) -> str:
        self.features = await self.feed(HEADER)
        return self.features

    async def authenticate(self, mechanism: str, initial: bytes | None, inner: str = "") -> str:
        ir = f"<initial-response>{b64(initial)}</initial-response>" if initial is not None else ""
        return await self.feed(
            f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>{ir}{inner}</authenticate>"
        )

    async def scram(
        self, login: str, password: str, inner: str = "", *, mechanism: str = "SCRAM-SHA-256"
    ) -> str:
        """A full SCRAM exchange; returns what came after the client-final."""
        await self.open()
        client = ScramClient([mechanism], login, password)
        text = await self.authenticate(mechanism, client.get_client_first().encode(), inner)
        server_first = base64.b64decode(element(text, "challenge").text or "").decode()
        self.server_first = server_first
        client.set_server_first(server_first)
        final = b64(client.get_client_final())
        text = await self.feed(f"<response xmlns='{SASL2}'>{final}</response>")
        if "<success" in text:
            data = element(text, "success").findtext(f"{{{SASL2}}}additional-data", "")
            client.set_server_final(base64.b64decode(data).decode())  # verifies the server
        return text

    async def fast(
        self,
        login: str,
        token: str,
        inner: str = "",
        *,
        mechanism: str = HT_NONE,
        fast: str = "<fast xmlns='urn:xmpp:fast:0'/>",
        cb: bytes = b"",
    ) -> str:
        await self.open()
        proof = ht_initiator(token.encode(), cb)
        initial = login.encode() + b"\0" + proof
        return await self.authenticate(mechanism, initial, AGENT_XML + fast + inner)


def token_of(text: str) -> str:
    token = element(text, "success").find(f"{{{FAST}}}token")
    assert token is not None, text
    return token.get("token", "")


def features_of(text: str) -> Element:
    inner = text.split("<stream:features>", 1)[1].split("</stream:features>", 1)[0]
    return parse_document(f"<features>{inner}</features>")


REQUEST_TOKEN = f"<request-token xmlns='{FAST}' mechanism='{HT_NONE}'/>"
