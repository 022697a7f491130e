"""The ``urn:carewire:coverage:0`` elements: notices to senders, Do Not Disturb, status.

Pure builders and parsers (docs/coverage.md):

- ``<notice jid='…' id='…' state='stored|held' reason='…' until='…'?/>`` in a
  ``<message type='chat'/>`` from the server to the sender, beside a readable body;
- ``<dnd until='…' reason='…'?/>`` (IQ set): Do Not Disturb until a time;
  ``<resume/>`` (IQ set): end it now;
- ``<status/>`` (IQ get) answered with
  ``<status busy='true|false' reason='…'? until='…'? held='N'/>``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element

from carewire.xmpp import ns
from carewire.xmpp.xml import make

NS = "urn:carewire:coverage:0"
NOTICE = f"{{{NS}}}notice"
DND = f"{{{NS}}}dnd"
RESUME = f"{{{NS}}}resume"
STATUS = f"{{{NS}}}status"
ALERT_NS = "urn:carewire:alert:0"
ALERT = f"{{{ALERT_NS}}}alert"
#: The longest Do Not Disturb one request may set.
MAX_DND = timedelta(hours=24)
MAX_REASON = 200


class CoverageFormatError(ValueError):
    """A coverage element breaks the rules of docs/coverage.md."""


def format_time(at: datetime) -> str:
    """XEP-0082 DateTime in UTC (no fraction when it is zero)."""
    at = at.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if at.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return at.strftime(pattern)


def parse_time(text: str) -> datetime:
    """An XEP-0082 DateTime with a time zone.

    Raises:
        CoverageFormatError: Not a date and time, or no time zone.
    """
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CoverageFormatError(f"{text!r} is not an XEP-0082 date and time") from None
    if at.tzinfo is None:
        raise CoverageFormatError(f"{text!r} has no time zone")
    return at.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class DndRequest:
    """A ``<dnd/>`` request: until when, and why (for people; not clinical data)."""

    until: datetime
    reason: str = ""


def parse_dnd(payload: Element, now: datetime) -> DndRequest:
    """Read ``<dnd until='…' reason='…'/>``; ``until`` must be after ``now``, within 24 hours.

    Raises:
        CoverageFormatError: No ``until``, a bad time, one in the past or too far ahead.
    """
    text = payload.get("until")
    if not text:
        raise CoverageFormatError("<dnd/> needs an 'until' time")
    until = parse_time(text)
    if until <= now:
        raise CoverageFormatError("<dnd/> 'until' has passed")
    if until - now > MAX_DND:
        raise CoverageFormatError("<dnd/> may last at most 24 hours")
    return DndRequest(until=until, reason=(payload.get("reason") or "")[:MAX_REASON])


def build_status(*, reason: str, until: datetime | None, held: int) -> Element:
    """The answer to ``<status/>``."""
    attrs = {"busy": "true" if reason else "false", "held": str(held)}
    if reason:
        attrs["reason"] = reason
    if until is not None:
        attrs["until"] = format_time(until)
    return make(STATUS, attrs)


def build_notice(
    *, server: str, to: str, about: str, message_id: str, state: str, reason: str, body: str
) -> Element:
    """A notice for the sender of a message that was stored or held, not delivered now."""
    msg = make(
        f"{{{ns.CLIENT}}}message",
        {"type": "chat", "from": server, "to": to, "id": "cw-" + secrets.token_hex(8)},
    )
    msg.append(make(f"{{{ns.CLIENT}}}body", text=body))
    attrs = {"jid": about, "state": state, "reason": reason}
    if message_id:
        attrs["id"] = message_id
    msg.append(make(NOTICE, attrs))
    # A notice is about this session's message; it is not archived, stored or copied.
    msg.append(make(f"{{{ns.HINTS}}}no-store"))
    msg.append(make(f"{{{ns.HINTS}}}no-copy"))
    return msg


def message_priority(stanza: Element) -> tuple[str, str]:
    """The priority of a message (its alert's, else Normal) and its alert id (or '')."""
    alert = stanza.find(ALERT)
    if alert is None:
        return "normal", ""
    return alert.get("priority", "normal"), alert.get("id", "")
