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

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp.alert_model import (
    ALERT,
    MASS_ALERT_TTL,
    MAX_BADGE_PHRASES,
    NS,
    RESPONDED,
    RESPONSE,
    Alert,
    AlertFormatError,
    Patient,
    PatientDetail,
    Priority,
    Responded,
    Response,
    ResponseAction,
    check_alert,
    checked_jid,
    format_datetime,
    parse_datetime,
    qname,
)
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.ns import CLIENT
from carewire.xmpp.parser import parse_document

__all__ = [
    "ALERT",
    "MASS_ALERT_TTL",
    "MAX_BADGE_PHRASES",
    "NS",
    "RESPONDED",
    "RESPONSE",
    "Alert",
    "AlertFormatError",
    "Patient",
    "PatientDetail",
    "Priority",
    "Responded",
    "Response",
    "ResponseAction",
    "alert_from_stored",
    "build_alert",
    "build_responded",
    "build_response",
    "check_alert",
    "checked_jid",
    "find_alert",
    "format_datetime",
    "parse_alert",
    "parse_datetime",
    "parse_responded",
    "parse_response",
    "qname",
    "readable_body",
    "response_from_stored",
]

# --- building ---------------------------------------------------------------------------------


def _text_child(parent: Element, local: str, text: str) -> None:
    SubElement(parent, qname(local)).text = text or None


def build_alert(alert: Alert) -> Element:
    """The ``<alert xmlns='urn:carewire:alert:0'/>`` element for ``alert``.

    Raises:
        AlertFormatError: The alert is inconsistent (empty id, ttl below 1,
            more than 5 badge phrases, phrases for a response not offered, a
            mass alert with responses or a ttl over 45 days, an invalid JID, …).
    """
    check_alert(alert)
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
        patient = SubElement(el, qname("patient"), {"mrn": alert.patient.mrn})
        for d in alert.patient.details:
            detail = SubElement(patient, qname("detail"), {"label": d.label})
            if d.is_hidden:
                detail.set("hidden", "true")
            detail.text = d.value or None
    if alert.event_response_team:
        team = SubElement(el, qname("team"))
        for jid in alert.event_response_team:
            SubElement(team, qname("member"), {"jid": jid})
    if alert.additional_content:
        _text_child(el, "additional-content", alert.additional_content)
    if alert.offered:
        el.append(_build_responses(alert))
    presentation = _build_presentation(alert)
    if presentation.attrib:
        el.append(presentation)
    if alert.custom_parameters:
        params = SubElement(el, qname("parameters"))
        for name, value in alert.custom_parameters:
            SubElement(params, qname("parameter"), {"name": name}).text = value or None
    return el


def _build_responses(alert: Alert) -> Element:
    responses = Element(qname("responses"))
    if alert.accept:
        accept = SubElement(responses, qname("accept"))
        for phrase in alert.accept_badge_phrases:
            _text_child(accept, "phrase", phrase)
    if alert.accept_and_call:
        call = SubElement(responses, qname("accept-and-call"))
        if alert.callback_number:
            call.set("number", alert.callback_number)
    if alert.decline:
        decline = SubElement(responses, qname("decline"))
        for phrase in alert.decline_badge_phrases:
            _text_child(decline, "phrase", phrase)
    return responses


def _build_presentation(alert: Alert) -> Element:
    el = Element(qname("presentation"))
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
            if sub.tag != qname(local):
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
    check_alert(alert)
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
        by=checked_jid(_attr(el, "by", "responded"), "responder"),
        action=_action(_attr(el, "action", "responded"), "responded"),
    )


# --- the readable fallback --------------------------------------------------------------------


def labelled(label: str, value: str, *, sep: str = ": ") -> str:
    """``label: value``; just ``value`` when it already names itself; "" when it is empty.

    An MRN of ``MRN1001`` reads "MRN1001", not "MRN MRN1001"; an empty admit date
    is left out rather than shown as "Facility Admit Date: ".
    """
    value = value.strip()
    if not value:
        return ""
    if not label or _names_itself(value, label.strip()):
        return value
    return f"{label}{sep}{value}"


def _names_itself(value: str, label: str) -> bool:
    """Whether ``value`` begins with ``label`` as a word ("MRN1001", "Location: ICU").

    "Roommate" does not begin with the label "Room": a letter goes on after it.
    """
    if not value.casefold().startswith(label.casefold()):
        return False
    rest = value[len(label) :]
    return not rest or not rest[0].isalpha()


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
        shown = [labelled("MRN", alert.patient.mrn, sep=" ")] + [
            labelled(d.label, d.value) for d in alert.patient.details if not d.is_hidden
        ]
        lines.append("Patient: " + "; ".join(item for item in shown if item))
    if alert.alarm_time:
        lines.append(labelled("Alarm time", alert.alarm_time))
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
