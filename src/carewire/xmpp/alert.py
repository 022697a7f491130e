"""Clinical alerts with responses: the ``urn:carewire:alert:0`` extension (docs/alerts.md).

An alert travels inside a message as ``<alert xmlns='urn:carewire:alert:0'/>``
next to a readable ``<body/>`` (:func:`readable_body`) for clients that do not
know the extension. A recipient answers with ``<response/>`` (Accept,
Decline, Accept and Call); the server tells the other recipients with
``<responded/>``. Everything here is pure: elements in, dataclasses out, and
back. Malformed input raises :class:`AlertFormatError` naming the element or
attribute at fault; the builder applies the same checks, so an alert that
builds always parses back to an equal :class:`Alert`.

Extensibility: unknown attributes and children in other namespaces are
ignored; an unknown child in this namespace is an error (a typo, or a newer
version of the namespace, which would have a new namespace name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.ns import CLIENT
from carewire.xmpp.parser import parse_document

NS = "urn:carewire:alert:0"
ALERT = f"{{{NS}}}alert"
RESPONSE = f"{{{NS}}}response"
RESPONDED = f"{{{NS}}}responded"

#: Accept and decline badge phrases, combined.
MAX_BADGE_PHRASES = 5
#: A mass alert's time-to-live, in minutes (1 minute to 45 days).
MASS_ALERT_TTL = (1, 64800)


def _q(local: str) -> str:
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


def _check(alert: Alert) -> None:
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
        _jid(member, "event response team member")
    if alert.room is not None:
        _jid(alert.room, "room")
    for name, _ in alert.custom_parameters:
        if not name:
            raise AlertFormatError("a custom parameter has an empty name")


def _jid(text: str, what: str) -> str:
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


# --- building ---------------------------------------------------------------------------------


def _text_child(parent: Element, local: str, text: str) -> None:
    SubElement(parent, _q(local)).text = text or None


def build_alert(alert: Alert) -> Element:
    """The ``<alert xmlns='urn:carewire:alert:0'/>`` element for ``alert``.

    Raises:
        AlertFormatError: The alert is inconsistent (empty id, ttl below 1,
            more than 5 badge phrases, phrases for a response not offered, a
            mass alert with responses or a ttl over 45 days, an invalid JID, …).
    """
    _check(alert)
    attrs = {
        "id": alert.id,
        "priority": alert.priority.wire,
        "ttl": str(alert.ttl),
        "expires": format_datetime(alert.expires_at),
    }
    if alert.is_mass:
        attrs["mass"] = "true"
    if alert.re_alert:
        attrs["re-alert"] = "true"
    if alert.room is not None:
        attrs["room"] = alert.room
    el = Element(ALERT, attrs)
    _text_child(el, "subject", alert.subject)
    _text_child(el, "message", alert.message)
    if alert.short_message:
        _text_child(el, "short-message", alert.short_message)
    if alert.alarm_time is not None:
        _text_child(el, "alarm-time", alert.alarm_time)
    if alert.patient is not None:
        patient = SubElement(el, _q("patient"), {"mrn": alert.patient.mrn})
        for d in alert.patient.details:
            detail = SubElement(patient, _q("detail"), {"label": d.label})
            if d.is_hidden:
                detail.set("hidden", "true")
            detail.text = d.value or None
    if alert.event_response_team:
        team = SubElement(el, _q("team"))
        for jid in alert.event_response_team:
            SubElement(team, _q("member"), {"jid": jid})
    if alert.additional_content:
        _text_child(el, "additional-content", alert.additional_content)
    if alert.offered:
        el.append(_build_responses(alert))
    presentation = _build_presentation(alert)
    if presentation.attrib:
        el.append(presentation)
    if alert.custom_parameters:
        params = SubElement(el, _q("parameters"))
        for name, value in alert.custom_parameters:
            SubElement(params, _q("parameter"), {"name": name}).text = value or None
    return el


def _build_responses(alert: Alert) -> Element:
    responses = Element(_q("responses"))
    if alert.accept:
        accept = SubElement(responses, _q("accept"))
        for phrase in alert.accept_badge_phrases:
            _text_child(accept, "phrase", phrase)
    if alert.accept_and_call:
        call = SubElement(responses, _q("accept-and-call"))
        if alert.callback_number:
            call.set("number", alert.callback_number)
    if alert.decline:
        decline = SubElement(responses, _q("decline"))
        for phrase in alert.decline_badge_phrases:
            _text_child(decline, "phrase", phrase)
    return responses


def _build_presentation(alert: Alert) -> Element:
    el = Element(_q("presentation"))
    for name, is_on in (
        ("vibrate", alert.vibrate),
        ("audible", alert.audible),
        ("always-play", alert.always_play),
    ):
        if is_on:
            el.set(name, "true")
    if alert.badge_alert_sound:
        el.set("badge-sound", alert.badge_alert_sound)
    if alert.alert_sound:
        el.set("sound", alert.alert_sound)
    return el


# --- parsing ----------------------------------------------------------------------------------

_ALERT_CHILDREN = frozenset(
    {
        "subject",
        "message",
        "short-message",
        "alarm-time",
        "patient",
        "team",
        "additional-content",
        "responses",
        "presentation",
        "parameters",
    }
)


def _ours(el: Element, allowed: frozenset[str], where: str) -> dict[str, Element]:
    """Children of ``el`` in our namespace, by local name (each at most once)."""
    found: dict[str, Element] = {}
    for sub in el:
        if not isinstance(sub.tag, str) or not sub.tag.startswith(f"{{{NS}}}"):
            continue  # other namespaces: extensions we ignore
        local = sub.tag[len(NS) + 2 :]
        if local not in allowed:
            raise AlertFormatError(f"unknown element <{local}/> in <{where}/>")
        if local in found:
            raise AlertFormatError(f"<{where}/> has more than one <{local}/>")
        found[local] = sub
    return found


def _many(el: Element, local: str, where: str) -> Iterator[Element]:
    """Children of ``el`` in our namespace; each must be ``<local/>``."""
    for sub in el:
        if isinstance(sub.tag, str) and sub.tag.startswith(f"{{{NS}}}"):
            if sub.tag != _q(local):
                raise AlertFormatError(f"unknown element {sub.tag} in <{where}/>")
            yield sub


def _attr(el: Element, name: str, where: str) -> str:
    value = el.get(name)
    if value is None:
        raise AlertFormatError(f"<{where}/> has no '{name}' attribute")
    return value


def _flag(el: Element, name: str, where: str) -> bool:
    value = el.get(name, "false")
    if value not in ("true", "false", "1", "0"):
        raise AlertFormatError(f"<{where}/> attribute '{name}' must be true or false: {value!r}")
    return value in ("true", "1")


def _priority(text: str) -> Priority:
    for p in Priority:
        if p.wire == text:
            return p
    known = ", ".join(p.wire for p in Priority)
    raise AlertFormatError(f"unknown priority {text!r} (expected one of {known})")


def _ttl(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise AlertFormatError(f"ttl must be a whole number of minutes: {text!r}")
    return int(text)


def parse_alert(el: Element) -> Alert:
    """The :class:`Alert` an ``<alert/>`` element describes.

    Raises:
        AlertFormatError: Not an alert element, a required attribute or child
            is missing, a value is malformed (unknown priority, non-integer
            ttl, bad date, invalid JID), or the alert is inconsistent (see
            :func:`build_alert`).
    """
    if el.tag != ALERT:
        raise AlertFormatError(f"expected <alert xmlns='{NS}'/>, not {el.tag}")
    kids = _ours(el, _ALERT_CHILDREN, "alert")
    for required in ("subject", "message"):
        if required not in kids:
            raise AlertFormatError(f"<alert/> has no <{required}/>")

    def text(local: str) -> str:
        sub = kids.get(local)
        return "" if sub is None else sub.text or ""

    base = Alert(
        id=_attr(el, "id", "alert"),
        priority=_priority(_attr(el, "priority", "alert")),
        ttl=_ttl(_attr(el, "ttl", "alert")),
        expires_at=parse_datetime(_attr(el, "expires", "alert")),
        is_mass=_flag(el, "mass", "alert"),
        re_alert=_flag(el, "re-alert", "alert"),
        room=el.get("room"),
        subject=text("subject"),
        message=text("message"),
        short_message=text("short-message"),
        alarm_time=None if "alarm-time" not in kids else text("alarm-time"),
        patient=_parse_patient(kids.get("patient")),
        event_response_team=tuple(_attr(m, "jid", "member") for m in _team(kids.get("team"))),
        additional_content=text("additional-content"),
        custom_parameters=tuple(
            (_attr(p, "name", "parameter"), p.text or "")
            for p in _many_or_none(kids.get("parameters"), "parameter", "parameters")
        ),
    )
    alert = replace(
        base,
        **_parse_responses(kids.get("responses")),
        **_parse_presentation(kids.get("presentation")),
    )
    _check(alert)
    return alert


def _team(el: Element | None) -> Iterable[Element]:
    return _many_or_none(el, "member", "team")


def _many_or_none(el: Element | None, local: str, where: str) -> Iterable[Element]:
    return () if el is None else _many(el, local, where)


def _parse_patient(el: Element | None) -> Patient | None:
    if el is None:
        return None
    details = tuple(
        PatientDetail(
            label=_attr(d, "label", "detail"),
            value=d.text or "",
            is_hidden=_flag(d, "hidden", "detail"),
        )
        for d in _many(el, "detail", "patient")
    )
    return Patient(mrn=_attr(el, "mrn", "patient"), details=details)


def _parse_responses(el: Element | None) -> dict[str, Any]:
    if el is None:
        return {}
    kids = _ours(el, frozenset({"accept", "decline", "accept-and-call"}), "responses")
    out: dict[str, Any] = {}
    for local, flag, phrases in (
        ("accept", "accept", "accept_badge_phrases"),
        ("decline", "decline", "decline_badge_phrases"),
    ):
        if local in kids:
            out[flag] = True
            out[phrases] = tuple(p.text or "" for p in _many(kids[local], "phrase", local))
    call = kids.get("accept-and-call")
    if call is not None:
        out["accept_and_call"] = True
        out["callback_number"] = call.get("number", "")
    return out


def _parse_presentation(el: Element | None) -> dict[str, Any]:
    if el is None:
        return {}
    return {
        "vibrate": _flag(el, "vibrate", "presentation"),
        "audible": _flag(el, "audible", "presentation"),
        "always_play": _flag(el, "always-play", "presentation"),
        "badge_alert_sound": el.get("badge-sound", ""),
        "alert_sound": el.get("sound", ""),
    }


def find_alert(stanza: Element) -> Element | None:
    """The ``<alert/>`` child of a stanza, or None."""
    return stanza.find(ALERT)


def _stored(elements: str) -> Element | None:
    """Serialized top-level elements (MESSAGES.elements) under one wrapper, or None if empty."""
    if not elements.strip():
        return None
    try:
        return parse_document(f"<message xmlns='{CLIENT}'>{elements}</message>")
    except RemoteProtocolError as exc:
        raise AlertFormatError(f"the stored elements are not well-formed: {exc}") from None


def alert_from_stored(elements: str) -> Alert | None:
    """The alert among serialized top-level elements (MESSAGES.elements), or None.

    ``elements`` is the children of a message other than its body, serialized
    one after the other inside ``jabber:client``, as message tracking stores them.

    Raises:
        AlertFormatError: The text is not well-formed, or its alert is malformed.
    """
    wrapper = _stored(elements)
    found = None if wrapper is None else wrapper.find(ALERT)
    return None if found is None else parse_alert(found)


def response_from_stored(elements: str) -> Response | None:
    """The response among serialized top-level elements (MESSAGES.elements), or None.

    Raises:
        AlertFormatError: The text is not well-formed, or its response is malformed.
    """
    wrapper = _stored(elements)
    found = None if wrapper is None else wrapper.find(RESPONSE)
    return None if found is None else parse_response(found)


# --- responses --------------------------------------------------------------------------------


def _action(text: str, where: str) -> ResponseAction:
    try:
        return ResponseAction(text)
    except ValueError:
        known = ", ".join(a.value for a in ResponseAction)
        raise AlertFormatError(
            f"<{where}/> has unknown action {text!r} (expected one of {known})"
        ) from None


def build_response(alert_id: str, action: ResponseAction) -> Element:
    """``<response xmlns='urn:carewire:alert:0' alert='ID' action='accept'/>``."""
    if not alert_id:
        raise AlertFormatError("the alert id is empty")
    return Element(RESPONSE, {"alert": alert_id, "action": action.value})


def parse_response(el: Element) -> Response:
    """The :class:`Response` a ``<response/>`` element carries.

    Raises:
        AlertFormatError: Not a response element, or ``alert``/``action`` is
            missing, empty or unknown.
    """
    if el.tag != RESPONSE:
        raise AlertFormatError(f"expected <response xmlns='{NS}'/>, not {el.tag}")
    alert_id = _attr(el, "alert", "response")
    if not alert_id:
        raise AlertFormatError("<response/> has an empty 'alert' attribute")
    return Response(alert_id=alert_id, action=_action(_attr(el, "action", "response"), "response"))


def build_responded(notice: Responded) -> Element:
    """``<responded xmlns='urn:carewire:alert:0' alert='ID' by='JID' action='accept'/>``."""
    return Element(
        RESPONDED, {"alert": notice.alert_id, "by": notice.by, "action": notice.action.value}
    )


def parse_responded(el: Element) -> Responded:
    """The :class:`Responded` notice a ``<responded/>`` element carries.

    Raises:
        AlertFormatError: Not a responded element, or an attribute is missing or malformed.
    """
    if el.tag != RESPONDED:
        raise AlertFormatError(f"expected <responded xmlns='{NS}'/>, not {el.tag}")
    return Responded(
        alert_id=_attr(el, "alert", "responded"),
        by=_jid(_attr(el, "by", "responded"), "responder"),
        action=_action(_attr(el, "action", "responded"), "responded"),
    )


# --- the readable fallback --------------------------------------------------------------------


def readable_body(alert: Alert) -> str:
    """The plain text an ordinary client shows in place of the alert.

    Subject (with the priority unless Normal), message, patient (visible
    details only), alarm time, additional content, the responses offered and
    the expiry. Typed replies are not responses: the text says so.
    """
    tag = "Mass alert" if alert.is_mass else "Alert"
    if alert.priority is not Priority.NORMAL:
        tag += f", {alert.priority.value}"
    lines = [f"[{tag}] {alert.subject}", alert.message]
    if alert.patient is not None:
        shown = [f"MRN {alert.patient.mrn}"] + [
            f"{d.label}: {d.value}" for d in alert.patient.details if not d.is_hidden
        ]
        lines.append("Patient: " + "; ".join(shown))
    if alert.alarm_time:
        lines.append(f"Alarm time: {alert.alarm_time}")
    if alert.additional_content:
        lines.append(alert.additional_content)
    if alert.offered:
        labels = [a.label for a in alert.offered]
        if alert.callback_number:
            i = alert.offered.index(ResponseAction.ACCEPT_AND_CALL)
            labels[i] += f" ({alert.callback_number})"
        lines.append(
            "Responses: "
            + ", ".join(labels)
            + ". Respond in an app with alert support; a typed reply is not recorded."
        )
    expires = alert.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Expires {expires}.")
    return "\n".join(line for line in lines if line)
