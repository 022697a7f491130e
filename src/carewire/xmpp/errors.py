"""Stream and stanza errors of RFC 6120 §4.9 and §8.3, as exceptions and elements.

Protocol errors say whose fault they are, as in h11: a
:class:`RemoteProtocolError` is the peer's fault (it becomes a stream error we
send), a :class:`LocalProtocolError` is ours (the caller asked the state
machine for something the current state does not allow).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns


class StreamCondition(StrEnum):
    """Defined stream error conditions (RFC 6120 §4.9.3)."""

    BAD_FORMAT = "bad-format"
    BAD_NAMESPACE_PREFIX = "bad-namespace-prefix"
    CONFLICT = "conflict"
    CONNECTION_TIMEOUT = "connection-timeout"
    HOST_GONE = "host-gone"
    HOST_UNKNOWN = "host-unknown"
    IMPROPER_ADDRESSING = "improper-addressing"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    INVALID_FROM = "invalid-from"
    INVALID_NAMESPACE = "invalid-namespace"
    INVALID_XML = "invalid-xml"
    NOT_AUTHORIZED = "not-authorized"
    NOT_WELL_FORMED = "not-well-formed"
    POLICY_VIOLATION = "policy-violation"
    REMOTE_CONNECTION_FAILED = "remote-connection-failed"
    RESET = "reset"
    RESOURCE_CONSTRAINT = "resource-constraint"
    RESTRICTED_XML = "restricted-xml"
    SEE_OTHER_HOST = "see-other-host"
    SYSTEM_SHUTDOWN = "system-shutdown"
    UNDEFINED_CONDITION = "undefined-condition"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    UNSUPPORTED_FEATURE = "unsupported-feature"
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"
    UNSUPPORTED_VERSION = "unsupported-version"


class StanzaCondition(StrEnum):
    """Defined stanza error conditions (RFC 6120 §8.3.3)."""

    BAD_REQUEST = "bad-request"
    CONFLICT = "conflict"
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"
    FORBIDDEN = "forbidden"
    GONE = "gone"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    ITEM_NOT_FOUND = "item-not-found"
    JID_MALFORMED = "jid-malformed"
    NOT_ACCEPTABLE = "not-acceptable"
    NOT_ALLOWED = "not-allowed"
    NOT_AUTHORIZED = "not-authorized"
    POLICY_VIOLATION = "policy-violation"
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"
    REDIRECT = "redirect"
    REGISTRATION_REQUIRED = "registration-required"
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"
    RESOURCE_CONSTRAINT = "resource-constraint"
    SERVICE_UNAVAILABLE = "service-unavailable"
    SUBSCRIPTION_REQUIRED = "subscription-required"
    UNDEFINED_CONDITION = "undefined-condition"
    UNEXPECTED_REQUEST = "unexpected-request"


# RFC 6120 §8.3.2: the error type that goes with each condition by default.
DEFAULT_ERROR_TYPE: dict[StanzaCondition, str] = {
    StanzaCondition.BAD_REQUEST: "modify",
    StanzaCondition.CONFLICT: "cancel",
    StanzaCondition.FEATURE_NOT_IMPLEMENTED: "cancel",
    StanzaCondition.FORBIDDEN: "auth",
    StanzaCondition.GONE: "cancel",
    StanzaCondition.INTERNAL_SERVER_ERROR: "cancel",
    StanzaCondition.ITEM_NOT_FOUND: "cancel",
    StanzaCondition.JID_MALFORMED: "modify",
    StanzaCondition.NOT_ACCEPTABLE: "modify",
    StanzaCondition.NOT_ALLOWED: "cancel",
    StanzaCondition.NOT_AUTHORIZED: "auth",
    StanzaCondition.POLICY_VIOLATION: "modify",
    StanzaCondition.RECIPIENT_UNAVAILABLE: "wait",
    StanzaCondition.REDIRECT: "modify",
    StanzaCondition.REGISTRATION_REQUIRED: "auth",
    StanzaCondition.REMOTE_SERVER_NOT_FOUND: "cancel",
    StanzaCondition.REMOTE_SERVER_TIMEOUT: "wait",
    StanzaCondition.RESOURCE_CONSTRAINT: "wait",
    StanzaCondition.SERVICE_UNAVAILABLE: "cancel",
    StanzaCondition.SUBSCRIPTION_REQUIRED: "auth",
    StanzaCondition.UNDEFINED_CONDITION: "cancel",
    StanzaCondition.UNEXPECTED_REQUEST: "wait",
}


class XMPPError(Exception):
    """Base of protocol errors raised by the sans-IO core."""


class RemoteProtocolError(XMPPError):
    """The peer violated the protocol; carries the stream error to send."""

    def __init__(self, condition: StreamCondition, text: str = "") -> None:
        super().__init__(f"{condition.value}: {text}" if text else condition.value)
        self.condition = condition
        self.text = text
        # What the input completed before the error (e.g. parser events), for the caller.
        self.completed: list[Any] = []


class LocalProtocolError(XMPPError):
    """Our own code asked the state machine for something the state forbids."""


class StanzaError(XMPPError):
    """A stanza-level error (RFC 6120 §8.3); the router turns it into an error reply."""

    def __init__(
        self,
        condition: StanzaCondition,
        text: str = "",
        *,
        error_type: str | None = None,
        app_condition: Element | None = None,
    ) -> None:
        super().__init__(f"{condition.value}: {text}" if text else condition.value)
        self.condition = condition
        self.text = text
        self.error_type = error_type or DEFAULT_ERROR_TYPE[condition]
        self.app_condition = app_condition

    def to_element(self) -> Element:
        """The ``<error/>`` child for an error reply."""
        err = Element(f"{{{ns.CLIENT}}}error", {"type": self.error_type})
        SubElement(err, f"{{{ns.STANZAS_ERR}}}{self.condition.value}")
        if self.text:
            text = SubElement(err, f"{{{ns.STANZAS_ERR}}}text")
            text.text = self.text
        if self.app_condition is not None:
            err.append(self.app_condition)
        return err


def stream_error_element(condition: StreamCondition, text: str = "") -> Element:
    """Build ``<stream:error>`` for ``condition`` (RFC 6120 §4.9.2)."""
    err = Element(f"{{{ns.STREAM}}}error")
    SubElement(err, f"{{{ns.STREAMS_ERR}}}{condition.value}")
    if text:
        t = SubElement(err, f"{{{ns.STREAMS_ERR}}}text")
        t.text = text
    return err
