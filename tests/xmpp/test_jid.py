"""Tests of carewire.xmpp.jid: RFC 7622 parsing and normalisation."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from precis_i18n import get_profile

from carewire.xmpp.jid import (
    JID,
    BareJid,
    FullJid,
    InvalidJID,
    normalize_domain,
    normalize_localpart,
    normalize_resource,
)

# RFC 7622 §3.5 valid examples, with the normalised form we expect.
VALID = [
    ("juliet@example.com", ("juliet", "example.com", None)),
    ("juliet@example.com/foo", ("juliet", "example.com", "foo")),
    ("juliet@example.com/foo bar", ("juliet", "example.com", "foo bar")),
    ("juliet@example.com/foo@bar", ("juliet", "example.com", "foo@bar")),
    ("foo\\20bar@example.com", ("foo\\20bar", "example.com", None)),
    ("fussball@example.com", ("fussball", "example.com", None)),
    ("fu\u00dfball@example.com", ("fu\u00dfball", "example.com", None)),
    ("\u03c0@example.com", ("\u03c0", "example.com", None)),
    ("\u03a3@example.com/foo", ("\u03c3", "example.com", "foo")),
    ("\u03c3@example.com/foo", ("\u03c3", "example.com", "foo")),
    ("\u03c2@example.com/foo", ("\u03c2", "example.com", "foo")),
    ("king@example.com/\u265a", ("king", "example.com", "\u265a")),
    ("example.com", (None, "example.com", None)),
    ("example.com/foobar", (None, "example.com", "foobar")),
    ("a.example.com/b@example.net", (None, "a.example.com", "b@example.net")),
    # Case folding of localpart and domain, resource case preserved.
    ("Juliet@Example.COM/Balcony", ("juliet", "example.com", "Balcony")),
    # Fullwidth (compatibility) forms are width-mapped in localpart and domain.
    (
        "\uff2a\uff55\uff4c\uff49\uff45\uff54@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002com",
        ("juliet", "example.com", None),
    ),
    # One trailing dot is removed from the domain.
    ("juliet@example.com./x", ("juliet", "example.com", "x")),
    # IDNs are kept as U-labels, A-labels are decoded.
    ("juliet@caf\u00e9.example", ("juliet", "caf\u00e9.example", None)),
    ("juliet@XN--CAF-DMA.example", ("juliet", "caf\u00e9.example", None)),
    ("juliet@xn--Caf-dma.example", ("juliet", "caf\u00e9.example", None)),
    ("juliet@CAF\u00c9.example", ("juliet", "caf\u00e9.example", None)),
    # IP literals.
    ("juliet@192.0.2.1/r", ("juliet", "192.0.2.1", "r")),
    ("juliet@[2001:DB8:0:0::1]", ("juliet", "[2001:db8::1]", None)),
    # OpaqueString maps non-ASCII spaces in the resource to U+0020.
    ("juliet@example.com/a\u00a0b", ("juliet", "example.com", "a b")),
    ("juliet@example.com/ spaced ", ("juliet", "example.com", " spaced ")),
]

# RFC 7622 §3.5 invalid examples and more.
INVALID = [
    ('"juliet"@example.com', "forbidden"),
    ("foo bar@example.com", "localpart"),
    ("juliet&romeo@example.com", "forbidden"),
    ("a:b@example.com", "forbidden"),
    ("<a>@example.com", "forbidden"),
    ("\uff20@example.com", "forbidden"),  # fullwidth @ maps to '@'
    ("@example.com/", "resourcepart"),
    ("@example.com", "empty localpart"),
    ("henri\u2163@example.com", "localpart"),
    ("\u265a@example.com", "localpart"),
    ("juliet@", "empty domainpart"),
    ("/foobar", "empty domainpart"),
    ("juliet@example.com/", "empty resourcepart"),
    ("", "empty domainpart"),
    (".", "empty domainpart"),
    ("juliet@exa mple.com", "domainpart"),
    ("juliet@exa_mple.com", "domainpart"),
    ("juliet@-example.com", "domainpart"),
    ("juliet@example..com", "domainpart"),
    ("juliet@example.com..", "domainpart"),
    ("a@b@example.com", "domainpart"),
    ("juliet@" + "a" * 64 + ".com", "domainpart"),
    ("juliet@xn--zz.example", "A-label"),
    ("juliet@xn--ca-nz.example", "A-label"),
    ("juliet@xn--b-yq0i.example", "A-label"),  # decodes to a fullwidth letter
    ("juliet@ex\u3000ample.com", "domainpart"),
    ("juliet@exa\u0000mple.com", "domain"),
    ("juliet@[::1", "IPv6"),
    ("juliet@[fe80::1%eth0]", "IPv6"),
    ("juliet@[not-an-ip]", "IPv6"),
    ("juliet@256.0.0.1", "IPv4"),
    ("juliet@example.com/a\u0000", "resourcepart"),
    ("juliet@example.com/a\u200db", "resourcepart"),
    ("juliet\u0007@example.com", "localpart"),
    ("j\ud800@example.com", "localpart"),
    ("juliet@example.com/\ud800", "resourcepart"),
]


@pytest.mark.parametrize(("text", "parts"), VALID)
def test_valid_examples(text: str, parts: tuple[str | None, str, str | None]) -> None:
    jid = JID.parse(text)
    assert (jid.localpart, jid.domain, jid.resource) == parts
    assert JID.parse(str(jid)) == jid
    assert JID.make(*parts) == jid


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid_examples(text: str, reason: str) -> None:
    with pytest.raises(InvalidJID, match=reason):
        JID.parse(text)


def test_invalid_jid_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        JID.parse("@")


def test_part_lengths() -> None:
    ok = "a" * 1023
    assert JID.parse(f"{ok}@example.com/{ok}") == JID(ok, "example.com", ok)
    two_bytes = "\u00e9" * 511  # 1022 bytes
    assert JID.make(two_bytes + "e", "example.com", two_bytes + "e").localpart is not None
    for part in ("a" * 1024, "\u00e9" * 512):
        with pytest.raises(InvalidJID, match="longer than 1023"):
            normalize_localpart(part)
        with pytest.raises(InvalidJID, match="longer than 1023"):
            normalize_resource(part)
    labels = ".".join(["a" * 63] * 16)  # 1023 bytes
    assert normalize_domain(labels) == labels
    with pytest.raises(InvalidJID, match="longer than 1023"):
        normalize_domain(labels + ".b")
    with pytest.raises(InvalidJID, match="longer than 1023"):
        normalize_localpart("\u00e9" * 5000)  # refused before PRECIS runs


def test_normalisers() -> None:
    assert normalize_localpart("\uff32\uff2f\uff2d\uff25\uff2f") == "romeo"
    assert normalize_localpart("Jul!et#$%") == "jul!et#$%"
    assert normalize_resource("\u2163 Balcony") == "\u2163 Balcony"
    assert normalize_domain("EXAMPLE.com.") == "example.com"
    assert normalize_domain("[::FFFF:C000:0201]") == "[::ffff:c000:201]"
    assert (
        normalize_domain("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0e\uff43\uff4f\uff4d")
        == "example.com"
    )
    for fn in (normalize_localpart, normalize_resource, normalize_domain):
        with pytest.raises(InvalidJID, match="empty"):
            fn("")


def test_jid_api() -> None:
    full = JID.parse("Juliet@Example.com/Balcony")
    bare = full.bare
    assert bare == JID("juliet", "example.com", None) and bare.is_bare and not full.is_bare
    assert bare.bare is bare
    assert full.full == str(full) == "juliet@example.com/Balcony"
    assert str(bare) == "juliet@example.com"
    assert str(JID.parse("example.com/x")) == "example.com/x"
    assert str(JID.parse("example.com")) == "example.com"
    assert bare.with_resource("\uff30hone") == JID("juliet", "example.com", "\uff30hone")
    with pytest.raises(InvalidJID):
        bare.with_resource("")
    assert {full, JID.parse("juliet@EXAMPLE.com/Balcony")} == {full}
    assert JID.parse("Juliet@Example.com/Balcony") is full  # cached
    assert JID.make(None, "Example.com", None) == JID(None, "example.com", None)
    assert JID.make("a", "b") == JID("a", "b", None)
    with pytest.raises(InvalidJID):
        JID.make("a@b", "example.com", None)
    with pytest.raises(AttributeError):
        full.resource = "x"  # type: ignore[misc]
    b: BareJid = BareJid(str(bare))
    f: FullJid = FullJid(str(full))
    assert (b, f) == ("juliet@example.com", "juliet@example.com/Balcony")


# -- properties ---------------------------------------------------------------------------

_USERNAME = get_profile("UsernameCaseMapped")
_OPAQUE = get_profile("OpaqueString")
_ascii = st.text(st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=20)


def _precis(profile: object, s: str) -> str | None:
    try:
        return profile.enforce(s)  # type: ignore[attr-defined,no-any-return]
    except UnicodeEncodeError:
        return None


@given(_ascii)
def test_ascii_fast_paths_agree_with_precis(s: str) -> None:
    want = _precis(_USERNAME, s)
    if want is not None and set(want) & set("\"&'/:<>@"):
        want = None
    try:
        got: str | None = normalize_localpart(s)
    except InvalidJID:
        got = None
    assert got == want
    want = _precis(_OPAQUE, s)
    try:
        got = normalize_resource(s)
    except InvalidJID:
        got = None
    assert got == want


_part = st.text(
    st.characters(exclude_categories=["Cs"], max_codepoint=0x2FFF), min_size=1, max_size=12
)
_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True)
_domain = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.sampled_from(
        ["caf\u00e9.example", "b\u00fccher.de", "[::1]", "10.0.0.1", "\u043f\u0440.\u0440\u0444"]
    ),
)


@given(st.none() | _part, _domain, st.none() | _part)
@settings(max_examples=300)
def test_parse_of_str_round_trips(local: str | None, domain: str, resource: str | None) -> None:
    try:
        jid = JID.make(local, domain, resource)
    except InvalidJID:
        assume(False)
        raise
    assert JID.parse(str(jid)) == jid
    # Normalisation is idempotent.
    assert JID.make(jid.localpart, jid.domain, jid.resource) == jid


@given(st.text(max_size=30))
@settings(max_examples=300)
def test_parse_never_raises_anything_else(s: str) -> None:
    try:
        jid = JID.parse(s)
    except InvalidJID:
        return
    assert JID.parse(str(jid)) == jid
