"""Element helpers and a fast namespace-aware serializer (XML 1.0 §2, RFC 6120 §4.2/§11, RFC 7395).

Elements are :class:`xml.etree.ElementTree.Element` (the C implementation) with
tags in Clark notation (``{namespace}local``). :func:`serialize` is our own
writer: it emits the default-namespace declarations XMPP peers expect (no
prefixes on element names), escapes so that parsing gives back the same tree,
and refuses to emit anything ill-formed (bad names, characters outside the
XML 1.0 ``Char`` production) by raising :class:`ValueError`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from xml.etree.ElementTree import Element

from carewire.xmpp import ns

__all__ = [
    "STREAM_FOOTER",
    "SharedBody",
    "SharedCopy",
    "child",
    "deep_copy",
    "framing_close",
    "framing_open",
    "is_valid_xml_text",
    "make",
    "serialize",
    "stream_header",
    "text_of",
]

STREAM_FOOTER = "</stream:stream>"

# Characters outside XML 1.0 Char (§2.2): C0 controls except TAB/LF/CR,
# surrogates, U+FFFE and U+FFFF.
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# NCName (Namespaces in XML 1.0 §3): XML 1.0 5th edition Name without ':'.
_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff"
    "\u200c-\u200d\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf"
    "\ufdf0-\ufffd\U00010000-\U000effff"
)
_NCNAME = re.compile(f"[{_START}][{_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]*")

_XMLNS_NS = "http://www.w3.org/2000/xmlns/"
_CACHE_MAX = 4096
# Clark tag -> (namespace or None, "<local", '<local xmlns="namespace"', "</local>")
_TAGS: dict[str, tuple[str | None, str, str, str]] = {}
# plain attribute name (or {XML}name) -> ' name="'
_ATTRS: dict[str, str] = {}


def is_valid_xml_text(s: str) -> bool:
    """Whether every character of ``s`` is allowed by XML 1.0 (§2.2 ``Char``)."""
    # str.isprintable() is True only without controls, surrogates and
    # non-characters: the common case skips the regular expression.
    return s.isprintable() or _INVALID_CHARS.search(s) is None


def _bad_text(s: str) -> ValueError:
    m = _INVALID_CHARS.search(s)
    pos = m.start() if m is not None else -1
    return ValueError(f"character U+{ord(s[pos]):04X} is not allowed in XML 1.0 (at {pos})")


def _esc_text(s: str) -> str:
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    if not s.isprintable():
        if _INVALID_CHARS.search(s) is not None:
            raise _bad_text(s)
        if "\r" in s:  # a literal CR would be normalised to LF by the reader
            s = s.replace("\r", "&#13;")
    return s


def _esc_attr(s: str) -> str:
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    if '"' in s:
        s = s.replace('"', "&quot;")
    if not s.isprintable():
        if _INVALID_CHARS.search(s) is not None:
            raise _bad_text(s)
        # Attribute-value normalisation (XML 1.0 §3.3.3) would turn these into spaces.
        s = s.replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;")
    return s


def _check_name(local: str, what: str) -> None:
    if _NCNAME.fullmatch(local) is None:
        raise ValueError(f"invalid XML {what} name {local!r}")


def _tag_info(tag: object) -> tuple[str | None, str, str, str]:
    if not isinstance(tag, str):
        raise ValueError(f"cannot serialise a non-element node ({tag!r})")
    if tag[:1] == "{":
        uri, sep, local = tag[1:].rpartition("}")
        if not sep:
            raise ValueError(f"malformed Clark name {tag!r}")
        namespace: str | None = uri or None
    else:
        namespace, local = None, tag
    _check_name(local, "element")
    if namespace in (ns.XML, _XMLNS_NS):
        raise ValueError(f"reserved namespace on element {tag!r}")
    decl = f'<{local} xmlns="{_esc_attr(namespace or "")}"'
    info = (namespace, "<" + local, decl, "</" + local + ">")
    if len(_TAGS) < _CACHE_MAX:
        _TAGS[tag] = info
    return info


def _attr_start(key: str) -> str | None:
    """`` name="`` for a plain or xml: attribute; None for other namespaces."""
    if key[:1] == "{":
        uri, sep, local = key[1:].rpartition("}")
        if not sep:
            raise ValueError(f"malformed Clark name {key!r}")
        _check_name(local, "attribute")
        if uri == ns.XML:
            text = f' xml:{local}="'
        elif uri == _XMLNS_NS:
            raise ValueError(f"namespace declarations are not attributes: {key!r}")
        elif not uri:  # "{}k" could duplicate a plain "k"
            raise ValueError(f"write the attribute without namespace as {local!r}")
        else:
            return None
    else:
        _check_name(key, "attribute")
        if key == "xmlns":
            raise ValueError("namespace declarations are not attributes: use a Clark tag")
        text = f' {key}="'
    if len(_ATTRS) < _CACHE_MAX:
        _ATTRS[key] = text
    return text


def _prefixed(key: str, prefixes: dict[str, str], decls: list[str]) -> tuple[str, dict[str, str]]:
    uri, _, local = key[1:].rpartition("}")
    prefix = prefixes.get(uri)
    if prefix is None:
        prefixes = {**prefixes, uri: f"ns{len(prefixes)}"}
        prefix = prefixes[uri]
        decls.append(f' xmlns:{prefix}="{_esc_attr(uri)}"')
    return f' {prefix}:{local}="', prefixes


def _write(el: Element, parent_ns: str | None, prefixes: dict[str, str], out: list[str]) -> None:
    tag = el.tag
    info = _TAGS.get(tag)
    if info is None:
        info = _tag_info(tag)
    namespace = info[0]
    open_ = info[1] if namespace == parent_ns else info[2]
    close = info[3]
    # items(), not attrib: reading .attrib gives an element without attributes a dict of
    # its own for good (stored stanzas, such as a session's presence, kept them).
    items = el.items()
    if items:
        open_, prefixes = _with_attributes(open_, items, prefixes)
    text = el.text
    if len(el):
        out.append(open_ + ">" + _esc_text(text) if text else open_ + ">")
        for sub in el:
            _write(sub, namespace, prefixes, out)
            tail = sub.tail
            if tail:
                out.append(_esc_text(tail))
        out.append(close)
    elif text:
        out.append(open_ + ">" + _esc_text(text) + close)
    else:
        out.append(open_ + "/>")


def _with_attributes(
    open_: str, items: Iterable[tuple[str, str]], prefixes: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """The start tag ``open_`` with ``items`` written, and the prefixes in scope after it."""
    parts = [open_]
    decls: list[str] | None = None
    for key, value in items:
        start = _ATTRS.get(key)
        if start is None:
            start = _attr_start(key)
            if start is None:
                if decls is None:
                    decls = []
                start, prefixes = _prefixed(key, prefixes, decls)
        parts.append(start)
        parts.append(_esc_attr(value))
        parts.append('"')
    if decls:
        parts[1:1] = decls
    return "".join(parts), prefixes


class SharedBody:
    """The children and text that every copy of one stanza shares, written once for all.

    A room sends one message to each of its occupants' sessions: the copies
    differ in their attributes (``to``) and nothing else. :meth:`copy` makes a
    :class:`SharedCopy` that holds the same child objects (no deep copy), and
    :func:`serialize` writes those children the first time and reuses the text
    for every other copy; the start tag with the stanza's own attributes is kept
    too (``heads``), and each copy adds its ``to``. A copy whose text, list of
    children or other attributes were changed (a hook added a child, stream
    management a ``<delay/>``) is written in full. The children themselves
    must not be changed in place: they are shared.
    """

    __slots__ = ("attrib", "children", "heads", "items", "namespace", "tag", "text", "xml")

    def __init__(self, el: Element) -> None:
        self.items: list[tuple[str, str]] = el.items()  # type: ignore[assignment]  # a list
        self.tag, self.attrib, self.text = el.tag, dict(self.items), el.text
        self.children = tuple(el)
        self.namespace: str | None = None
        self.xml: str | None = None  # the text and children, once written
        # The start tag with the stanza's own attributes, by its opening text ("" when a
        # namespaced attribute makes it unfit to share): copies add ``to`` at its end.
        self.heads: dict[str, str] = {}

    def copy(self) -> SharedCopy:
        """A new copy: its own attributes (from the stanza's), the shared children."""
        made = SharedCopy(self.tag, self.attrib)
        made.text = self.text
        made.extend(self.children)
        made.body = self
        return made

    def is_body_of(self, el: Element) -> bool:
        """Whether ``el`` still has exactly these children and this text."""
        # Elements compare by identity: the same child objects, in the same order.
        return el.text == self.text and tuple(el) == self.children

    def inner(self, namespace: str | None) -> str:
        """The text and children written inside an element of ``namespace``."""
        if self.xml is None or self.namespace != namespace:
            out = [_esc_text(self.text)] if self.text else []
            for sub in self.children:
                _write(sub, namespace, {}, out)
                if sub.tail:
                    out.append(_esc_text(sub.tail))
            self.xml, self.namespace = "".join(out), namespace
        return self.xml


class SharedCopy(Element):
    """One recipient's copy of a stanza whose children are shared (:class:`SharedBody`)."""

    __slots__ = ("body",)
    body: SharedBody


def _write_shared(el: SharedCopy, parent_ns: str | None, out: list[str]) -> None:
    """Write a shared copy: its start tag as any element's, its inside from the body's cache."""
    info = _TAGS.get(el.tag)
    if info is None:
        info = _tag_info(el.tag)
    namespace = info[0]
    open_ = info[1] if namespace == parent_ns else info[2]
    body = el.body
    items: list[tuple[str, str]] = el.items()  # type: ignore[assignment]  # a list at run time
    head = None
    # The usual copy: the stanza's own attributes unchanged (it had no 'to'), then its 'to'.
    if (
        items
        and items[-1][0] == "to"
        and len(items) == len(body.items) + 1
        and items[:-1] == body.items
    ):
        head = body.heads.get(open_)
        if head is None:
            head, prefixes = _with_attributes(open_, body.items, {})
            body.heads[open_] = head = "" if prefixes else head
    if head:
        open_ = head + ' to="' + _esc_attr(items[-1][1]) + '"'
    elif items:
        open_, prefixes = _with_attributes(open_, items, {})
        if prefixes:  # a namespaced attribute: the children may need its prefix (rare)
            _write(el, parent_ns, {}, out)
            return
    inner = body.inner(namespace)
    out.append(open_ + ">" + inner + info[3] if inner else open_ + "/>")


def serialize(el: Element, parent_ns: str | None = ns.CLIENT) -> str:
    """Serialise ``el`` (and its subtree, without its own tail) to a string.

    Args:
        el: the element to write.
        parent_ns: the default namespace in scope where the element is
            written: ``jabber:client`` inside a TCP stream, ``None`` for a
            standalone document such as an RFC 7395 WebSocket message.

    Returns:
        The XML text; ``xmlns`` is declared wherever an element's namespace
        differs from its parent's and namespaced attributes other than
        ``xml:*`` get generated ``nsN`` prefixes.

    Raises:
        ValueError: a name is not an NCName, an attribute is a namespace
            declaration, or text contains characters not allowed in XML 1.0.
    """
    out: list[str] = []
    if type(el) is SharedCopy and el.body.is_body_of(el):
        _write_shared(el, parent_ns, out)
    else:
        _write(el, parent_ns, {}, out)
    return out[0] if len(out) == 1 else "".join(out)


def _quoted_attrs(pairs: list[tuple[str, str | None]], quote: str) -> str:
    out = []
    for name, value in pairs:
        if value is not None:
            esc = _esc_attr(value)
            if quote == "'":
                esc = esc.replace("&quot;", '"').replace("'", "&apos;")
            out.append(f" {name}={quote}{esc}{quote}")
    return "".join(out)


def stream_header(
    *,
    from_: str | None,
    to: str | None,
    stream_id: str | None,
    version: str | None = "1.0",
    lang: str = "en",
    content_ns: str = ns.CLIENT,
) -> str:
    """The XML declaration and ``<stream:stream>`` open tag (RFC 6120 §4.7).

    ``version`` None leaves the attribute out (XEP-0114 component streams).
    """
    attrs = [
        ("xmlns", content_ns),
        ("xmlns:stream", ns.STREAM),
        ("from", from_),
        ("to", to),
        ("id", stream_id),
        ("version", version),
        ("xml:lang", lang),
    ]
    return "<?xml version='1.0'?><stream:stream" + _quoted_attrs(attrs, "'") + ">"


def framing_open(
    *,
    from_: str | None = None,
    to: str | None = None,
    stream_id: str | None = None,
    version: str = "1.0",
    lang: str = "en",
) -> str:
    """The RFC 7395 §3.3.2 ``<open/>`` element that starts a WebSocket stream."""
    attrs = [
        ("xmlns", ns.FRAMING),
        ("from", from_),
        ("to", to),
        ("id", stream_id),
        ("version", version),
        ("xml:lang", lang),
    ]
    return "<open" + _quoted_attrs(attrs, '"') + "/>"


def framing_close() -> str:
    """The RFC 7395 §3.6 ``<close/>`` element that ends a WebSocket stream."""
    return f'<close xmlns="{ns.FRAMING}"/>'


def make(
    tag: str, attrs: dict[str, str] | None = None, *children: Element, text: str | None = None
) -> Element:
    """Build an element with attributes, children and text in one call."""
    el = Element(tag, attrs) if attrs else Element(tag)
    if children:
        el.extend(children)
    if text is not None:
        el.text = text
    return el


def child(el: Element, tag: str) -> Element | None:
    """The first direct child of ``el`` whose tag is ``tag`` (Clark notation)."""
    for sub in el:
        if sub.tag == tag:
            return sub
    return None


def text_of(el: Element, tag: str) -> str | None:
    """Text of the first ``tag`` child: None without such a child, "" if it is empty."""
    sub = child(el, tag)
    if sub is None:
        return None
    return sub.text or ""


def deep_copy(el: Element) -> Element:
    """An independent copy of ``el`` and its subtree (tails included)."""
    return copy.deepcopy(el)
