"""What the XMPP rule actions need from a running XMPP server, as plain data.

The data platform never imports the XMPP kernel (import-linter keeps it so).
The actions in :mod:`.actions` render their settings into the requests below
and hand them to a :class:`ChatGateway`; the server implements the gateway
with its rooms, archive and presence features and attaches it to the
:class:`GatewaySlot` the XMPP adapter kind was built with. In a process
without an XMPP server (the CLI), the slot is empty and the rules engine
hands XMPP firings over to the running server instead (see
``EngineConfig.hand_over``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRequest:
    """A Send Alert or Send Mass Alert firing, its settings rendered.

    Attributes:
        recipients: Bare JIDs of users, or room JIDs (their members are alerted).
        source: The triggering record, ``DATASET/id``: alerts for the same
            record share one conversation room, and Re-Alert is judged per record.
        delivery_id: The DELIVERIES record of this firing (linked to the alert message).
        is_mass: A mass alert (its own room, no responses).
        re_alert: Notify recipients who were already alerted for the same record.
        ttl: Minutes after which the alert no longer applies.
        patient_mrn: Empty when the alert is not about a patient.
        event_response_team: Bare JIDs of the others involved in the patient's care.
        accept, decline, accept_and_call: Which responses are offered.
        custom_parameters: Ordered (name, value) pairs (the adapter's, then the rule's).
    """

    recipients: tuple[str, ...]
    source: str
    delivery_id: int
    subject: str
    message: str
    ttl: int
    is_mass: bool = False
    re_alert: bool = False
    short_message: str = ""
    alarm_time: str = ""
    patient_mrn: str = ""
    event_response_team: tuple[str, ...] = ()
    additional_content: str = ""
    priority: str = "Normal"
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


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSent:
    """What an alert firing did.

    Attributes:
        room: The conversation room's JID.
        alert_id: The alert's id (its stanza-id, the MESSAGES uuid).
        notified: Recipients who were sent a notification.
        skipped: Recipients already alerted for the record (no Re-Alert).
    """

    room: str
    alert_id: str
    notified: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRequest:
    """Send New Message, Send New System Message, Send New Accept/Decline System Message.

    Attributes:
        recipients: Bare JIDs of users, or room JIDs.
        sender: The sending user's bare JID; None for a system message.
        accepted: For an accept/decline system message: whether it says accepted.
    """

    recipients: tuple[str, ...]
    body: str
    short_message: str = ""
    sender: str | None = None
    accepted: bool | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A short account of what an action did (becomes the delivery's status text)."""

    text: str
    unknown: Sequence[str] = field(default_factory=tuple)


class ChatGateway(Protocol):
    """The running XMPP server, as the rule actions see it."""

    @property
    def domain(self) -> str:
        """The chat domain (users are ``login@domain``)."""

    @property
    def room_domain(self) -> str:
        """Where rooms live (``chat.domain``)."""

    async def send_alert(self, request: AlertRequest) -> AlertSent:
        """Open (or reuse) the record's room, alert the recipients, track the alert."""

    async def send_message(self, request: MessageRequest) -> Delivered:
        """Send a message from a user or the system to users and rooms."""

    async def start_conversation(self, recipients: Sequence[str], subject: str) -> str:
        """Create a room with ``subject``, invite the recipients; the room's JID."""

    async def invite(
        self, recipients: Sequence[str], room: str, *, reason: str, re_alert: bool
    ) -> Delivered:
        """Invite recipients into an existing room."""

    async def expire_conversation(self, conversation: str) -> Delivered:
        """Expire a conversation (a room JID, or a user's JID pair ``a@d b@d``)."""

    async def leave_conversation(self, recipients: Sequence[str], conversation: str) -> Delivered:
        """Take recipients out of a room."""

    async def update_presence(
        self, recipients: Sequence[str], kind: str, status: str, *, changed_by: str = "rule"
    ) -> Delivered:
        """Set users' presence (Available/Unavailable create virtual sessions; Offline ends all).

        ``changed_by`` is recorded in PRESENCE_HISTORY (``rule``, ``api:<token>`` …).
        """


class GatewaySlot:
    """Where the server attaches its gateway; empty in processes without an XMPP server."""

    def __init__(self) -> None:
        self.gateway: ChatGateway | None = None

    def attach(self, gateway: ChatGateway | None) -> None:
        """Attach the running server's gateway (None detaches it)."""
        self.gateway = gateway
