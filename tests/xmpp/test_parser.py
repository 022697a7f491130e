"""Tests of carewire.xmpp.parser: events, chunking and hardening (RFC 6120 §11, RFC 7395)."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StreamCondition
from carewire.xmpp.parser import (
    ElementReceived,
    ParserEvent,
    ParserLimits,
    StreamClosed,
    StreamOpened,
    StreamParser,
    parse_document,
)
from carewire.xmpp.xml import serialize

C = StreamCondition
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' "
    b"xml:lang='en'>"
)
MESSAGE = (
    b"<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' "
    b"id='ktx72v49' xml:lang='en'><body>Art thou not Romeo &amp; a Montague?</body>"
    b"<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
)
XML_LANG = f"{{{ns.XML}}}lang"


def opened(limits: ParserLimits | None = None) -> StreamParser:
    parser = StreamParser(limits) if limits else StreamParser()
    assert len(parser.feed(HEADER)) == 1
    return parser


def fails(condition: StreamCondition, parser: StreamParser, *chunks: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        for chunk in chunks:
            parser.feed(chunk)
    assert info.value.condition is condition, info.value
    # The parser is dead from now on.
    with pytest.raises(RemoteProtocolError) as again:
        parser.feed(b" ")
    assert again.value.condition is condition


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def describe(events: list[ParserEvent]) -> list[object]:
    out: list[object] = []
    for event in events:
        if isinstance(event, ElementReceived):
            out.append(("element", serialize(event.element, None)))
        else:
            out.append(event)
    return out


# -- the normal flow -----------------------------------------------------------------------


def test_stream_open_stanzas_keepalives_and_close() -> None:
    parser = StreamParser()
    [head] = parser.feed(HEADER)
    assert head == StreamOpened(
        f"{{{ns.STREAM}}}stream", {"to": "example.com", "version": "1.0", XML_LANG: "en"}
    )
    [got] = parser.feed(MESSAGE)
    assert isinstance(got, ElementReceived)
    msg = got.element
    assert msg.tag == f"{{{ns.CLIENT}}}message"
    assert msg.get("type") == "chat" and msg.get(XML_LANG) == "en"
    assert msg[0].tag == f"{{{ns.CLIENT}}}body"
    assert msg[0].text == "Art thou not Romeo & a Montague?"
    assert msg[1].tag == "{http://jabber.org/protocol/chatstates}active"
    assert parser.feed(b" \n\t\r ") == []
    assert parser.feed(b"</stream:stream>") == [StreamClosed()]


def test_several_stanzas_in_one_chunk_and_partial_ones() -> None:
    parser = opened()
    events = parser.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> <presence/><iq")
    assert [e.element.tag for e in events if isinstance(e, ElementReceived)] == [
        f"{{{ns.TLS}}}starttls",
        f"{{{ns.CLIENT}}}presence",
    ]
    [iq] = parser.feed(b" type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert isinstance(iq, ElementReceived)
    assert iq.element.attrib == {"type": "get", "id": "1"}
    assert [c.tag for c in iq.element] == [f"{{{ns.PING}}}ping"]


def test_mixed_content_entities_cdata_and_char_refs() -> None:
    parser = opened()
    [got] = parser.feed(
        b"<message><body>a &lt;b&gt; &amp; &quot;&apos; &#233;&#x1F600; <![CDATA[<raw>&]]>"
        b"<i>x</i> tail1 <b/>tail2\xc3\xa9</body></message>"
    )
    assert isinstance(got, ElementReceived)
    body = got.element[0]
    assert body.text == "a <b> & \"' \u00e9\U0001f600 <raw>&"
    assert body[0].text == "x" and body[0].tail == " tail1 "
    assert body[1].tail == "tail2\u00e9"


def test_many_distinct_names() -> None:
    # More names than the shared name cache holds.
    parser = opened()
    kids = b"".join(b"<n%d xmlns='urn:%d'/>" % (i, i % 7) for i in range(5000))
    [got] = parser.feed(b"<message>" + kids + b"</message>")
    assert isinstance(got, ElementReceived)
    assert len(got.element) == 5000 and got.element[4999].tag == "{urn:1}n4999"
    assert len(parser.feed(MESSAGE)) == 1


def test_attribute_namespaces_and_values() -> None:
    parser = opened()
    [got] = parser.feed(
        b"<iq xmlns:p='urn:p' p:a='1' b='&amp;&#10;\t x' type='set'><q xmlns='urn:q'/></iq>"
    )
    assert isinstance(got, ElementReceived)
    assert got.element.attrib == {"{urn:p}a": "1", "b": "&\n  x", "type": "set"}
    assert got.element[0].tag == "{urn:q}q"


def test_stream_opened_attribute_keys() -> None:
    [head] = StreamParser().feed(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server'"
        b" xmlns:db='jabber:server:dialback' from='a' to='b' id='c' version='1.0'"
        b" xml:lang='de' db:x='y'>"
    )
    assert isinstance(head, StreamOpened)
    assert head.attrs == {
        "from": "a",
        "to": "b",
        "id": "c",
        "version": "1.0",
        XML_LANG: "de",
        "{jabber:server:dialback}x": "y",
    }


def test_reset_starts_a_new_stream() -> None:
    parser = opened()
    assert parser.feed(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    parser.reset()
    [again] = parser.feed(HEADER)  # the XML declaration is allowed again
    assert isinstance(again, StreamOpened)
    assert parser.feed(MESSAGE)


def test_reset_revives_a_dead_parser() -> None:
    parser = opened()
    fails(C.NOT_WELL_FORMED, parser, b"<a></b>")
    parser.reset()
    assert parser.feed(HEADER)


def test_utf8_bom_and_declaration_spellings_are_fine() -> None:
    for head in (
        b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>",
        b"<?xml version='1.0' encoding='utf-8' standalone='yes'?>",
        b'<?xml version="1.0" encoding="utf8"?>',
        b"",
    ):
        events = StreamParser().feed(
            head + b"\n<stream:stream xmlns:stream='" + ns.STREAM.encode() + b"'>"
        )
        assert len(events) == 1


def test_junk_after_the_stream_is_not_well_formed() -> None:
    parser = opened()
    assert parser.feed(b"</stream:stream>") == [StreamClosed()]
    assert parser.feed(b"\n") == []
    fails(C.NOT_WELL_FORMED, parser, b"<more/>")


# -- chunking -----------------------------------------------------------------------------

LONG_TAG = (
    b"<message id='" + b"x" * 3000 + b"' a='>>\"\"' b=\"''>\" c='" + b">" * 2500 + b"'>"
    b"<body>long</body></message>"
)
STREAM = (
    HEADER
    + MESSAGE
    + b"\n  <presence/><iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
    + b"<message><body>\xe2\x82\xac &amp; &#x1F600; <![CDATA[<x>]]>\xf0\x9f\x98\x80</body>"
    + b"</message>"
    + LONG_TAG
    + b" \n</stream:stream>"
)


def test_byte_by_byte_equals_all_at_once() -> None:
    whole = describe(StreamParser().feed(STREAM))
    assert len(whole) == 7
    parser = StreamParser()
    pieces: list[ParserEvent] = []
    for chunk in bytewise(STREAM):
        pieces += parser.feed(chunk)
    assert describe(pieces) == whole


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=30))
@settings(max_examples=200)
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    parser = StreamParser()
    events: list[ParserEvent] = []
    for a, b in itertools.pairwise(bounds):
        events += parser.feed(STREAM[a:b])
    assert describe(events) == describe(StreamParser().feed(STREAM))


def test_long_start_tag_events_are_not_delayed() -> None:
    parser = opened()
    for chunk in bytewise(LONG_TAG[:-30]):
        assert parser.feed(chunk) == []
    [got] = parser.feed(LONG_TAG[-30:])
    assert isinstance(got, ElementReceived)
    assert got.element.get("c") == ">" * 2500 and got.element.get("b") == "''>"
    # A stanza right behind a long start tag comes out at once as well.
    parser = opened()
    assert parser.feed(LONG_TAG[:-30]) == []
    assert len(parser.feed(LONG_TAG[-30:] + MESSAGE + b"<x")) == 2


@given(st.binary(max_size=200))
@settings(max_examples=500)
def test_random_bytes_only_raise_protocol_errors(data: bytes) -> None:
    for prefix in (b"", HEADER):
        parser = StreamParser()
        try:
            parser.feed(prefix)
            parser.feed(data)
        except RemoteProtocolError:
            pass
    with contextlib.suppress(RemoteProtocolError):
        parse_document(data)


@given(st.binary(max_size=60), st.integers(min_value=0, max_value=len(MESSAGE)))
@settings(max_examples=300)
def test_corrupted_stanzas_only_raise_protocol_errors(junk: bytes, at: int) -> None:
    parser = opened()
    with contextlib.suppress(RemoteProtocolError):
        parser.feed(MESSAGE[:at] + junk + MESSAGE[at:])


# -- restricted XML (RFC 6120 §11.1) --------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol3;"""


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        b"<!DOCTYPE stream>",
        b"<!DOCTYPE s SYSTEM 'file:///etc/passwd'><s>&ext;</s>",
        b"<!DOCTYPE s [<!ENTITY % p SYSTEM 'http://evil/'> %p;]><s/>",
        b"<!DOCTYPE s [<!NOTATION n SYSTEM 'x'>]><s/>",
        b"<?xml-stylesheet href='x'?><s/>",
        b"<!-- hello --><s/>",
    ],
)
def test_prolog_markup_is_restricted(data: bytes) -> None:
    fails(C.RESTRICTED_XML, StreamParser(), data)
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(data)
    assert info.value.condition is C.RESTRICTED_XML


@pytest.mark.parametrize(
    "data",
    [
        b"<message><?php echo 1?></message>",
        b"<!-- between stanzas -->",
        b"<message><body>a<!-- c -->b</body></message>",
        b"<?pi?>",
    ],
)
def test_comments_and_pis_in_the_stream_are_restricted(data: bytes) -> None:
    fails(C.RESTRICTED_XML, opened(), data)


@pytest.mark.parametrize("chunked", [False, True])
def test_huge_comment_is_refused_early(chunked: bool) -> None:
    data = b"<!--" + b"a" * 5000
    parser = opened()
    fails(C.RESTRICTED_XML, parser, *(bytewise(data) if chunked else [data]))


@pytest.mark.parametrize(
    "data",
    [
        b"<message>&nbsp;</message>",
        b"<message a='&foo;'/>",
        b"<message>&#0;</message>",
        b"<message>&#xD800;</message>",
        b"<a></b>",
        b"<a b='1' b='2'/>",
        b"<a xmlns:p='x' p:b='1' xmlns:q='x' q:b='2'/>",
        b"<p:a/>",
        b"<a p:b='1'/>",
        b"<a>\x00</a>",
        b"<a>\x80</a>",
        b"<a>\xc0\xaf</a>",
        b"<a>\xed\xa0\x80</a>",
        b"<a>\xef\xbf\xbe</a>",
        b"<a b='\xff'/>",
        b"<?xml version='1.0'?>",
    ],
)
def test_malformed_xml_is_not_well_formed(data: bytes) -> None:
    fails(C.NOT_WELL_FORMED, opened(), data)


@pytest.mark.parametrize(
    "head",
    [
        b"<?xml version='1.0' encoding='ISO-8859-1'?>",
        b"<?xml version='1.0' encoding='UTF-16'?>",
        b"\xff\xfe<\x00s\x00/\x00>\x00",
        b"\xfe\xff\x00<\x00s\x00/\x00>",
    ],
)
def test_other_encodings_are_unsupported(head: bytes) -> None:
    fails(C.UNSUPPORTED_ENCODING, StreamParser(), head + b"<s/>")
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(head + b"<s/>")
    assert info.value.condition is C.UNSUPPORTED_ENCODING


def test_text_between_stanzas_is_bad_format() -> None:
    fails(C.BAD_FORMAT, opened(), b"<presence/> hello <presence/>")
    fails(C.BAD_FORMAT, opened(), b"\xc2\xa0")  # no-break space is not XML white space


# -- limits -----------------------------------------------------------------------------------

SMALL = ParserLimits(max_stanza_bytes=1024)


def _stanza(size: int, *, end: bytes = b"</message>") -> bytes:
    head = b"<message><body>"
    filler = size - len(head) - len(b"</body>") - len(end)
    return head + b"x" * filler + b"</body>" + end


@pytest.mark.parametrize("end", [b"</message>", b"</message \n\t >"])
@pytest.mark.parametrize("chunked", [False, True])
def test_stanza_size_limit_is_exact(end: bytes, chunked: bool) -> None:
    for size, ok in ((1024, True), (1025, False)):
        data = _stanza(size, end=end) + b"<presence/>"
        parser = opened(SMALL)
        chunks = bytewise(data) if chunked else [data]
        if ok:
            assert sum(len(parser.feed(c)) for c in chunks) == 2
        else:
            fails(C.POLICY_VIOLATION, parser, *chunks)


def test_empty_element_size_limit_is_exact() -> None:
    def empty(size: int) -> bytes:
        return b"<presence a='" + b"v" * (size - len(b"<presence a=''/>")) + b"'/>"

    for after in (b"</stream:stream>", b"<presence/>", b" "):
        assert len(opened(SMALL).feed(empty(1024) + after)) == 2 - (after == b" ")
        fails(C.POLICY_VIOLATION, opened(SMALL), empty(1025) + after)


def test_oversized_stanza_with_default_limits() -> None:
    big = _stanza(262_144)
    parser = opened()
    assert len(parser.feed(big)) == 1
    fails(C.POLICY_VIOLATION, parser, _stanza(262_145))


def test_oversized_stanza_is_refused_before_it_ends() -> None:
    parser = opened()
    fails(C.POLICY_VIOLATION, parser, b"<message><body>" + b"x" * 300_000)


def test_oversized_stanza_fed_bytewise() -> None:
    parser = opened(ParserLimits(max_stanza_bytes=20_000))
    data = b"<message><body>" + b"\xe2\x82\xac" * 10_000
    fails(C.POLICY_VIOLATION, parser, *bytewise(data))


@pytest.mark.parametrize("chunked", [False, True])
def test_never_ending_start_tag(chunked: bool) -> None:
    data = b"<message to='" + b"a" * 270_000
    fails(C.POLICY_VIOLATION, opened(), *(bytewise(data) if chunked else [data]))


def test_never_ending_start_tag_full_of_quotes_and_brackets() -> None:
    # Each '>' sits inside a quoted value: none of them may end the tag.
    parser = opened()
    chunks = [b"<message "] + [b"a%d='>' " % i for i in range(30_000)]
    fails(C.POLICY_VIOLATION, parser, *chunks)


def test_never_ending_root_start_tag() -> None:
    fails(C.POLICY_VIOLATION, StreamParser(), b"<stream:stream a='" + b"b" * 300_000)


@pytest.mark.parametrize(
    "data", [b"</message" + b" " * 5000, b"<message>&" + b"a" * 5000, b"&" + b"a" * 5000]
)
def test_other_oversized_tokens(data: bytes) -> None:
    fails(C.POLICY_VIOLATION, opened(), *bytewise(data))


def test_whitespace_keepalives_do_not_accumulate() -> None:
    parser = opened(SMALL)
    for _ in range(2000):
        assert parser.feed(b" \n") == []
    assert parser.feed(b" " * 100_000) == []
    assert len(parser.feed(_stanza(1024))) == 1


def test_depth_limit() -> None:
    limits = ParserLimits(max_depth=5)
    ok = b"<a><b><c><d><e/></d></c></b></a>"
    assert len(opened(limits).feed(ok)) == 1
    fails(C.POLICY_VIOLATION, opened(limits), b"<a><b><c><d><e><f/></e></d></c></b></a>")
    deep = b"<a>" * 64 + b"</a>" * 64
    assert len(opened().feed(deep)) == 1
    fails(C.POLICY_VIOLATION, opened(), b"<a>" * 65)


def test_attribute_limits() -> None:
    many = b"<a " + b" ".join(b"a%d='1'" % i for i in range(64)) + b"/>"
    assert len(opened().feed(many)) == 1
    too_many = b"<a " + b" ".join(b"a%d='1'" % i for i in range(65)) + b"/>"
    fails(C.POLICY_VIOLATION, opened(), too_many)
    fails(C.POLICY_VIOLATION, StreamParser(), b"<s " + too_many[3:])


def test_attribute_value_limit_counts_utf8_bytes() -> None:
    assert len(opened().feed(b"<a v='" + b"x" * 4096 + b"'/>")) == 1
    fails(C.POLICY_VIOLATION, opened(), b"<a v='" + b"x" * 4097 + b"'/>")
    euros = "\u20ac" * 1366  # 4098 bytes in fewer than 4096 characters
    fails(C.POLICY_VIOLATION, opened(), b"<a v='" + euros.encode() + b"'/>")
    fails(C.POLICY_VIOLATION, opened(), b"<a xmlns:p='u' p:v='" + euros.encode() + b"'/>")


def test_xml_lang_limit() -> None:
    assert len(opened().feed(b"<a xml:lang='" + b"x" * 64 + b"'/>")) == 1
    fails(C.POLICY_VIOLATION, opened(), b"<a xml:lang='" + b"x" * 65 + b"'/>")
    fails(C.POLICY_VIOLATION, StreamParser(), b"<s xml:lang='" + b"x" * 65 + b"'>")


def test_custom_limits() -> None:
    limits = ParserLimits(max_attributes=3, max_attribute_bytes=11, max_lang_bytes=2)
    assert len(opened(limits).feed(b"<a b='12345678901'/><a xml:lang='en'/>")) == 2
    fails(C.POLICY_VIOLATION, opened(limits), b"<a b='123456789012'/>")
    fails(C.POLICY_VIOLATION, opened(limits), b"<a b='1' c='2' d='3' e='4'/>")
    fails(C.POLICY_VIOLATION, opened(limits), b"<a xml:lang='enx'/>")
    with pytest.raises(AttributeError):
        limits.max_depth = 3  # type: ignore[misc]


# -- parse_document (RFC 7395 WebSocket messages) ----------------------------------------------


def test_parse_document_stanza_and_framing() -> None:
    msg = parse_document(b"<message xmlns='jabber:client' to='a@b'><body>hi</body></message>")
    assert msg.tag == f"{{{ns.CLIENT}}}message" and msg[0].text == "hi"
    op = parse_document(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"
    )
    assert op.tag == f"{{{ns.FRAMING}}}open" and op.get("to") == "example.com"
    assert parse_document("<?xml version='1.0'?>\n<close xmlns='urn:x'/>\n").tag == "{urn:x}close"
    assert parse_document("<a>\u00e9</a>").text == "\u00e9"


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"<a/><b/>", b"<a/>junk", b"text<a/>", b"<a>", b"<a/><", "<a>\ud800</a>"],
)
def test_parse_document_needs_exactly_one_element(data: bytes | str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(data)
    assert info.value.condition is C.NOT_WELL_FORMED


def test_parse_document_never_ending_start_tag() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(b"<a b='" + b"x" * 300_000)
    assert info.value.condition is C.POLICY_VIOLATION


def test_parse_document_limits() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(_stanza(1025), SMALL)
    assert info.value.condition is C.POLICY_VIOLATION
    assert parse_document(_stanza(1024), SMALL).tag == "message"
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(b"<a>" * 65 + b"</a>" * 65)
    assert info.value.condition is C.POLICY_VIOLATION
    assert len(parse_document(b"<a>" * 64 + b"</a>" * 64)) == 1
    with pytest.raises(RemoteProtocolError) as info:
        parse_document(b"<a>" + b"x" * 300_000 + b"</a>")
    assert info.value.condition is C.POLICY_VIOLATION


@pytest.mark.parametrize("split", [None, 997])
def test_long_text_in_many_pieces_is_joined_exactly(split: int | None) -> None:
    """Text longer than expat's small buffer, with entities and lines, mixed with children."""
    from carewire.xmpp.parser import TEXT_BUFFER

    body = "".join(f"line {i} &amp; &lt;ok&gt;\n" for i in range(TEXT_BUFFER // 4))
    tail = "é" * (TEXT_BUFFER * 3)
    data = (
        f"<message><body>{body}</body><x xmlns='urn:t'>head<y/>{tail}<z/>end</x></message>"
    ).encode()
    parser = opened()
    chunks = [data] if split is None else [data[i : i + split] for i in range(0, len(data), split)]
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    assert len(events) == 1 and isinstance(events[0], ElementReceived)
    el = events[0].element
    expected = body.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    assert el[0].text == expected and len(expected) > TEXT_BUFFER
    x = el[1]
    assert (x.text, x[0].tail, x[1].tail) == ("head", tail, "end")


def test_a_compacted_parser_carries_on_in_the_same_namespace_scope() -> None:
    """Idle between stanzas, expat is dropped; the next bytes parse as if it never was."""
    parser = opened()
    first = parser.feed(MESSAGE)
    assert parser.compact()
    assert not parser.compact()  # already compacted: nothing more to free
    # The next stanza is split mid-tag: the revived parser keeps the stream's scope
    # (default jabber:client, the stream: prefix) and its limits.
    half = len(MESSAGE) // 2
    assert parser.feed(MESSAGE[:half]) == []
    assert not parser.compact()  # mid-stanza: refused
    second = parser.feed(MESSAGE[half:] + b"<stream:error><x/></stream:error>")
    assert describe(second[:1]) == describe(first)
    assert second[1].element.tag == "{http://etherx.jabber.org/streams}error"
    assert parser.compact()
    assert describe(parser.feed(b"</stream:stream>")) == describe([StreamClosed()])


def test_a_compacted_parser_still_enforces_the_stanza_limit() -> None:
    parser = opened(ParserLimits(max_stanza_bytes=400))
    assert parser.compact()
    fails(C.POLICY_VIOLATION, parser, b"<message><body>" + b"x" * 500 + b"</body></message>")


def test_compact_is_refused_before_the_header_and_mid_token() -> None:
    parser = StreamParser()
    assert not parser.compact()
    parser.feed(HEADER)
    parser.feed(b"<message to='a@b'")
    assert not parser.compact()
