"""XEP-0115 Entity Capabilities: which PEP nodes a client wants notifications of (``+notify``).

A client's available presence carries ``<c xmlns='http://jabber.org/protocol/caps'
hash='sha-1' node='…' ver='…'/>``. The first time a ``ver`` is seen the server
asks that client for ``disco#info`` of ``node#ver``, checks the answer against the
hash (XEP-0115 §5.1 verification string) and caches the features by ``ver``; every
later client with the same ``ver`` costs nothing. An answer that does not match its
hash is used for that session only, never cached (XEP-0115 §5.4 "cache poisoning").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from carewire.core.router import Router
from carewire.core.sessions import Session
from carewire.xmpp import ns
from carewire.xmpp.stanza import IQ
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

CAPS = "http://jabber.org/protocol/caps"
C = f"{{{CAPS}}}c"
NOTIFY_SUFFIX = "+notify"
#: Distinct ``ver`` strings kept, at most (a client cannot fill memory with made-up ones).
MAX_CACHED = 2048
_INFO = f"{{{ns.DISCO_INFO}}}query"
_HASHES = {"sha-1": hashlib.sha1, "sha-256": hashlib.sha256}


@dataclass(frozen=True, slots=True, kw_only=True)
class CapsRef:
    """The ``<c/>`` of a presence."""

    hash: str
    node: str
    ver: str


def caps_of(presence: Element) -> CapsRef | None:
    """The capabilities a presence announces, or None."""
    c = presence.find(C)
    if c is None or not c.get("ver") or not c.get("node"):
        return None
    return CapsRef(hash=c.get("hash", ""), node=c.get("node", ""), ver=c.get("ver", ""))


def _escape(s: str) -> str:
    return s.replace("<", "&lt;")


def verification_string(info: Element) -> str:
    """XEP-0115 §5.1: the string whose hash is ``ver``."""
    idents = sorted(
        (
            i.get("category", ""),
            i.get("type", ""),
            i.get(f"{{{ns.XML}}}lang", ""),
            i.get("name", ""),
        )
        for i in info.findall(f"{{{ns.DISCO_INFO}}}identity")
    )
    out = ["/".join(_escape(p) for p in ident) + "<" for ident in idents]
    features = sorted(f.get("var", "") for f in info.findall(f"{{{ns.DISCO_INFO}}}feature"))
    out.extend(_escape(f) + "<" for f in features)
    forms = []
    for x in info.findall(f"{{{ns.DATA_FORMS}}}x"):
        fields = {}
        form_type = ""
        for f in x.findall(f"{{{ns.DATA_FORMS}}}field"):
            values = sorted(v.text or "" for v in f.findall(f"{{{ns.DATA_FORMS}}}value"))
            if f.get("var") == "FORM_TYPE":
                form_type = values[0] if values else ""
            else:
                fields[f.get("var", "")] = values
        part = [_escape(form_type) + "<"]
        for var in sorted(fields):
            part.append(_escape(var) + "<")
            part.extend(_escape(v) + "<" for v in fields[var])
        forms.append((form_type, "".join(part)))
    out.extend(text for _, text in sorted(forms))
    return "".join(out)


def is_verified(ref: CapsRef, info: Element) -> bool:
    """Whether ``info`` hashes to ``ref.ver`` with ``ref.hash``."""
    algo = _HASHES.get(ref.hash)
    if algo is None:
        return False
    digest = algo(verification_string(info).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii") == ref.ver


def notify_nodes(features: frozenset[str]) -> frozenset[str]:
    """The nodes a feature set asks notifications of (XEP-0163 §4.3: ``NODE+notify``)."""
    return frozenset(f[: -len(NOTIFY_SUFFIX)] for f in features if f.endswith(NOTIFY_SUFFIX))


class CapsCache:
    """Features by ``ver``, resolved by asking one client that announced it."""

    def __init__(self, router: Router, *, timeout: float = 10.0) -> None:
        self.router = router
        self.timeout = timeout
        self._known: dict[tuple[str, str], frozenset[str]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[frozenset[str] | None]] = {}

    def known(self, ref: CapsRef) -> frozenset[str] | None:
        """The cached features of ``ref`` (no I/O)."""
        return self._known.get((ref.hash, ref.ver))

    async def resolve(self, session: Session, ref: CapsRef) -> frozenset[str]:
        """The features of ``ref``: cached, or asked of ``session`` (empty if it fails)."""
        key = (ref.hash, ref.ver)
        cached = self._known.get(key)
        if cached is not None:
            return cached
        pending = self._pending.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
        future: asyncio.Future[frozenset[str] | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            features, verified = await self._ask(session, ref)
            if verified and len(self._known) < MAX_CACHED:
                self._known[key] = features
            future.set_result(features if verified else None)
            return features
        finally:
            self._pending.pop(key, None)
            if not future.done():
                future.set_result(None)

    async def _ask(self, session: Session, ref: CapsRef) -> tuple[frozenset[str], bool]:
        query = make(_INFO, {"node": f"{ref.node}#{ref.ver}"})
        iq = make(IQ, {"type": "get"})
        iq.append(query)
        try:
            reply = await self.router.query(session, iq, timeout=self.timeout)
        except TimeoutError:
            log.info("no disco#info answer for entity capabilities from %s", session.jid)
            return frozenset(), False
        info = reply.find(_INFO)
        if reply.get("type") != "result" or info is None:
            return frozenset(), False
        features = frozenset(f.get("var", "") for f in info.findall(f"{{{ns.DISCO_INFO}}}feature"))
        verified = is_verified(ref, info)
        if not verified:
            log.warning("entity capabilities of %s do not match their hash", session.jid)
        return features, verified
