"""Stanza helpers: IQ validation, replies and error replies (RFC 6120 §8)."""

from __future__ import annotations

import pytest

from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.parser import parse_document


def x(xml: str):  # type: ignore[no-untyped-def]
    return parse_document(f"<w xmlns='{ns.CLIENT}'>{xml}</w>")[0]


@pytest.mark.parametrize(
    "xml",
    [
        "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq type='fetch' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<iq type='get' id='1'/>",
        "<iq type='set' id='1'><a xmlns='u:a'/><b xmlns='u:b'/></iq>",
    ],
)
def test_invalid_iqs(xml: str) -> None:
    with pytest.raises(StanzaError) as exc:
        st.validate_iq(x(xml))
    assert exc.value.condition is StanzaCondition.BAD_REQUEST


def test_result_and_error_replies() -> None:
    iq = x("<iq type='get' id='7' from='a@h/r' to='h'><q xmlns='u:q'/></iq>")
    res = st.iq_result(iq)
    assert (res.get("type"), res.get("id"), res.get("to"), res.get("from")) == (
        "result",
        "7",
        "a@h/r",
        "h",
    )
    err = st.error_reply(iq, StanzaError(StanzaCondition.ITEM_NOT_FOUND, "gone"))
    assert err.get("type") == "error" and len(err) == 1  # IQ payload is not echoed
    msg = x("<message id='m' from='a@h/r' to='b@h'><body>hi</body></message>")
    reply = st.error_reply(msg, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE))
    assert reply.find(f"{{{ns.CLIENT}}}body") is not None  # the sender can tell which one failed
    assert reply.find(f"{{{ns.CLIENT}}}error").get("type") == "cancel"  # type: ignore[union-attr]


def test_never_an_error_for_an_error_or_result() -> None:
    assert not st.can_reply_with_error(x("<message type='error'/>"))
    assert not st.can_reply_with_error(x("<iq type='result' id='1'/>"))
    assert st.can_reply_with_error(x("<iq type='get' id='1'/>"))
    assert st.stanza_kind(x("<presence/>")) == "presence"
    assert st.stanza_kind(parse_document("<foo/>")) is None
