"""XML builders for the client settings answers (``urn:carewire:settings|roster|patient:0``).

Pure functions from the service's values to the ``<settings/>``,
``<roster/>`` and ``<patient/>`` elements; text that XML 1.0 cannot carry is
replaced with U+FFFD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from xml.etree.ElementTree import Element, SubElement

from carewire.adapters.xmpp.gateway import ChatSettings
from carewire.directory.model import OrganisationSettings
from carewire.features.client_settings.model import (
    NS_PATIENT,
    NS_ROSTER,
    NS_SETTINGS,
    PATIENT,
    ROSTER,
    SETTINGS,
    PatientLocation,
    PresenceState,
    RosterUnit,
    setting_rows,
)
from carewire.xmpp.xml import is_valid_xml_text


def _safe(text: str) -> str:
    """Text that XML 1.0 can carry (other characters become U+FFFD)."""
    if is_valid_xml_text(text):
        return text
    return "".join(c if is_valid_xml_text(c) else "\ufffd" for c in text)


def _sub(parent: Element, ns: str, name: str, attrs: Mapping[str, str] | None = None) -> Element:
    return SubElement(parent, f"{{{ns}}}{name}", {k: _safe(v) for k, v in (attrs or {}).items()})


def _seconds(value: timedelta | None) -> str:
    return "off" if value is None else str(int(value.total_seconds()))


def settings_element(
    settings: ChatSettings, states: Sequence[PresenceState], *, offline_default: timedelta
) -> Element:
    """The ``<settings/>`` answer (see docs/client-settings.md for an example)."""
    el = Element(SETTINGS)
    ns = NS_SETTINGS
    _sub(el, ns, "help-link").text = _safe(str(settings.get("help_link") or ""))
    _sub(el, ns, "session-timeout", {"client": "mobile"}).text = _seconds(
        settings.mobile_session_timeout
    )
    _sub(el, ns, "session-timeout", {"client": "desktop"}).text = _seconds(
        settings.desktop_session_timeout
    )
    offline = settings.offline_message_timeout
    if settings.get("offline_message_timeout") == "Default":
        offline = offline_default
    _sub(el, ns, "offline-message-timeout").text = _seconds(offline)
    enabled = "false" if settings.acknowledgements_disabled else "true"
    _sub(el, ns, "acknowledgements", {"enabled": enabled})
    _sub(
        el,
        ns,
        "roster",
        {
            "multiple-facility": "true" if settings.get("multiple_facility") is True else "false",
            "level1-prefix": str(settings.get("level1_prefix") or ""),
            "level2-prefix": str(settings.get("level2_prefix") or ""),
        },
    )
    phones = _sub(el, ns, "phone-number-transformations")
    for row in setting_rows(settings.get("phone_number_transformations")):
        if row.get("active", True) is not False:
            _sub(phones, ns, "transformation", _strings(row, "reference_name", "pattern", "mask"))
    details = _sub(el, ns, "patient-details")
    for row in setting_rows(settings.get("patient_details")):
        attrs = _strings(row, "label", "attribute_path")
        attrs["hidden"] = "true" if row.get("hidden") is True else "false"
        _sub(details, ns, "detail", attrs)
    locations = _sub(el, ns, "patient-location-transformations")
    for row in settings.location_transformations():
        attrs = _strings(row, "reference_name", "pattern", "replacement")
        _sub(locations, ns, "transformation", attrs)
    params = _sub(el, ns, "custom-parameters")
    for row in setting_rows(settings.get("custom_parameters")):
        _sub(
            params,
            ns,
            "parameter",
            {"name": str(row.get("parameter", "")), "value": str(row.get("value", ""))},
        )
    presence = _sub(el, ns, "presence-states")
    for s in states:
        attrs = {"facility": s.facility, "show": s.show, "status": s.status}
        if s.duration is not None:
            attrs["duration"] = str(s.duration)
        _sub(presence, ns, "state", attrs)
    return el


def organisation_element(settings: OrganisationSettings | None) -> Element:
    """``<organisation/>``: what clients need of the user's organisation (defaults without one).

    ``high-priority-sound`` is the High Priority Notification Sound Length in
    seconds; ``message-expiration`` the Message Expiration Time in seconds.
    """
    s = settings or OrganisationSettings()
    return Element(
        f"{{{NS_SETTINGS}}}organisation",
        {
            "high-priority-sound": str(s.high_priority_sound_seconds),
            "message-expiration": str(int(s.message_expiration.duration.total_seconds())),
        },
    )


_ATTR_NAMES = {"reference_name": "name", "attribute_path": "path"}


def _strings(row: Mapping[str, object], *keys: str) -> dict[str, str]:
    out = {}
    for key in keys:
        value = row.get(key)
        if isinstance(value, str) and value:
            out[_ATTR_NAMES.get(key, key)] = value
    return out


def roster_element(units: Sequence[RosterUnit]) -> Element:
    """The ``<roster/>`` answer."""
    el = Element(ROSTER)
    for unit in units:
        u = _sub(
            el, NS_ROSTER, "unit", {"name": unit.name, "unit": unit.unit, "facility": unit.facility}
        )
        for loc in unit.locations:
            lo = _sub(u, NS_ROSTER, "location", {"id": loc.location_id})
            for role in loc.roles:
                r = _sub(lo, NS_ROSTER, "role", {"name": role.name, "role": role.role})
                for user in role.users:
                    attrs = {"jid": user.jid, "name": user.name, "level": user.level}
                    _sub(r, NS_ROSTER, "user", attrs)
    return el


def patient_element(
    mrn: str, details: Sequence[tuple[str, str, str, bool]], where: PatientLocation | None
) -> Element:
    """The ``<patient/>`` answer."""
    el = Element(PATIENT, {"mrn": _safe(mrn)})
    for label, path, value, hidden in details:
        d = _sub(
            el,
            NS_PATIENT,
            "detail",
            {"label": label, "path": path, "hidden": "true" if hidden else "false"},
        )
        d.text = _safe(value)
    if where is not None:
        attrs = {
            "facility": where.facility,
            "unit": where.unit,
            "room": where.room,
            "bed": where.bed,
        }
        loc = _sub(el, NS_PATIENT, "location", {k: v for k, v in attrs.items() if v})
        loc.text = _safe(where.text)
    return el
