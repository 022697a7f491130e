"""The one door between the clinical features and the XMPP adapter.

The XMPP kernel's clinical features and the data platform's XMPP adapter meet
here and nowhere else (an import-linter contract keeps it so): this module
declares, as plain data and protocols, the three things they exchange, and the
composition root (:mod:`carewire.assembly`) binds each to its implementation.

- **Outbound, rules → chat**: :class:`ChatGateway`. The XMPP rule actions
  (:mod:`.actions`) render their settings into the requests below and hand
  them to the gateway the running server attached to the :class:`GatewaySlot`
  (implemented by :mod:`carewire.features.alerting`). In a process without an
  XMPP server (the CLI) the slot is empty and the rules engine hands XMPP
  firings over to the running server instead (``EngineConfig.hand_over``).
- **Inbound, chat → data**: :class:`AlertResponder`. A clinician's response
  to an alert is applied to the record that raised it, as the rule says
  (implemented by :mod:`.responses`).
- **Settings**: :class:`ChatSettingsSource`. The enabled XMPP adapter's
  settings (timeouts, acknowledgements, transformations) and dataset roles
  (implemented by :class:`.settings.EnabledAdapterSettings`).

An alert goes one way, down: record write → rules engine → Send Alert action
(:mod:`.actions`) → :class:`ChatGateway` → the alerting feature → rooms,
tracking and the router → the stanza on the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from carewire.adapters.xmpp.settings import ChatSettings
from carewire.datasets.model import Record
from carewire.datasets.service import Batch
from carewire.errors import CarewireError
from carewire.rules.actions import ActionFailed

__all__ = [
    "AlertRequest",
    "AlertResponder",
    "AlertSent",
    "ChatGateway",
    "ChatSettings",
    "ChatSettingsSource",
    "Delivered",
    "FixedChatSettings",
    "GatewayError",
    "GatewaySlot",
    "MessageRequest",
    "ResponseApplied",
    "ResponseError",
]

# -- outbound: the XMPP rule actions, delivered by the running server ------------------------


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
        coverage: ``Record`` (alert everyone, record who is off shift or offline) or
            ``Reroute`` (alert the reachable covering recipients instead of them).
        covering: Bare JIDs of the covering recipients (Reroute).
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
    coverage: str = "Record"
    covering: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSent:
    """What an alert firing did.

    Attributes:
        room: The conversation room's JID.
        alert_id: The alert's id (its stanza-id, the MESSAGES uuid).
        notified: Recipients who were sent a notification.
        skipped: Recipients already alerted for the record (no Re-Alert).
        uncovered: Recipients who were off shift or offline, with why
            (``off shift``, ``offline on every device`` …).
        rerouted_from: Uncovered recipients not alerted (Reroute found cover).
        covering: Covering recipients alerted instead (Reroute).
        is_without_cover: Reroute found no reachable cover; everyone was alerted.
    """

    room: str
    alert_id: str
    notified: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    uncovered: tuple[tuple[str, str], ...] = ()
    rerouted_from: tuple[str, ...] = ()
    covering: tuple[str, ...] = ()
    is_without_cover: bool = False


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


class GatewayError(ActionFailed):
    """The server refused an action's request; the message becomes the delivery's status text."""

    code = "gateway-refused"


class ChatGateway(Protocol):
    """The running XMPP server, as the rule actions see it.

    Every method raises :class:`GatewayError` when the request cannot be carried out.
    """

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


# -- inbound: a clinician's response to an alert, written back into the data -----------------


class ResponseError(CarewireError):
    """A response cannot be applied; the message says why, for the responder.

    Attributes:
        condition: The RFC 6120 stanza error condition the server answers with.
    """

    code = "response-failed"

    def __init__(self, message: str, *, condition: str = "internal-server-error") -> None:
        super().__init__(message)
        self.condition = condition


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseApplied:
    """What a response wrote.

    Attributes:
        rule: The rule's name.
        source: The triggering record, ``DATASET/id``.
        action: ``accept``, ``decline`` or ``accept-and-call``.
        updated: The records changed, as (dataset, id), in write order.
        at: When the response was applied.
    """

    rule: str
    source: str
    action: str
    updated: tuple[tuple[str, int], ...]
    at: datetime


class AlertResponder(Protocol):
    """Applies a clinician's response to the record that raised the alert."""

    async def apply(
        self,
        *,
        delivery: Record,
        action: str,
        responder_login: str,
        now: datetime,
        also: Callable[[Batch], Awaitable[object]] | None = None,
    ) -> ResponseApplied:
        """Write the rule's updates for ``action`` (and ``also``'s writes) in one transaction.

        Args:
            delivery: The DELIVERIES record of the firing that sent the alert.
            action: ``accept``, ``decline`` or ``accept-and-call``.
            responder_login: Who responded (stored at the rule's responder path).
            now: The time of the response.
            also: Further writes for the same transaction (the response message), or None.

        Raises:
            ResponseError: The response cannot be applied; ``condition`` says how to answer.
        """


# -- settings: the enabled XMPP adapter's, read at each use ------------------------------------


class ChatSettingsSource(Protocol):
    """The enabled XMPP adapter's settings and dataset roles, read when asked."""

    def current(self) -> ChatSettings:
        """The settings now (the schema's defaults where unset, or with no adapter)."""

    def adapter_name(self) -> str | None:
        """The enabled XMPP adapter's reference name (None when none is enabled)."""

    def dataset(self, role: str) -> str:
        """The dataset the enabled adapter uses for ``role`` (``PATIENTS``), else ``role``."""


class FixedChatSettings:
    """A :class:`ChatSettingsSource` without an adapter: always the same settings."""

    def __init__(self, settings: ChatSettings | None = None) -> None:
        self._settings = settings or ChatSettings({})

    def current(self) -> ChatSettings:
        """The fixed settings."""
        return self._settings

    def adapter_name(self) -> str | None:
        """No adapter."""
        return None

    def dataset(self, role: str) -> str:
        """Every role is the dataset of its own name."""
        return role
