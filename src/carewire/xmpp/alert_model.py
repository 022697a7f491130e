"""The ``urn:carewire:alert:0`` extension's values: alerts, responses, notices (docs/alerts.md).

Frozen dataclasses and enumerations for what :mod:`carewire.xmpp.alert`
builds and parses, the consistency checks both apply
(:func:`check_alert`), and XEP-0082 dates. Pure: no XML here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

from carewire.xmpp.jid import JID, InvalidJID

NS = "urn:carewire:alert:0"
ALERT = f"{{{NS}}}alert"
RESPONSE = f"{{{NS}}}response"
RESPONDED = f"{{{NS}}}responded"

#: Accept and decline badge phrases, combined.
MAX_BADGE_PHRASES = 5
#: A mass alert's time-to-live, in minutes (1 minute to 45 days).
MASS_ALERT_TTL = (1, 64800)


def qname(local: str) -> str:
    """The Clark name of ``local`` in the alert namespace."""
    return f"{{{NS}}}{local}"


class AlertFormatError(ValueError):
    """An alert, response or responded element is malformed (the message says where and why).

    ``condition`` is the RFC 6120 stanza error condition a server answers with.
    """

    condition = "bad-request"


class Priority(StrEnum):
    """An alert's priority level, as the rule's Priority Level setting names it."""

    NORMAL = "Normal"
    IMPORTANT = "Important"
    URGENT = "Urgent"
    CRITICAL = "Critical"

    @property
    def wire(self) -> str:
        """The ``priority`` attribute value (lower case)."""
        return self.value.lower()


class ResponseAction(StrEnum):
    """A response a recipient can give, as written in the ``action`` attribute."""

    ACCEPT = "accept"
    DECLINE = "decline"
    ACCEPT_AND_CALL = "accept-and-call"

    @property
    def setting(self) -> str:
        """The Send Alert setting holding this response's updates (``accept_and_call``)."""
        return self.value.replace("-", "_")

    @property
    def label(self) -> str:
        """As a button shows it (``Accept and Call``)."""
        return _LABELS[self]


_LABELS = {
    ResponseAction.ACCEPT: "Accept",
    ResponseAction.DECLINE: "Decline",
    ResponseAction.ACCEPT_AND_CALL: "Accept and Call",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientDetail:
    """One labelled patient value; ``is_hidden`` ones are for apps, not for display."""

    label: str
    value: str
    is_hidden: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Patient:
    """The patient an alert is about: MRN and the adapter's Patient Details, in order."""

    mrn: str
    details: tuple[PatientDetail, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """Everything a Send Alert (or Send Mass Alert) firing shows a recipient.

    Attributes:
        id: The alert id: the message's XEP-0359 stanza-id and the MESSAGES uuid.
        subject: Short topic (devices show 12 to 20 characters).
        message: The text shown to recipients.
        ttl: Minutes after which the alert no longer applies (at least 1).
        expires_at: When it expires (timezone-aware; sent in UTC).
        priority: Normal, Important, Urgent or Critical.
        short_message: For badges ("" when none).
        alarm_time: The monitor's alarm time as the rule rendered it (None when none).
        patient: The patient, or None.
        event_response_team: Bare JIDs of others involved in the patient's care.
        additional_content: Further text to display ("" when none).
        accept, decline, accept_and_call: Which responses are offered.
        callback_number: Dialled on Accept and Call ("" when none).
        accept_badge_phrases, decline_badge_phrases: Badge phrases (at most 5 combined).
        badge_alert_sound, alert_sound: Sound file names ("" when none).
        vibrate, audible, always_play: Presentation flags.
        custom_parameters: Ordered (name, value) pairs for apps.
        is_mass: A mass alert (no responses).
        re_alert: Sent again to someone already alerted for the same event.
        room: The conversation room's JID, or None.
    """

    id: str
    subject: str
    message: str
    ttl: int
    expires_at: datetime
    priority: Priority = Priority.NORMAL
    short_message: str = ""
    alarm_time: str | None = None
    patient: Patient | None = None
    event_response_team: tuple[str, ...] = ()
    additional_content: str = ""
    accept: bool = False
    decline: bool = False
    accept_and_call: bool = False
    callback_number: str = ""
    accept_badge_phrases: tuple[str, ...] = ()
    decline_badge_phrases: tuple[str, ...] = ()
    badge_alert_sound: str = ""
    vibrate: bool = False
    audible: bool = False
    alert_sound: str = ""
    always_play: bool = False
    custom_parameters: tuple[tuple[str, str], ...] = ()
    is_mass: bool = False
    re_alert: bool = False
    room: str | None = None

    @property
    def offered(self) -> tuple[ResponseAction, ...]:
        """The responses offered, in button order."""
        flags = (
            (self.accept, ResponseAction.ACCEPT),
            (self.accept_and_call, ResponseAction.ACCEPT_AND_CALL),
            (self.decline, ResponseAction.DECLINE),
        )
        return tuple(action for is_on, action in flags if is_on)

    def offers(self, action: ResponseAction) -> bool:
        """Whether recipients may answer with ``action``."""
        return action in self.offered

    def is_expired(self, now: datetime) -> bool:
        """Whether the alert no longer applies at ``now``."""
        return now >= self.expires_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A recipient's answer to an alert."""

    alert_id: str
    action: ResponseAction


@dataclass(frozen=True, slots=True, kw_only=True)
class Responded:
    """The server's notice that ``by`` (a bare JID) answered an alert with ``action``."""

    alert_id: str
    by: str
    action: ResponseAction


# --- checks shared by the builder and the parser --------------------------------------------


def check_alert(alert: Alert) -> None:
    """Raise AlertFormatError unless ``alert`` is consistent."""
    if not alert.id:
        raise AlertFormatError("the alert id is empty")
    if isinstance(alert.ttl, bool) or not isinstance(alert.ttl, int) or alert.ttl < 1:
        raise AlertFormatError(f"ttl must be a whole number of minutes, 1 or more: {alert.ttl!r}")
    if alert.expires_at.tzinfo is None or alert.expires_at.utcoffset() is None:
        raise AlertFormatError("expires_at must be timezone-aware")
    phrases = len(alert.accept_badge_phrases) + len(alert.decline_badge_phrases)
    if phrases > MAX_BADGE_PHRASES:
        raise AlertFormatError(
            f"{phrases} badge phrases: at most {MAX_BADGE_PHRASES} accept and decline "
            "phrases combined"
        )
    if alert.accept_badge_phrases and not alert.accept:
        raise AlertFormatError("accept badge phrases given, but Accept is not offered")
    if alert.decline_badge_phrases and not alert.decline:
        raise AlertFormatError("decline badge phrases given, but Decline is not offered")
    if alert.callback_number and not alert.accept_and_call:
        raise AlertFormatError("a callback number given, but Accept and Call is not offered")
    if alert.is_mass:
        low, high = MASS_ALERT_TTL
        if not low <= alert.ttl <= high:
            raise AlertFormatError(
                f"a mass alert's ttl must be between {low} and {high} minutes: {alert.ttl}"
            )
        if alert.offered:
            raise AlertFormatError("a mass alert offers no responses")
    if alert.patient is not None:
        if not alert.patient.mrn:
            raise AlertFormatError("the patient's mrn is empty")
        for d in alert.patient.details:
            if not d.label:
                raise AlertFormatError("a patient detail has an empty label")
    for member in alert.event_response_team:
        checked_jid(member, "event response team member")
    if alert.room is not None:
        checked_jid(alert.room, "room")
    for name, _ in alert.custom_parameters:
        if not name:
            raise AlertFormatError("a custom parameter has an empty name")


def checked_jid(text: str, what: str) -> str:
    """``text`` if it is a valid JID, else AlertFormatError naming ``what``."""
    try:
        JID.parse(text)
    except InvalidJID as exc:
        raise AlertFormatError(f"{what} {text!r} is not a valid JID: {exc}") from None
    return text


# --- dates (XEP-0082 DateTime) ---------------------------------------------------------------

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})\Z"
)


def format_datetime(value: datetime) -> str:
    """XEP-0082 DateTime in UTC (``2026-03-01T08:30:00Z``; fractions only when non-zero)."""
    utc = value.astimezone(UTC)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def parse_datetime(text: str) -> datetime:
    """A XEP-0082 DateTime (any offset) as an aware UTC datetime.

    Raises:
        AlertFormatError: It is not a XEP-0082 DateTime.
    """
    m = _DATETIME.match(text)
    if m is None:
        raise AlertFormatError(f"{text!r} is not a XEP-0082 date and time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7), m.group(8)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise AlertFormatError(f"{text!r} is not a valid date and time: {exc}") from None
    return value.astimezone(UTC)
