"""DEVICES.priority: the priority of the most recent message sent to each device.

The seed's DEVICES record keeps "the priority level of the most recent
message sent to a device", a filter "to prevent less important messages
from being sent to a user currently handling a critical issue" (interruption
control itself is :mod:`carewire.features.coverage`). A message with an
``<alert/>`` has its alert's priority, any other message with a body is
Normal; receipts, chat states and other content-free messages do not count.

Theory of operation: the observer runs on every delivery to a session, so it
costs one tag test and one or two child look-ups there. Each session
remembers the priority last written for it, and a DEVICES write (queued on
clinical presence's writer, never awaited here) happens only when the
priority changes: a stream of chat messages writes once, an alert and the
chat after it write once each.
"""

from __future__ import annotations

from typing import Final

from carewire.core.events import DeliveryEvent
from carewire.features.clinical_presence.records import PresenceRecords, PriorityChange
from carewire.features.clinical_presence.sessions import is_virtual
from carewire.xmpp import ns
from carewire.xmpp.alert_model import NS as ALERT_NS
from carewire.xmpp.stanza import MESSAGE

#: session.data key of the priority last recorded for the session's device.
PRIORITY_KEY: Final = "device_priority"
ALERT: Final = f"{{{ALERT_NS}}}alert"
BODY: Final = f"{{{ns.CLIENT}}}body"
NORMAL: Final = "Normal"


def priority_of(stanza_priority: str | None) -> str:
    """A priority as the rules name it (``urgent`` → ``Urgent``); empty or absent is Normal."""
    text = (stanza_priority or "").strip()
    return text[:1].upper() + text[1:].lower() if text else NORMAL


class DevicePriority:
    """Keeps DEVICES.priority of each client device."""

    def __init__(self, records: PresenceRecords) -> None:
        self.records = records

    def on_deliver(self, event: DeliveryEvent) -> None:
        """Hook ``session/deliver`` (observer, last): note the priority of what goes out."""
        stanza = event.stanza
        if stanza.tag != MESSAGE:
            return
        alert = stanza.find(ALERT)
        if alert is None and stanza.find(BODY) is None:
            return
        priority = NORMAL if alert is None else priority_of(alert.get("priority"))
        for target in event.targets:
            if target is None:
                continue
            session = target[0]
            if session.data.get(PRIORITY_KEY) == priority or is_virtual(session):
                continue
            session.data[PRIORITY_KEY] = priority
            self.records.submit(PriorityChange(f"{session.username}/{session.resource}", priority))
