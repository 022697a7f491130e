"""SASL2 wire format, sans-IO (XEP-0388, with XEP-0386 Bind2, XEP-0484 FAST, XEP-0440, XEP-0474).

Theory of operation: this module only reads and writes elements. The stream
(:mod:`carewire.xmpp.stream`) turns a client's ``<authenticate/>`` into an
:class:`Authenticate` with :func:`parse_authenticate`; the kernel decides and
answers through the stream, which renders ``<challenge/>``, ``<success/>``
and ``<failure/>`` with the helpers here. It also holds the two small pieces
of cryptography that are protocol rather than policy: the HT-* token
mechanisms (draft-schmaus-kitten-sasl-ht, used by FAST) and the XEP-0474
downgrade-protection hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns

SASL2 = "urn:xmpp:sasl:2"
BIND2 = "urn:xmpp:bind:0"
FAST = "urn:xmpp:fast:0"
SASL_CB = "urn:xmpp:sasl-cb:0"
PIN = "urn:carewire:pin:0"

AUTHENTICATE = f"{{{SASL2}}}authenticate"
RESPONSE = f"{{{SASL2}}}response"
ABORT = f"{{{SASL2}}}abort"

#: FAST mechanisms (HT-SHA-256 with no channel binding, and with tls-server-end-point).
HT_NONE = "HT-SHA-256-NONE"
HT_ENDP = "HT-SHA-256-ENDP"
#: The channel binding each HT mechanism binds to (None: none).
HT_BINDINGS: dict[str, str | None] = {HT_NONE: None, HT_ENDP: "tls-server-end-point"}
#: Longest accepted user-agent id, tag and PIN (anything longer is garbage).
MAX_AGENT_ID = 128
MAX_TAG = 32
MAX_PIN = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class BindRequest:
    """XEP-0386 ``<bind/>``: the client's tag and the features to enable inline."""

    tag: str
    inline: tuple[Element, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FastUse:
    """XEP-0484 ``<fast/>``: the client authenticates with a token."""

    count: int | None
    is_invalidate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    """What a client's ``<authenticate/>`` asks for (XEP-0388 §Initiation)."""

    mechanism: str
    initial_response: bytes | None
    agent_id: str | None = None
    software: str = ""
    device: str = ""
    bind: BindRequest | None = None
    request_token: str | None = None  # the FAST mechanism a new token is for
    fast: FastUse | None = None
    resume: Element | None = None  # XEP-0198 <resume/> inline
    pin: str | None = None  # urn:carewire:pin:0, read only with a FAST token


class MalformedAuthenticate(ValueError):
    """The ``<authenticate/>`` is unusable; ``condition`` is the SASL failure to send."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


def decode_b64(text: str | None) -> bytes | None:
    """Strict base64 (whitespace around it allowed); None when invalid."""
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except ValueError:
        return None


def _text(parent: Element, tag: str, limit: int) -> str | None:
    child = parent.find(tag)
    if child is None:
        return None
    value = (child.text or "").strip()
    return value[:limit]


def parse_authenticate(element: Element) -> Authenticate:
    """The request in a client's ``<authenticate/>``.

    Raises:
        MalformedAuthenticate: no mechanism (``invalid-mechanism``), an initial
            response that is not base64 (``incorrect-encoding``), or a malformed
            FAST or user-agent element (``malformed-request``).
    """
    mechanism = element.get("mechanism", "")
    if not mechanism:
        raise MalformedAuthenticate("invalid-mechanism", "the mechanism attribute is required")
    initial: bytes | None = None
    ir = element.find(f"{{{SASL2}}}initial-response")
    if ir is not None:
        initial = decode_b64(ir.text)
        if initial is None:
            raise MalformedAuthenticate("incorrect-encoding", "initial-response is not base64")
    agent = element.find(f"{{{SASL2}}}user-agent")
    agent_id = software = device = None
    if agent is not None:
        agent_id = agent.get("id")
        if agent_id is not None and not 0 < len(agent_id) <= MAX_AGENT_ID:
            raise MalformedAuthenticate("malformed-request", "user-agent id is too long or empty")
        software = _text(agent, f"{{{SASL2}}}software", 64)
        device = _text(agent, f"{{{SASL2}}}device", 64)
    return Authenticate(
        mechanism=mechanism,
        initial_response=initial,
        agent_id=agent_id,
        software=software or "",
        device=device or "",
        bind=_bind(element.find(f"{{{BIND2}}}bind")),
        request_token=_request_token(element.find(f"{{{FAST}}}request-token")),
        fast=_fast(element.find(f"{{{FAST}}}fast")),
        resume=element.find(f"{{{ns.SM}}}resume"),
        pin=_pin(element.find(f"{{{PIN}}}pin")),
    )


def parse_offered(element: Element, offer: Offer) -> Authenticate:
    """:func:`parse_authenticate`, and the mechanism must be one ``offer`` announced.

    Raises:
        MalformedAuthenticate: as :func:`parse_authenticate`; ``invalid-mechanism``
            for a mechanism not offered.
    """
    request = parse_authenticate(element)
    # XEP-0388: "If the mechanism ... [is] not previously announced by the
    # server in the stream feature, the server MUST fail the authentication."
    if request.mechanism not in offer.mechanisms and request.mechanism not in offer.fast:
        raise MalformedAuthenticate("invalid-mechanism", "")
    return request


def _bind(bind: Element | None) -> BindRequest | None:
    if bind is None:
        return None
    tag = _text(bind, f"{{{BIND2}}}tag", 1024) or ""
    inline = tuple(child for child in bind if child.tag != f"{{{BIND2}}}tag")
    return BindRequest(tag=tag[:MAX_TAG], inline=inline)


def _request_token(req: Element | None) -> str | None:
    if req is None:
        return None
    mechanism = req.get("mechanism", "")
    if mechanism not in HT_BINDINGS:
        raise MalformedAuthenticate("invalid-mechanism", "request-token names no FAST mechanism")
    return mechanism


def _fast(fast: Element | None) -> FastUse | None:
    if fast is None:
        return None
    count_text = fast.get("count")
    count: int | None = None
    if count_text is not None:
        if not count_text.isascii() or not count_text.isdigit() or len(count_text) > 10:
            raise MalformedAuthenticate("malformed-request", "count must be a positive integer")
        count = int(count_text)
    return FastUse(count=count, is_invalidate=fast.get("invalidate") in ("1", "true"))


def _pin(pin: Element | None) -> str | None:
    if pin is None:
        return None
    value = (pin.text or "").strip()
    if not value or len(value) > MAX_PIN:
        raise MalformedAuthenticate("malformed-request", "the PIN element is empty or too long")
    return value


# -- HT-* token mechanisms (draft-schmaus-kitten-sasl-ht) -----------------------


def ht_initiator(token: bytes, cb_data: bytes = b"") -> bytes:
    """The client's proof: HMAC-SHA-256 keyed by the token over "Initiator" + binding data."""
    return hmac.new(token, b"Initiator" + cb_data, hashlib.sha256).digest()


def ht_responder(token: bytes, cb_data: bytes = b"") -> bytes:
    """The server's proof, sent as the success's additional data."""
    return hmac.new(token, b"Responder" + cb_data, hashlib.sha256).digest()


def split_ht_response(initial: bytes | None) -> tuple[str, bytes]:
    """``authcid NUL initiator-hashed-token`` of an HT initial response.

    Raises:
        MalformedAuthenticate: missing, not split by one NUL, or not UTF-8.
    """
    if not initial:
        raise MalformedAuthenticate("malformed-request", "FAST needs an initial response")
    name, sep, proof = initial.partition(b"\x00")
    if not sep or not name or len(proof) != hashlib.sha256().digest_size:
        raise MalformedAuthenticate("malformed-request", "expected authcid NUL HMAC-SHA-256")
    try:
        return name.decode("utf-8"), proof
    except UnicodeDecodeError:
        raise MalformedAuthenticate("malformed-request", "authcid is not UTF-8") from None


# -- XEP-0474 SASL SCRAM Downgrade Protection -----------------------------------


def ssdp_hash(mechanisms: Iterable[str], channel_bindings: Sequence[str] | None, hf: str) -> str:
    """The ``h`` attribute: base64 of H(sorted mechanisms 0x1E-joined [0x1F sorted bindings]).

    ``channel_bindings`` is None when the server did not advertise XEP-0440.
    """
    text = "\x1e".join(sorted(mechanisms))
    if channel_bindings is not None:
        text += "\x1f" + "\x1e".join(sorted(channel_bindings))
    return base64.b64encode(hashlib.new(hf, text.encode("ascii")).digest()).decode("ascii")


# -- what the server advertises and answers ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """What the ``<authentication/>`` feature offers (empty ``fast``: no FAST)."""

    mechanisms: tuple[str, ...]
    fast: tuple[str, ...] = ()
    bind_inline: tuple[str, ...] = ()  # XEP-0386 inline features (namespaces)
    is_sm_inline: bool = False  # XEP-0198 resumption inside <authenticate/>
    channel_bindings: tuple[str, ...] = ()  # XEP-0440


def offer_features(offer: Offer) -> list[Element]:
    """``<authentication/>`` and (when any) ``<sasl-channel-binding/>``."""
    auth = Element(f"{{{SASL2}}}authentication")
    for m in offer.mechanisms:
        SubElement(auth, f"{{{SASL2}}}mechanism").text = m
    inline = SubElement(auth, f"{{{SASL2}}}inline")
    bind = SubElement(inline, f"{{{BIND2}}}bind")
    if offer.bind_inline:
        features = SubElement(bind, f"{{{BIND2}}}inline")
        for var in offer.bind_inline:
            SubElement(features, f"{{{BIND2}}}feature", {"var": var})
    if offer.is_sm_inline:
        SubElement(inline, f"{{{ns.SM}}}sm")
    if offer.fast:
        fast = SubElement(inline, f"{{{FAST}}}fast")
        for m in offer.fast:
            SubElement(fast, f"{{{FAST}}}mechanism").text = m
    out = [auth]
    if offer.channel_bindings:
        cb = Element(f"{{{SASL_CB}}}sasl-channel-binding")
        for kind in offer.channel_bindings:
            SubElement(cb, f"{{{SASL_CB}}}channel-binding", {"type": kind})
        out.append(cb)
    return out


def encode_b64(data: bytes) -> str:
    """SASL2 data: plain base64 (an empty string for no data)."""
    return base64.b64encode(data).decode("ascii")


def success_element(
    identifier: str, additional: bytes | None, extra: Iterable[Element] = ()
) -> Element:
    """``<success/>`` with the authorization identifier and inline results."""
    success = Element(f"{{{SASL2}}}success")
    if additional:
        SubElement(success, f"{{{SASL2}}}additional-data").text = encode_b64(additional)
    SubElement(success, f"{{{SASL2}}}authorization-identifier").text = identifier
    for child in extra:
        success.append(child)
    return success


def failure_element(condition: str, text: str = "") -> Element:
    """``<failure/>`` with an RFC 6120 §6.5 condition and optional text."""
    failure = Element(f"{{{SASL2}}}failure")
    SubElement(failure, f"{{{ns.SASL}}}{condition}")
    if text:
        SubElement(failure, f"{{{SASL2}}}text").text = text
    return failure


def challenge_element(data: bytes) -> Element:
    """``<challenge/>`` with base64 data."""
    challenge = Element(f"{{{SASL2}}}challenge")
    challenge.text = encode_b64(data)
    return challenge


def token_element(token: str, expiry: str) -> Element:
    """XEP-0484 ``<token/>`` for the success."""
    return Element(f"{{{FAST}}}token", {"token": token, "expiry": expiry})
