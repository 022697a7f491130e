"""Errors of the HL7 v2 adapters, under Carewire's error root.

As in the XMPP core, protocol errors say whose fault they are: a
:class:`RemoteProtocolError` is the sender's (bad framing, an unreadable
header), a :class:`LocalProtocolError` is ours (a state machine used after it
failed).
"""

from __future__ import annotations

from carewire.errors import CarewireError


class Hl7Error(CarewireError):
    """Root of the HL7 adapters' errors."""

    code = "hl7-error"


class RemoteProtocolError(Hl7Error):
    """The peer broke HL7 v2 or MLLP; the connection or message is refused."""

    code = "hl7-remote-protocol"


class LocalProtocolError(Hl7Error):
    """Our own code asked a protocol core for something its state forbids."""

    code = "hl7-local-protocol"


class MllpFramingError(RemoteProtocolError):
    """Bytes that break MLLP framing (outside a block, a start byte inside one …).

    Attributes:
        completed: Messages the same input completed before the error, in order;
            the caller may still process them.
    """

    code = "mllp-framing"

    def __init__(self, message: str, *, completed: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.completed: list[bytes] = list(completed or [])


class MllpOversizeError(MllpFramingError):
    """A block grew past the configured maximum before its end bytes arrived.

    Attributes:
        head: The first bytes of the block (up to the first segment end, at most
            a few KiB), so the caller can read the MSH and answer AR.
    """

    code = "mllp-oversize"

    def __init__(self, message: str, *, head: bytes, completed: list[bytes] | None = None) -> None:
        super().__init__(message, completed=completed)
        self.head = head
