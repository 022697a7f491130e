"""Tests of carewire.xmpp.xml: serialisation, headers and builders (XML 1.0, RFC 6120, RFC 7395)."""

from __future__ import annotations

from xml.etree.ElementTree import Comment, Element, SubElement

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewire.xmpp import ns
from carewire.xmpp.parser import ElementReceived, StreamOpened, StreamParser, parse_document
from carewire.xmpp.xml import (
    STREAM_FOOTER,
    child,
    deep_copy,
    framing_close,
    framing_open,
    is_valid_xml_text,
    make,
    serialize,
    stream_header,
    text_of,
)

XML_LANG = f"{{{ns.XML}}}lang"
MSG = f"{{{ns.CLIENT}}}message"
BODY = f"{{{ns.CLIENT}}}body"


def same_tree(a: Element, b: Element) -> bool:
    """Structural equality; None and "" text/tail are the same."""
    return (
        a.tag == b.tag
        and a.attrib == b.attrib
        and (a.text or "") == (b.text or "")
        and len(a) == len(b)
        and all(
            same_tree(x, y) and (x.tail or "") == (y.tail or "") for x, y in zip(a, b, strict=True)
        )
    )


# -- serialize: namespaces ---------------------------------------------------------------


def test_stanza_in_client_stream_has_no_xmlns() -> None:
    msg = make(MSG, {"to": "juliet@example.com", "type": "chat"}, make(BODY, text="hi"))
    want = '<message to="juliet@example.com" type="chat"><body>hi</body></message>'
    assert serialize(msg) == want


def test_stanza_standalone_declares_its_namespace() -> None:
    msg = make(MSG, {"to": "juliet@example.com"}, make(BODY, text="hi"))
    assert serialize(msg, None) == (
        '<message xmlns="jabber:client" to="juliet@example.com"><body>hi</body></message>'
    )


def test_empty_element_self_closes() -> None:
    assert serialize(Element(f"{{{ns.PING}}}ping")) == '<ping xmlns="urn:xmpp:ping"/>'
    empty_text = make(BODY, text="")
    assert serialize(empty_text) == "<body/>"


def test_namespace_changes_and_inheritance() -> None:
    iq = make(f"{{{ns.CLIENT}}}iq", {"type": "result"})
    query = SubElement(iq, f"{{{ns.ROSTER}}}query")
    SubElement(query, f"{{{ns.ROSTER}}}item", {"jid": "a@b"})
    back = SubElement(query, f"{{{ns.CLIENT}}}x")
    SubElement(back, "plain")
    assert serialize(iq) == (
        '<iq type="result"><query xmlns="jabber:iq:roster"><item jid="a@b"/>'
        '<x xmlns="jabber:client"><plain xmlns=""/></x></query></iq>'
    )


def test_unnamespaced_elements() -> None:
    el = make("a", None, make("b"))
    assert serialize(el, None) == "<a><b/></a>"
    assert serialize(el) == '<a xmlns=""><b/></a>'
    assert serialize(make("{}a")) == '<a xmlns=""/>'


def test_xml_lang_and_prefixed_attributes() -> None:
    el = make(MSG, {XML_LANG: "de", "{urn:x}a": "1", "{urn:y}b": "2"})
    kid = SubElement(el, BODY, {"{urn:x}c": "3"})
    SubElement(el, BODY, {"{urn:y}d": "4"})
    out = serialize(el)
    assert out == (
        '<message xmlns:ns0="urn:x" xmlns:ns1="urn:y" xml:lang="de" ns0:a="1" ns1:b="2">'
        '<body ns0:c="3"/><body ns1:d="4"/></message>'
    )
    assert same_tree(parse_document(serialize(el, None)), el)
    # A prefix declared on one branch is not assumed on its sibling.
    alone = make("r", None, make("a", {"{urn:z}p": "1"}), make("b", {"{urn:z}q": "2"}))
    assert serialize(alone, None) == (
        '<r><a xmlns:ns0="urn:z" ns0:p="1"/><b xmlns:ns0="urn:z" ns0:q="2"/></r>'
    )
    assert kid.get("{urn:x}c") == "3"


def test_namespace_uri_is_escaped() -> None:
    el = make('{urn:a?x=1&y="2"}e', {"{urn:&}k": "v"})
    out = serialize(el, None)
    assert 'xmlns="urn:a?x=1&amp;y=&quot;2&quot;"' in out
    assert 'xmlns:ns0="urn:&amp;"' in out
    assert same_tree(parse_document(out), el)


# -- serialize: escaping and content ---------------------------------------------------


def test_text_and_attribute_escaping() -> None:
    el = make("a", {"v": "<&>\"'\t\n\r"}, text="<&>\"'\t\n\r]]>")
    out = serialize(el, None)
    assert out == ('<a v="&lt;&amp;&gt;&quot;\'&#9;&#10;&#13;">&lt;&amp;&gt;"\'\t\n&#13;]]&gt;</a>')
    assert same_tree(parse_document(out), el)


def test_mixed_content_text_and_tails() -> None:
    el = make("p", None, text="one ")
    b = SubElement(el, "b")
    b.text = "two"
    b.tail = " three & "
    i = SubElement(el, "i")
    i.tail = "four"
    el.tail = "ignored: not part of the element"
    assert serialize(el, None) == "<p>one <b>two</b> three &amp; <i/>four</p>"


def test_unicode_passes_through() -> None:
    el = make("a", {"k": "ü€😀\u00a0"}, text="π ≠ ∞ 😀\u200d")
    assert serialize(el, None) == '<a k="ü€😀\u00a0">π ≠ ∞ 😀\u200d</a>'


@pytest.mark.parametrize(
    "bad", ["\x00", "a\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\ufffe", "\uffff"]
)
def test_invalid_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        serialize(make("a", text=bad))
    with pytest.raises(ValueError, match="not allowed"):
        serialize(make("a", {"k": bad}))
    tailed = make("a", None, make("b"))
    tailed[0].tail = bad
    with pytest.raises(ValueError, match="not allowed"):
        serialize(tailed)
    with pytest.raises(ValueError, match="not allowed"):
        serialize(make(f"{{urn:{bad}}}a"))


@pytest.mark.parametrize(
    "tag", ["", "a b", "1a", "-a", "a:b", "{urn:x}", "{urn:x", "{urn:x}a:b", "a\x00"]
)
def test_invalid_element_names_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        serialize(Element(tag))


@pytest.mark.parametrize("key", ["", "a b", "a:b", "xmlns", "{urn:x}1", "{urn:x"])
def test_invalid_attribute_names_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        serialize(make("a", {key: "v"}))


def test_namespace_declarations_and_reserved_namespaces_are_refused() -> None:
    with pytest.raises(ValueError, match="namespace declarations"):
        serialize(make("a", {"{http://www.w3.org/2000/xmlns/}p": "urn:x"}))
    with pytest.raises(ValueError, match="reserved"):
        serialize(Element(f"{{{ns.XML}}}a"))
    with pytest.raises(ValueError, match="non-element"):
        serialize(make("a", None, Comment("no")))  # type: ignore[arg-type]


def test_empty_namespace_attribute_is_refused() -> None:
    # "{}k" is the plain "k": both in one element would be a duplicate attribute.
    with pytest.raises(ValueError, match="without namespace"):
        serialize(make("a", {"{}k": "1", "k": "2"}))


def test_name_characters_beyond_ascii() -> None:
    el = make("{urn:x}ñame.é-1", {"ü_a": "1"})
    assert serialize(el, None) == '<ñame.é-1 xmlns="urn:x" ü_a="1"/>'
    assert same_tree(parse_document(serialize(el, None)), el)


# -- headers and framing -----------------------------------------------------------------


def test_stream_header() -> None:
    assert stream_header(from_="example.com", to="juliet@example.com", stream_id="s1") == (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' "
        "to='juliet@example.com' id='s1' version='1.0' xml:lang='en'>"
    )
    assert STREAM_FOOTER == "</stream:stream>"


def test_stream_header_optional_parts_and_escaping() -> None:
    out = stream_header(from_=None, to=None, stream_id="a'\"<&", lang="de", content_ns=ns.SERVER)
    assert out == (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='a&apos;\"&lt;&amp;' "
        "version='1.0' xml:lang='de'>"
    )
    opened = StreamParser().feed((out + STREAM_FOOTER).encode())[0]
    assert isinstance(opened, StreamOpened)
    assert opened.attrs["id"] == "a'\"<&"
    with pytest.raises(ValueError):
        stream_header(from_="x\x00", to=None, stream_id=None)


def test_framing_open_and_close() -> None:
    assert framing_open(from_="example.com", stream_id="s1") == (
        '<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="example.com" id="s1" '
        'version="1.0" xml:lang="en"/>'
    )
    opened = parse_document(framing_open(from_="a", to="b", stream_id="c", lang="fr"))
    assert opened.tag == f"{{{ns.FRAMING}}}open"
    assert opened.attrib == {"from": "a", "to": "b", "id": "c", "version": "1.0", XML_LANG: "fr"}
    assert framing_close() == '<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>'
    assert parse_document(framing_close()).tag == f"{{{ns.FRAMING}}}close"


# -- builders ------------------------------------------------------------------------------


def test_make_child_text_of() -> None:
    attrs = {"type": "chat"}
    body = make(BODY, text="hello")
    thread = make(f"{{{ns.CLIENT}}}thread")
    msg = make(MSG, attrs, body, thread)
    attrs["type"] = "changed"
    assert msg.get("type") == "chat"  # attributes are copied
    assert list(msg) == [body, thread]
    assert make("a").attrib == {} and make("a").text is None
    assert child(msg, BODY) is body
    assert child(msg, "body") is None
    assert text_of(msg, BODY) == "hello"
    assert text_of(msg, f"{{{ns.CLIENT}}}thread") == ""
    assert text_of(msg, f"{{{ns.CLIENT}}}subject") is None


def test_deep_copy_is_independent() -> None:
    msg = make(MSG, {"id": "1"}, make(BODY, text="x"))
    msg[0].tail = "t"
    dup = deep_copy(msg)
    assert same_tree(dup, msg) and dup is not msg and dup[0] is not msg[0]
    assert dup[0].tail == "t"
    dup.set("id", "2")
    dup[0].text = "y"
    assert msg.get("id") == "1" and msg[0].text == "x"


def test_is_valid_xml_text() -> None:
    assert is_valid_xml_text("")
    assert is_valid_xml_text("tab\tnl\ncr\r ü 😀 \u200d \ufffd \U0010ffff")
    for bad in ("\x00", "\x1f", "\ud83d", "\ufffe", "\uffff", "ok\x0b"):
        assert not is_valid_xml_text(bad)


# -- property: serialize then parse gives the same tree --------------------------------------

_char = st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff")
_text = st.text(st.one_of(st.sampled_from("&<>\"'\t\n\r ]"), _char), max_size=12)
_local = st.builds(
    str.__add__,
    st.sampled_from("aZ_\u00e9\u00fc\u4e2d"),
    st.text(st.sampled_from("bY9_.-\u00e9\u00b7"), max_size=5),
)
_uri = st.sampled_from(
    [None, ns.CLIENT, ns.PING, "urn:a", "urn:b", "http://x/y?a=1&b=<2>\"'", "urn:\u00e9"]
)
_attr_ns = st.sampled_from([None, ns.XML, "urn:a", "urn:c", 'urn:&"'])


def _clark(uri: str | None, local: str) -> str:
    return local if uri is None else f"{{{uri}}}{local}"


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> Element:
    el = Element(_clark(draw(_uri), draw(_local)))
    for key, value in draw(
        st.dictionaries(st.builds(_clark, _attr_ns, _local), _text, max_size=4)
    ).items():
        el.set(key, value)
    el.text = draw(st.none() | _text)
    if depth < 2:
        for sub in draw(st.lists(elements(depth + 1), max_size=3)):
            sub.tail = draw(st.none() | _text)
            el.append(sub)
    return el


@given(elements())
@settings(max_examples=200)
def test_round_trip_as_document(el: Element) -> None:
    assert same_tree(parse_document(serialize(el, None)), el)


@given(st.lists(elements(), min_size=1, max_size=3))
@settings(max_examples=60)
def test_round_trip_inside_a_client_stream(stanzas: list[Element]) -> None:
    head = stream_header(from_=None, to="example.com", stream_id=None)
    data = head + "".join(serialize(s) for s in stanzas) + STREAM_FOOTER
    events = StreamParser().feed(data.encode())
    received = [e.element for e in events if isinstance(e, ElementReceived)]
    assert len(received) == len(stanzas)
    for got, want in zip(received, stanzas, strict=True):
        assert same_tree(got, want)
