"""The SASL2 wire format (carewire.xmpp.sasl2): parsing, rendering, HT-* and the XEP-0474 hash."""

from __future__ import annotations

import pytest

from carewire.xmpp import ns
from carewire.xmpp.parser import parse_document
from carewire.xmpp.sasl2 import (
    BIND2,
    HT_ENDP,
    HT_NONE,
    SASL2,
    MalformedAuthenticate,
    Offer,
    failure_element,
    ht_initiator,
    ht_responder,
    offer_features,
    parse_authenticate,
    parse_offered,
    split_ht_response,
    ssdp_hash,
    success_element,
)
from carewire.xmpp.xml import serialize


def test_the_xep_0474_example_hash() -> None:
    mechs = ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]
    cbs = ["tls-server-end-point", "tls-exporter"]
    assert ssdp_hash(mechs, cbs, "sha1") == "G6k/rBLDqgOhRRaCuuatSDFkJ08="
    assert ssdp_hash(reversed(mechs), cbs, "sha1") == "G6k/rBLDqgOhRRaCuuatSDFkJ08="  # sorted
    assert ssdp_hash(mechs, None, "sha1") != ssdp_hash(mechs, [], "sha1")


def test_a_full_authenticate_is_parsed() -> None:
    element = parse_document(
        f"<authenticate xmlns='{SASL2}' mechanism='{HT_NONE}'>"
        "<initial-response> YWxpY2UA </initial-response>"
        "<user-agent id='ua-1'><software>Ward</software><device>Phone 12</device></user-agent>"
        f"<bind xmlns='{BIND2}'><tag>Ward</tag><enable xmlns='{ns.CARBONS}'/></bind>"
        f"<request-token xmlns='urn:xmpp:fast:0' mechanism='{HT_ENDP}'/>"
        "<fast xmlns='urn:xmpp:fast:0' count='7' invalidate='true'/>"
        f"<resume xmlns='{ns.SM}' previd='p' h='1'/>"
        "<pin xmlns='urn:carewire:pin:0'> 2580 </pin></authenticate>"
    )
    request = parse_authenticate(element)
    assert (request.mechanism, request.initial_response) == (HT_NONE, b"alice\0")
    assert (request.agent_id, request.software, request.device) == ("ua-1", "Ward", "Phone 12")
    assert request.bind is not None and request.bind.tag == "Ward"
    assert [c.tag for c in request.bind.inline] == [f"{{{ns.CARBONS}}}enable"]
    assert request.request_token == HT_ENDP and request.pin == "2580"
    assert request.fast is not None and (request.fast.count, request.fast.is_invalidate) == (
        7,
        True,
    )
    assert request.resume is not None and request.resume.get("previd") == "p"
    offer = Offer(mechanisms=("PLAIN",), fast=(HT_NONE,))
    assert parse_offered(element, offer) == request
    with pytest.raises(MalformedAuthenticate) as refused:
        parse_offered(element, Offer(mechanisms=("PLAIN",)))
    assert refused.value.condition == "invalid-mechanism"


@pytest.mark.parametrize(
    ("xml", "condition"),
    [
        ("<user-agent id=''/>", "malformed-request"),
        (f"<user-agent id='{'x' * 129}'/>", "malformed-request"),
        ("<pin xmlns='urn:carewire:pin:0'/>", "malformed-request"),
        ("<fast xmlns='urn:xmpp:fast:0' count='1e3'/>", "malformed-request"),
        ("<request-token xmlns='urn:xmpp:fast:0'/>", "invalid-mechanism"),
        ("<initial-response>a b c</initial-response>", "incorrect-encoding"),
    ],
)
def test_malformed_parts(xml: str, condition: str) -> None:
    element = parse_document(
        f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'>{xml}</authenticate>"
    )
    with pytest.raises(MalformedAuthenticate) as refused:
        parse_authenticate(element)
    assert refused.value.condition == condition


def test_a_minimal_authenticate() -> None:
    element = parse_document(
        f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'><user-agent id='ua'/></authenticate>"
    )
    request = parse_authenticate(element)
    assert (request.agent_id, request.software, request.device) == ("ua", "", "")
    assert request.initial_response is None and request.bind is None and request.fast is None


def test_ht_messages() -> None:
    proof = ht_initiator(b"token", b"cb")
    assert proof != ht_initiator(b"token") and proof != ht_responder(b"token", b"cb")
    assert split_ht_response(b"alice\0" + proof) == ("alice", proof)
    for bad in (None, b"", b"alice", b"\0" + proof, b"alice\0short", b"\xff\0" + proof):
        with pytest.raises(MalformedAuthenticate):
            split_ht_response(bad)


def test_rendered_elements_round_trip() -> None:
    success = parse_document(serialize(success_element("a@b/c", b"v=1"), None))
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == "a@b/c"
    assert success.findtext(f"{{{SASL2}}}additional-data") == "dj0x"
    failure = parse_document(serialize(failure_element("aborted", "why"), None))
    assert failure.find(f"{{{ns.SASL}}}aborted") is not None
    assert failure.findtext(f"{{{SASL2}}}text") == "why"
    auth, cb = offer_features(
        Offer(mechanisms=("PLAIN",), fast=(HT_NONE,), channel_bindings=("tls-server-end-point",))
    )
    assert [m.text for m in auth.iter(f"{{{SASL2}}}mechanism")] == ["PLAIN"]
    assert cb[0].get("type") == "tls-server-end-point"
    (only,) = offer_features(Offer(mechanisms=("PLAIN",)))  # no channel binding: no element
    assert only.find(f"{{{SASL2}}}inline/{{urn:xmpp:fast:0}}fast") is None
