"""Hardened incremental XML stream parser for restricted XML (RFC 6120 §11.1, RFC 7395 §3.3).

:class:`StreamParser` turns stream bytes into events: the ``<stream:stream>``
open tag, each complete top-level element and the stream close. It runs expat
with DTDs, entities, comments and processing instructions refused, and
enforces size, depth and attribute limits while bytes arrive, so a peer can
neither expand entities nor make us buffer unbounded input.
:func:`parse_document` applies the same rules to one RFC 7395 WebSocket
message. Violations raise :class:`RemoteProtocolError`; the parser is then dead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn
from xml.etree.ElementTree import Element, SubElement
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from carewire.xmpp.errors import RemoteProtocolError, StreamCondition

__all__ = [
    "DEFAULT_LIMITS",
    "ElementReceived",
    "ParserEvent",
    "ParserLimits",
    "StreamClosed",
    "StreamOpened",
    "StreamParser",
    "parse_document",
]

_C = StreamCondition
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_WS = " \t\r\n"
#: Characters pyexpat gathers before calling the text handler (its buffer, per parser).
TEXT_BUFFER = 1024
_SLICE = 4096  # bytes handed to expat at a time, so limits are checked as input arrives
_HOLD_AT = 2048  # an unfinished start tag this long is held back until it can end
_NAME_CACHE_MAX = 4096
# expat name ("ns}local") -> Clark tag; shared by all parsers, bounded by clearing.
_CLARK: dict[str, str] = {}
_TAG_DELIMS = re.compile(rb"['\">]")
_ENCODING_ERRORS = {
    expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING],
    expat.errors.codes[expat.errors.XML_ERROR_INCORRECT_ENCODING],
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParserLimits:
    """Resource limits applied to every connection (all in bytes of UTF-8 unless counts)."""

    max_stanza_bytes: int = 262_144
    max_depth: int = 64
    max_attribute_bytes: int = 4096
    max_attributes: int = 64
    max_lang_bytes: int = 64


DEFAULT_LIMITS = ParserLimits()


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The stream root's open tag; attribute keys in Clark notation when namespaced."""

    tag: str
    attrs: dict[str, str]


@dataclass(frozen=True, slots=True)
class ElementReceived:
    """A complete top-level child of the stream root."""

    element: Element


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The stream root was closed (``</stream:stream>``)."""


ParserEvent = StreamOpened | ElementReceived | StreamClosed


def _refuse(what: str) -> object:
    def handler(*_: object) -> NoReturn:
        raise RemoteProtocolError(_C.RESTRICTED_XML, f"{what} not allowed (RFC 6120 §11.1)")

    return handler


_REFUSALS = {
    "StartDoctypeDeclHandler": _refuse("document type declarations are"),
    "EntityDeclHandler": _refuse("entity declarations are"),
    "UnparsedEntityDeclHandler": _refuse("entity declarations are"),
    "NotationDeclHandler": _refuse("notation declarations are"),
    "ElementDeclHandler": _refuse("element declarations are"),
    "AttlistDeclHandler": _refuse("attribute-list declarations are"),
    "ExternalEntityRefHandler": _refuse("external entities are"),
    "SkippedEntityHandler": _refuse("entity references are"),
    "ProcessingInstructionHandler": _refuse("processing instructions are"),
    "CommentHandler": _refuse("comments are"),
}


def _xml_decl(version: str, encoding: str | None, standalone: int) -> None:
    if encoding is not None and encoding.upper() not in ("UTF-8", "UTF8"):
        raise RemoteProtocolError(_C.UNSUPPORTED_ENCODING, f"encoding {encoding!r}: only UTF-8")


def _tag_end(buf: bytes | bytearray, pos: int, quote: bytes) -> tuple[int, bytes]:
    """Scan a start tag from ``pos``: index after its ``>`` (or -1) and the open quote."""
    while True:
        if quote:
            j = buf.find(quote, pos)
            if j < 0:
                return -1, quote
            pos, quote = j + 1, b""
        else:
            m = _TAG_DELIMS.search(buf, pos)
            if m is None:
                return -1, b""
            pos = m.end()
            if buf[pos - 1] == 0x3E:  # '>'
                return pos, b""
            quote = m.group()


def _clark(name: str) -> str:
    tag = "{" + name if "}" in name else name
    if len(_CLARK) >= _NAME_CACHE_MAX:
        _CLARK.clear()
    _CLARK[name] = tag
    return tag


class StreamParser:
    """Sans-IO parser of one XML stream: ``feed`` bytes, get :data:`ParserEvent` objects.

    Args:
        limits: the resource limits; breaking one is a policy-violation.
    """

    __slots__ = (
        "_attr_chars", "_dead", "_depth", "_document", "_events", "_fed", "_fed_end",
        "_held", "_limits", "_max_attrs", "_max_depth", "_namespaces", "_p", "_pieces", "_quote",
        "_root", "_stack", "_start", "_tail", "_token_start",
    )  # fmt: skip

    def __init__(self, limits: ParserLimits = DEFAULT_LIMITS) -> None:
        self._setup(limits, document=False)

    def _setup(self, limits: ParserLimits, *, document: bool) -> None:
        self._limits = limits
        self._attr_chars = limits.max_attribute_bytes // 4  # fewer chars cannot be too long
        self._max_attrs = limits.max_attributes
        self._max_depth = limits.max_depth
        self._document = document  # one standalone element: no stream root around it
        self.reset()

    def reset(self) -> None:
        """Forget everything and expect a new stream header (RFC 6120 §4.3.3)."""
        if getattr(self, "_p", None) is not None:
            # Break the old parser's cycle (handlers are our bound methods) so its
            # buffers are freed now, not at the next full garbage collection.
            self._release()
        self._p: Any = self._new_expat()  # None while compacted
        # The stream header's namespace declarations (prefix or "" → URI), recorded so
        # that a parser dropped while idle (compact) can be primed with the same scope.
        self._namespaces: dict[str, str] | None = None if self._document else {}
        self._root = ""  # the stream root's qualified name as the client wrote it
        if not self._document:
            self._p.StartNamespaceDeclHandler = self._on_namespace
        self._dead: RemoteProtocolError | None = None
        self._depth = 1 if self._document else 0  # open elements, stream root included
        self._stack: list[Element] = []
        self._pieces: list[str] = []  # text of the innermost open element, not yet attached
        self._events: list[ParserEvent] = []
        self._fed = self._fed_end = self._start = self._token_start = 0
        self._tail = b""  # input expat holds as an unfinished token
        self._held: bytearray | None = None  # input not yet given to expat
        self._quote = b""

    def _new_expat(self) -> Any:
        p = expat.ParserCreate("UTF-8", "}", intern=None)  # no unbounded name dict
        # A small character-data buffer: pyexpat's default (8 KiB per parser) was a
        # sixth of an idle connection's memory. Text then comes in pieces of at most
        # TEXT_BUFFER characters; they are gathered in a list and joined once (_attach).
        p.buffer_text = True
        p.buffer_size = TEXT_BUFFER
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        # Expat >= 2.6 may defer re-parsing an unfinished token, which would delay
        # events; we bound that cost ourselves (_start_hold). (bool: no-op if absent.)
        getattr(p, "SetReparseDeferralEnabled", bool)(False)
        for name, handler in _REFUSALS.items():
            setattr(p, name, handler)
        p.XmlDeclHandler = _xml_decl
        p.StartElementHandler = self._on_start
        p.EndElementHandler = self._on_end
        p.CharacterDataHandler = self._on_text
        return p

    def compact(self) -> bool:
        """Free expat's buffers while the stream is idle between stanzas; True if done.

        An idle connection's expat parser keeps its input buffer and name pools
        (about 10 KiB). Between two stanzas nothing of them is needed but the
        stream header's namespace scope: the parser is dropped, and the next
        :meth:`feed` primes a fresh one with a header declaring the same
        namespaces (no event is produced for it). Refused mid-stanza, mid-token,
        before the header, or on a failed stream.
        """
        if (
            self._p is None
            or self._dead is not None
            or self._document
            or self._depth != 1
            or self._namespaces is None
            or self._held is not None
            or self._tail
        ):
            return False
        self._release()
        self._p = None
        return True

    def _revive(self) -> None:
        """A fresh expat parser, inside a stream root that declares the header's namespaces."""
        assert self._namespaces is not None
        decls = "".join(
            f" xmlns{':' + prefix if prefix else ''}={quoteattr(uri)}"
            for prefix, uri in self._namespaces.items()
        )
        header = f"<{self._root}{decls}>".encode()
        p = self._p = self._new_expat()
        p.StartElementHandler = None  # the header is not the client's: no event for it
        p.Parse(header, False)
        p.StartElementHandler = self._on_start
        self._fed = self._fed_end = self._start = len(header)

    def feed(self, data: bytes) -> list[ParserEvent]:
        """Parse more of the stream.

        Args:
            data: the next bytes, split anywhere.

        Returns:
            The events completed by these bytes, in order.

        Raises:
            RemoteProtocolError: the input broke XML, RFC 6120 §11 or a limit;
                this and every later call raise it.
        """
        if self._dead is not None:
            raise RemoteProtocolError(self._dead.condition, self._dead.text)
        if self._p is None:
            self._revive()
        try:
            self._run(data, False)
        except RemoteProtocolError as exc:
            # Stanzas completed before the error still count ("nothing is lost").
            exc.completed = self._events
            self._events = []
            raise
        events = self._events
        self._events = []
        return events

    # -- driving expat ---------------------------------------------------------------

    def _release(self) -> None:
        """Break the parser <-> handler reference cycle so memory is freed at once."""
        p = self._p
        if p is not None:
            p.StartElementHandler = p.EndElementHandler = p.CharacterDataHandler = None
            p.StartNamespaceDeclHandler = None

    def _fail(self, exc: RemoteProtocolError) -> NoReturn:
        self._dead = exc
        self._release()
        raise exc

    def _run(self, data: bytes, final: bool) -> None:
        try:
            pos = 0
            while pos < len(data) or final:
                if self._held is not None:
                    pos = self._hold(data, pos)
                else:
                    pos = self._parse(data, pos, final, not final)
                    final = False
        except expat.ExpatError as exc:
            cond = _C.UNSUPPORTED_ENCODING if exc.code in _ENCODING_ERRORS else None
            err = RemoteProtocolError(cond or _C.NOT_WELL_FORMED, str(exc))
            self._fail(err)
        except RemoteProtocolError as exc:
            self._fail(exc)

    def _parse(self, data: bytes, pos: int, final: bool, may_hold: bool) -> int:
        """Give ``data[pos:]`` to expat slice by slice; stop early to hold a long start tag."""
        n = len(data)
        p = self._p
        limit = self._limits.max_stanza_bytes
        while True:
            end = min(n, pos + _SLICE)
            chunk = data[pos:end] if pos or end < n else data
            self._fed_end = fed = self._fed + len(chunk)
            p.Parse(chunk, final and end == n)
            self._fed = fed
            pos = end
            index = p.CurrentByteIndex
            pending = fed - index if index >= 0 else fed
            if self._depth > 1:
                if fed - self._start > limit:
                    raise RemoteProtocolError(_C.POLICY_VIOLATION, "stanza too large")
            elif pending > limit:
                raise RemoteProtocolError(_C.POLICY_VIOLATION, "unterminated markup")
            if not pending:
                self._tail = b""
            elif pending <= len(chunk):
                self._tail = chunk[-pending:]
            else:
                self._tail = self._tail[len(self._tail) - pending + len(chunk) :] + chunk
            if may_hold and pending >= _HOLD_AT and self._start_hold(fed - pending):
                return pos
            if pos >= n:
                return pos

    def _start_hold(self, token_start: int) -> bool:
        """Expat re-scans an unfinished token on every call: stop feeding it bytes
        that cannot end the token (1-byte writes would otherwise cost O(n²))."""
        tail = self._tail
        if tail[:2] in (b"<!", b"<?"):
            raise RemoteProtocolError(_C.RESTRICTED_XML, "declaration, comment or PI")
        if tail[:1] != b"<" or tail[:2] == b"</":
            raise RemoteProtocolError(_C.POLICY_VIOLATION, "oversized token")
        end, self._quote = _tag_end(tail, 1, b"")
        if end >= 0:  # pragma: no cover - cannot happen: expat would have finished the tag
            return False  # pragma: no cover
        self._held = bytearray()
        self._token_start = token_start
        return True

    def _hold(self, data: bytes, pos: int) -> int:
        """Keep bytes back until the held start tag can end, then parse them at once."""
        held = self._held
        assert held is not None
        end, self._quote = _tag_end(data, pos, self._quote)
        stop = len(data) if end < 0 else end
        held += data[pos:stop]
        if end < 0:
            start = self._start if self._depth > 1 else self._token_start
            if self._fed + len(held) - start > self._limits.max_stanza_bytes:
                raise RemoteProtocolError(_C.POLICY_VIOLATION, "stanza too large")
            return stop
        self._held = None
        self._parse(bytes(held), 0, False, False)
        return stop

    # -- expat callbacks -------------------------------------------------------------

    def _attrs(self, attrs: dict[str, str]) -> dict[str, str]:
        limits = self._limits
        if len(attrs) > limits.max_attributes:
            raise RemoteProtocolError(_C.POLICY_VIOLATION, "too many attributes")
        for value in attrs.values():
            if len(value.encode()) > limits.max_attribute_bytes:
                raise RemoteProtocolError(_C.POLICY_VIOLATION, "attribute value too long")
        attrs = {("{" + k if "}" in k else k): v for k, v in attrs.items()}
        lang = attrs.get(_XML_LANG)
        if lang is not None and len(lang.encode()) > limits.max_lang_bytes:
            raise RemoteProtocolError(_C.POLICY_VIOLATION, "xml:lang too long")
        return attrs

    def _on_start(self, name: str, attrs: dict[str, str]) -> None:
        if self._pieces:
            self._attach()
        tag = _CLARK.get(name) or _clark(name)
        if attrs:
            # Fast path: few short plain attributes; anything else is checked in _attrs.
            chars = self._attr_chars
            for key, value in attrs.items():
                if len(value) > chars or "}" in key:
                    attrs = self._attrs(attrs)
                    break
            else:
                if len(attrs) > self._max_attrs:
                    attrs = self._attrs(attrs)
        depth = self._depth
        if depth == 1:
            self._start = self._p.CurrentByteIndex
            self._stack.append(Element(tag, attrs))
        elif depth > 1:
            if depth > self._max_depth:
                raise RemoteProtocolError(_C.POLICY_VIOLATION, "elements nested too deeply")
            self._stack.append(SubElement(self._stack[-1], tag, attrs))
        else:
            # Expat obeys a UTF-16 byte order mark even when told UTF-8 (RFC 6120 §11.6).
            context = self._p.GetInputContext() or b""
            if context[:1] != b"<" or context[1:2] == b"\0":
                raise RemoteProtocolError(_C.UNSUPPORTED_ENCODING, "the stream must be UTF-8")
            self._events.append(StreamOpened(tag, attrs))
            self._p.StartNamespaceDeclHandler = None  # the header's scope is complete
            self._root_name(tag)
        self._depth = depth + 1

    def _on_end(self, name: str) -> None:
        if self._pieces:
            self._attach()
        depth = self._depth = self._depth - 1
        if depth == 1:
            el = self._stack.pop()
            if self._fed_end - self._start > self._limits.max_stanza_bytes:
                self._check_size(el.tag)
            self._events.append(ElementReceived(el))
        elif depth:
            self._stack.pop()
        else:
            self._events.append(StreamClosed())

    def _root_name(self, tag: str) -> None:
        """Work out the root's qualified name (its closing tag must match a revived root)."""
        scope = self._namespaces
        if scope is None:
            return
        uri, brace, local = tag[1:].partition("}")
        if not brace:
            uri, local = "", tag
        prefixes = [prefix for prefix, bound in scope.items() if bound == uri]
        if uri and len(prefixes) == 1:
            self._root = f"{prefixes[0]}:{local}" if prefixes[0] else local
        elif not uri and not scope.get(""):
            self._root = local
        else:
            self._namespaces = None  # ambiguous: never compact this stream

    def _on_namespace(self, prefix: str | None, uri: str | None) -> None:
        if self._namespaces is not None and len(self._namespaces) < self._max_attrs:
            self._namespaces[prefix or ""] = uri or ""
        else:
            self._namespaces = None  # an odd header: never compact this stream

    def _check_size(self, tag: str) -> None:
        """Exact size of the top-level element that just ended (rarely needed)."""
        end = self._p.CurrentByteIndex  # start of "</name>", or just after "<name/>"
        rest = self._p.GetInputContext() or b""
        gt = rest.find(b">")
        if rest[:2] == b"</" and gt > 0:
            local = tag.rpartition("}")[2].encode()
            if rest[2:gt].strip().rpartition(b":")[2] == local:
                end += gt + 1
        if end - self._start > self._limits.max_stanza_bytes:
            raise RemoteProtocolError(_C.POLICY_VIOLATION, "stanza too large")

    def _on_text(self, data: str) -> None:
        if self._depth > 1:
            self._pieces.append(data)
        elif data.strip(_XML_WS):
            raise RemoteProtocolError(_C.BAD_FORMAT, "text between top-level elements")

    def _attach(self) -> None:
        """Give the gathered text to the innermost open element (text, or last child's tail)."""
        pieces = self._pieces
        data = pieces[0] if len(pieces) == 1 else "".join(pieces)
        pieces.clear()
        el = self._stack[-1]
        if len(el):
            last = el[-1]
            last.tail = data if last.tail is None else last.tail + data
        else:
            el.text = data if el.text is None else el.text + data


def parse_document(data: bytes | str, limits: ParserLimits = DEFAULT_LIMITS) -> Element:
    """Parse one complete element, e.g. an RFC 7395 WebSocket message.

    Args:
        data: the whole document (UTF-8 bytes or text).
        limits: the same limits as for streams; the element is top-level.

    Returns:
        The root element, namespaced as declared (``{jabber:client}message``).

    Raises:
        RemoteProtocolError: not exactly one well-formed element, restricted
            XML, or a limit broken.
    """
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError:
            raise RemoteProtocolError(_C.NOT_WELL_FORMED, "unencodable text") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise RemoteProtocolError(_C.UNSUPPORTED_ENCODING, "the document must be UTF-8")
    parser = StreamParser.__new__(StreamParser)
    parser._setup(limits, document=True)
    parser._run(data, True)
    parser._release()
    event = parser._events[0]
    assert isinstance(event, ElementReceived)
    return event.element
