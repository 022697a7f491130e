"""Original-mode acknowledgements: MSA, ERR, escaping and unreadable headers."""

from __future__ import annotations

from datetime import UTC, datetime

import hl7

from carewire.adapters.hl7 import ack
from carewire.adapters.hl7.message import read_header

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MSG = b"MSH|^~\\&|ADT1|HOSP|CW|WARD|20260301080000||ADT^A01^ADT_A01|M1|P|2.5\rEVN|A01\r"


def test_aa_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    reply = ack.build_ack(read_header(MSG), ack.AckCode.AA, now=NOW, control_id="C1")
    parsed = hl7.parse(reply.decode())
    msh = parsed.segment("MSH")
    assert [str(msh(i)) for i in (3, 4, 5, 6, 7, 9, 10, 11, 12)] == [
        "CW",
        "WARD",
        "ADT1",
        "HOSP",
        "20260301080000+0000",
        "ACK^A01^ACK",
        "C1",
        "P",
        "2.5",
    ]
    assert str(parsed.segment("MSA")) == "MSA|AA|M1|"
    assert ack.ack_code(reply) is ack.AckCode.AA


def test_ar_carries_the_reason_in_msa3_and_err() -> None:
    reply = ack.build_ack(
        read_header(MSG),
        ack.AckCode.AR,
        now=NOW,
        text="unsupported event A99|x",
        error=ack.ErrorCode.UNSUPPORTED_EVENT_CODE,
    )
    parsed = hl7.parse(reply.decode())
    assert str(parsed.segment("MSA")(3)) == "unsupported event A99\\F\\x"
    err = parsed.segment("ERR")
    assert str(err(3)) == "201^Unsupported event code^HL70357"
    assert str(err(4)) == "E"
    assert ack.ack_code(reply) is ack.AckCode.AR


def test_reject_of_a_message_without_msh_has_an_empty_msa2() -> None:
    reply = ack.reject_unreadable(b"PID|1||X\r", code=ack.AckCode.AR, reason="no MSH", now=NOW)
    assert str(hl7.parse(reply.decode()).segment("MSA")) == "MSA|AR||no MSH"


def test_ack_code_of_garbage_is_none() -> None:
    assert ack.ack_code(b"hello") is None
    assert ack.ack_code(b"MSH|x\rMSA|ZZ|1\r") is None
