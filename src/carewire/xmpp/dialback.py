"""Server Dialback (XEP-0220) keys and elements, with keys generated as XEP-0185 recommends.

A dialback key proves that the originating server's authoritative server
issued it for one stream: ``HMAC-SHA256(SHA256(secret), receiving + ' ' +
originating + ' ' + stream id)`` in lowercase hex (XEP-0185 §3). Anyone who
can reach the authoritative server asks it to verify the key (``<db:verify/>``),
so the secret never leaves the process.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns

RESULT = f"{{{ns.DIALBACK}}}result"
VERIFY = f"{{{ns.DIALBACK}}}verify"


def dialback_key(secret: bytes, *, receiving: str, originating: str, stream_id: str) -> str:
    """The XEP-0185 §3 key for one stream."""
    mac_key = hashlib.sha256(secret).hexdigest().encode("ascii")
    text = f"{receiving} {originating} {stream_id}".encode()
    return hmac.new(mac_key, text, hashlib.sha256).hexdigest()


def is_valid_key(
    secret: bytes, key: str, *, receiving: str, originating: str, stream_id: str
) -> bool:
    """Whether ``key`` is the one we issued for that stream (constant-time comparison)."""
    expected = dialback_key(
        secret, receiving=receiving, originating=originating, stream_id=stream_id
    )
    return hmac.compare_digest(expected, key.strip().lower())


@dataclass(frozen=True, slots=True, kw_only=True)
class DialbackElement:
    """A parsed ``<db:result/>`` or ``<db:verify/>``."""

    is_verify: bool
    from_: str
    to: str
    stream_id: str  # only for verify
    key: str  # the element's text (empty in answers)
    type: str  # "" for requests; "valid", "invalid" or "error" for answers


def parse(element: Element) -> DialbackElement:
    """Read a dialback element (tag :data:`RESULT` or :data:`VERIFY`)."""
    return DialbackElement(
        is_verify=element.tag == VERIFY,
        from_=(element.get("from") or "").lower(),
        to=(element.get("to") or "").lower(),
        stream_id=element.get("id") or "",
        key=(element.text or "").strip(),
        type=element.get("type") or "",
    )


def result_request(*, from_: str, to: str, key: str) -> Element:
    """``<db:result/>`` carrying our key (XEP-0220 §2.1.1)."""
    el = Element(RESULT, {"from": from_, "to": to})
    el.text = key
    return el


def verify_request(*, from_: str, to: str, stream_id: str, key: str) -> Element:
    """``<db:verify/>`` asking the authoritative server about a key (§2.1.2)."""
    el = Element(VERIFY, {"from": from_, "to": to, "id": stream_id})
    el.text = key
    return el


def answer(request: DialbackElement, *, is_valid: bool) -> Element:
    """The answer to a request: addresses swapped, ``type`` valid or invalid (§2.1.3, §2.1.4)."""
    attrs = {"from": request.to, "to": request.from_, "type": "valid" if is_valid else "invalid"}
    if request.is_verify:
        attrs["id"] = request.stream_id
    return Element(VERIFY if request.is_verify else RESULT, attrs)


def error(request: DialbackElement, condition: str, error_type: str = "cancel") -> Element:
    """A ``type='error'`` answer with a stanza error condition (XEP-0220 §2.4)."""
    el = Element(RESULT, {"from": request.to, "to": request.from_, "type": "error"})
    err = SubElement(el, f"{{{ns.DIALBACK}}}error", {"type": error_type})
    SubElement(err, f"{{{ns.STANZAS_ERR}}}{condition}")
    return el
