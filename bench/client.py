"""A deliberately small XMPP client for load generation.

It speaks just enough of RFC 6120 to log in and exchange stanzas, and is
built to cost the generator as little CPU as possible:

* one :class:`asyncio.Protocol` per connection, no stream reader tasks;
* no XML parser: negotiation waits for the end tag of the one element it
  expects next (``</stream:features>``, ``<proceed/>``, ``</challenge>``, …),
  and an established session splits top-level stanzas with a regular
  expression and a ``find`` for the matching end tag (stanzas nested in
  stanzas of the same name, e.g. carbons, are not supported);
* SCRAM with the PBKDF2 result cached per ``(hash, password, salt,
  iterations)``, so the expensive key derivation runs once per account and
  each login costs two HMACs;
* TLS 1.3 with certificate verification off (loopback benchmarks against a
  self-signed certificate only).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_PING = "urn:xmpp:ping"

MECHANISMS = ("SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN")

_STREAM_TROUBLE = re.compile(
    rb"<stream:error[\s>/]|<error\s+xmlns=['\"]http://etherx\.jabber\.org/streams['\"]|</stream:stream\s*>"
)
_MECHANISM = re.compile(rb"<mechanism>\s*([^<\s]+)\s*</mechanism>")
_ATTR_ID = re.compile(rb"""\sid=(['"])(.*?)\1""")
_ATTR_TYPE = re.compile(rb"""\stype=(['"])(.*?)\1""")
_JID = re.compile(rb"<jid>([^<]+)</jid>")
# Start of a top-level stanza (or of a stream error / the stream end) in an established stream.
_TOP = re.compile(rb"<(message|presence|iq|stream:error|/stream:stream)[\s/>]")


class XmppError(Exception):
    """The server refused something or broke the protocol; ``str()`` says what it sent."""


class StreamError(XmppError):
    """The server sent a stream error or closed the stream."""


def _ends(*names: str) -> re.Pattern[bytes]:
    """Pattern matching the end of any element named ``names`` (any prefix, or self-closing)."""
    alt = "|".join(re.escape(n) for n in names)
    return re.compile(
        rf"</(?:[\w.-]+:)?(?P<a>{alt})\s*>|<(?:[\w.-]+:)?(?P<b>{alt})\b[^>]*/>".encode()
    )


_FEATURES_END = _ends("features")
_TLS_ANSWER = _ends("proceed", "failure")
_SASL_ANSWER = _ends("challenge", "success", "failure")
_IQ_END = _ends("iq")


def _text(chunk: bytes, name: str) -> bytes:
    """Character data of the first element ``name`` in ``chunk`` (empty when self-closing)."""
    m = re.search(rf"<(?:[\w.-]+:)?{re.escape(name)}\b[^>]*?(/?)>([^<]*)".encode(), chunk)
    if m is None or m.group(1):
        return b""
    return m.group(2).strip()


def _snippet(data: bytes | bytearray, limit: int = 300) -> str:
    text = bytes(data[:limit]).decode("utf-8", "replace")
    return text + ("…" if len(data) > limit else "")


def xml_escape(text: str) -> str:
    """Escape character data / attribute values (quotes included)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )


# -- SCRAM (RFC 5802 / RFC 7677) --------------------------------------------------


@lru_cache(maxsize=1 << 16)
def scram_keys(
    hash_name: str, password: str, salt: bytes, iterations: int
) -> tuple[bytes, bytes, bytes]:
    """``(ClientKey, StoredKey, ServerKey)``: PBKDF2 runs once per distinct argument tuple."""
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", hash_name)
    return client_key, stored_key, server_key


class ScramClient:
    """Client side of one SCRAM-SHA-1 / SCRAM-SHA-256 exchange, without channel binding."""

    GS2_HEADER = b"n,,"

    def __init__(self, mechanism: str, username: str, password: str) -> None:
        self.hash_name = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
        self.password = password
        user = username.replace("=", "=3D").replace(",", "=2C")
        self.nonce = base64.b64encode(secrets.token_bytes(18))
        self.client_first_bare = b"n=" + user.encode("utf-8") + b",r=" + self.nonce
        self._server_signature = b""

    def first(self) -> bytes:
        """The client-first-message."""
        return self.GS2_HEADER + self.client_first_bare

    def final(self, server_first: bytes) -> bytes:
        """The client-final-message for ``server_first``."""
        attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
        nonce, salt, iterations = attrs[b"r"], base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
        if not nonce.startswith(self.nonce):
            raise XmppError("SCRAM: server nonce does not extend the client nonce")
        client_key, stored_key, server_key = scram_keys(
            self.hash_name, self.password, salt, iterations
        )
        without_proof = b"c=" + base64.b64encode(self.GS2_HEADER) + b",r=" + nonce
        auth_message = self.client_first_bare + b"," + server_first + b"," + without_proof
        signature = hmac.digest(stored_key, auth_message, self.hash_name)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = hmac.digest(server_key, auth_message, self.hash_name)
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify(self, server_final: bytes) -> None:
        """Check the server signature of the server-final-message."""
        if server_final.startswith(b"e="):
            raise XmppError(f"SCRAM: server error {server_final.decode(errors='replace')}")
        if not server_final.startswith(b"v=") or not hmac.compare_digest(
            base64.b64decode(server_final[2:]), self._server_signature
        ):
            raise XmppError("SCRAM: bad server signature")


# -- connection -----------------------------------------------------------------------


def client_ssl_context() -> ssl.SSLContext:
    """TLS 1.3 only, no certificate verification (self-signed server on loopback)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


@dataclass(slots=True)
class ClientConfig:
    """Where and how to connect."""

    host: str
    port: int
    domain: str
    direct_tls: bool = False
    mechanism: str = "SCRAM-SHA-1"
    resource: str = "bench"
    ssl_context: ssl.SSLContext = field(default_factory=client_ssl_context)


class XmppProtocol(asyncio.Protocol):
    """Bytes of one connection: a buffer during negotiation, a stanza splitter after it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None
        self.stanza_handler: Callable[[bytes, bytes], None] | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.stanza_handler is not None:
            self._split()
        else:
            self._wake()

    def eof_received(self) -> bool | None:
        self.lost = self.lost or ConnectionResetError("server closed the connection")
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or exc or ConnectionResetError("connection closed")
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    # negotiation
    def write(self, data: bytes) -> None:
        """Send bytes (no-op once the connection is gone)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def expect(self, pattern: re.Pattern[bytes]) -> tuple[bytes, bytes]:
        """Wait until ``pattern`` (made by :func:`_ends`) matches the input.

        Consumes everything up to the end of the match; returns the name of the
        element that ended and the consumed bytes.
        """
        while True:
            m = pattern.search(self.buf)
            if m is not None:
                name = bytes(m.group("a") or m.group("b"))  # copy before the buffer changes
                chunk = bytes(self.buf[: m.end()])
                del self.buf[: m.end()]
                return name, chunk
            if _STREAM_TROUBLE.search(self.buf):
                raise StreamError(f"stream error: {_snippet(self.buf, 600)}")
            if self.lost is not None:
                raise ConnectionResetError(f"{self.lost} (received: {_snippet(self.buf)!r})")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    # established stream
    def _split(self) -> None:
        buf = self.buf
        handler = self.stanza_handler
        assert handler is not None
        pos = 0
        while True:
            m = _TOP.search(buf, pos)
            if m is None:
                # Keep a possible partial start tag at the end of the buffer.
                cut = buf.rfind(b"<", pos)
                pos = cut if cut >= 0 else len(buf)
                break
            name = m.group(1)
            if name == b"/stream:stream":
                self.lost = self.lost or StreamError("server closed the stream")
                pos = m.end()
                continue
            gt = buf.find(b">", m.end() - 1)
            if gt < 0:
                pos = m.start()
                break
            if buf[gt - 1] == 0x2F:  # b"/": self-closing stanza
                end = gt + 1
            else:
                close = buf.find(b"</" + name + b">", gt)
                if close < 0:
                    pos = m.start()
                    break
                end = close + len(name) + 3
            handler(name, bytes(buf[m.start() : end]))
            pos = end
        if pos:
            del buf[:pos]


@dataclass(slots=True)
class LoginTimings:
    """Monotonic timestamps (``time.perf_counter``) of the phases of one login."""

    start: float = 0.0
    connected: float = 0.0
    tls: float = 0.0
    authed: float = 0.0
    bound: float = 0.0
    ready: float = 0.0


class Session:
    """A logged-in, bound client stream."""

    def __init__(self, proto: XmppProtocol, jid: str, timings: LoginTimings) -> None:
        self.proto = proto
        self.jid = jid
        self.bare = jid.split("/", 1)[0]
        self.timings = timings
        self.on_message: Callable[[bytes], None] | None = None
        self.received: dict[bytes, int] = {b"message": 0, b"presence": 0, b"iq": 0}
        self.stream_error: bytes | None = None
        self._iq: dict[bytes, asyncio.Future[bytes]] = {}
        self._iq_seq = 0
        proto.stanza_handler = self._stanza
        if proto.buf:
            proto._split()

    @property
    def alive(self) -> bool:
        """Whether the connection is still up."""
        return self.proto.lost is None

    def send(self, data: bytes) -> None:
        """Write raw stanza bytes."""
        self.proto.write(data)

    def _stanza(self, name: bytes, data: bytes) -> None:
        if name == b"message":
            self.received[b"message"] += 1
            if self.on_message is not None:
                self.on_message(data)
            return
        if name == b"iq":
            self.received[b"iq"] += 1
            head = data[: data.find(b">") + 1]
            t = _ATTR_TYPE.search(head)
            i = _ATTR_ID.search(head)
            typ = t.group(2) if t else b""
            iq_id = i.group(2) if i else b""
            if typ in (b"result", b"error"):
                fut = self._iq.pop(iq_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            elif typ == b"get" and NS_PING.encode() in data:
                self.send(b"<iq type='result' id='" + iq_id + b"'/>")
            elif typ in (b"get", b"set"):
                self.send(
                    b"<iq type='error' id='" + iq_id + b"'><error type='cancel'>"
                    b"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                    b"</error></iq>"
                )
            return
        if name == b"presence":
            self.received[b"presence"] += 1
            return
        # stream:error
        self.stream_error = data
        self.proto.lost = self.proto.lost or StreamError(_snippet(data))

    async def iq(self, payload: str, type_: str = "get", *, to: str | None = None) -> bytes:
        """Send an IQ (to the own account, or to ``to``) and wait for its result or error."""
        self._iq_seq += 1
        iq_id = f"q{self._iq_seq}"
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._iq[iq_id.encode()] = fut
        address = f" to='{to}'" if to else ""
        self.send(f"<iq type='{type_}' id='{iq_id}'{address}>{payload}</iq>".encode())
        return await fut

    async def ping(self) -> bytes:
        """XEP-0199 ping of the server; raises :class:`XmppError` on an error reply."""
        answer = await self.iq(f"<ping xmlns='{NS_PING}'/>")
        t = _ATTR_TYPE.search(answer[: answer.find(b">") + 1])
        if t is None or t.group(2) != b"result":
            raise XmppError(f"ping failed: {_snippet(answer)}")
        return answer

    def close(self) -> None:
        """End the stream and close the connection (no waiting)."""
        self.proto.write(b"</stream:stream>")
        if self.proto.transport is not None:
            self.proto.transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self.proto.transport is not None:
            self.proto.transport.abort()


def _header(domain: str) -> bytes:
    return (
        f"<?xml version='1.0'?><stream:stream to='{xml_escape(domain)}' version='1.0' "
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    ).encode()


async def _sasl(
    proto: XmppProtocol, features: bytes, cfg: ClientConfig, user: str, password: str
) -> None:
    offered = {m.decode() for m in _MECHANISM.findall(features)}
    if cfg.mechanism not in offered:
        raise XmppError(f"server does not offer {cfg.mechanism} (offers {sorted(offered)})")
    scram = ScramClient(cfg.mechanism, user, password) if cfg.mechanism != "PLAIN" else None
    if scram is not None:
        initial = scram.first()
    else:
        initial = b"\0" + user.encode() + b"\0" + password.encode()
    proto.write(
        f"<auth xmlns='{NS_SASL}' mechanism='{cfg.mechanism}'>".encode()
        + base64.b64encode(initial)
        + b"</auth>"
    )
    while True:
        kind, chunk = await proto.expect(_SASL_ANSWER)
        if kind == b"failure":
            raise XmppError(f"SASL failure: {_snippet(chunk)}")
        payload = base64.b64decode(_text(chunk, kind.decode()))
        if kind == b"challenge":
            if scram is None:
                raise XmppError("unexpected SASL challenge for PLAIN")
            proto.write(
                f"<response xmlns='{NS_SASL}'>".encode()
                + base64.b64encode(scram.final(payload))
                + b"</response>"
            )
            continue
        if scram is not None:
            scram.verify(payload)
        return


async def login(
    cfg: ClientConfig,
    user: str,
    password: str,
    *,
    presence: bool = False,
    sync: bool = False,
) -> Session:
    """Connect, secure, authenticate and bind; optionally send initial presence.

    With ``sync`` the login also waits for a ping round trip after the
    presence, which proves the server has processed everything before it
    (the session is then routable). Raises on any failure; wrap in a timeout.
    """
    loop = asyncio.get_running_loop()
    t = LoginTimings(start=time.perf_counter())
    if cfg.direct_tls:
        _, proto = await loop.create_connection(
            XmppProtocol, cfg.host, cfg.port, ssl=cfg.ssl_context, server_hostname=cfg.domain
        )
        t.connected = t.tls = time.perf_counter()
    else:
        transport, proto = await loop.create_connection(XmppProtocol, cfg.host, cfg.port)
        t.connected = time.perf_counter()
        try:
            proto.write(_header(cfg.domain))
            _, features = await proto.expect(_FEATURES_END)
            if b"<starttls" not in features:
                raise XmppError(f"no STARTTLS offered: {_snippet(features)}")
            proto.write(f"<starttls xmlns='{NS_TLS}'/>".encode())
            kind, chunk = await proto.expect(_TLS_ANSWER)
            if kind != b"proceed":
                raise XmppError(f"STARTTLS refused: {_snippet(chunk)}")
            proto.buf.clear()
            new_transport = await loop.start_tls(
                transport, proto, cfg.ssl_context, server_hostname=cfg.domain
            )
            if new_transport is None:
                raise XmppError("TLS handshake produced no transport")
            proto.transport = new_transport
        except BaseException:
            transport.abort()
            raise
        t.tls = time.perf_counter()
    try:
        proto.write(_header(cfg.domain))
        _, features = await proto.expect(_FEATURES_END)
        await _sasl(proto, features, cfg, user, password)
        t.authed = time.perf_counter()
        proto.write(_header(cfg.domain))
        _, features = await proto.expect(_FEATURES_END)
        if b"bind" not in features:
            raise XmppError(f"no resource binding offered: {_snippet(features)}")
        proto.write(
            f"<iq type='set' id='bind1'><bind xmlns='{NS_BIND}'><resource>"
            f"{xml_escape(cfg.resource)}</resource></bind></iq>".encode()
        )
        _, answer = await proto.expect(_IQ_END)
        start = answer.rfind(b"<iq")
        iq = answer[start:] if start >= 0 else answer
        typ = _ATTR_TYPE.search(iq[: iq.find(b">") + 1])
        jid = _JID.search(iq)
        if typ is None or typ.group(2) != b"result" or jid is None:
            raise XmppError(f"bind failed: {_snippet(iq)}")
        t.bound = time.perf_counter()
        session = Session(proto, jid.group(1).decode(), t)
        if presence:
            session.send(b"<presence/>")
        if sync:
            await session.ping()
        t.ready = time.perf_counter()
        return session
    except BaseException:
        if proto.transport is not None:
            proto.transport.abort()
        raise
