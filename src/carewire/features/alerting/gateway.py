"""The XMPP rule actions' gateway: the running server as the rules engine sees it.

:class:`ServerGateway` implements the
:class:`~carewire.adapters.xmpp.gateway.ChatGateway` of the XMPP adapter's
door: the composition root attaches it to the adapter's slot, and the XMPP
rule actions hand it their rendered requests. Alerts go to the
:class:`~.sender.AlertSender`; messages, conversations and presence are
carried out here with the room service, message tracking and clinical
presence. Every refusal is a :class:`~carewire.adapters.xmpp.gateway.GatewayError`,
which ends the rule's delivery in Error with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from copy import deepcopy
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import (
    AlertRequest,
    AlertSent,
    Delivered,
    GatewayError,
    MessageRequest,
)
from carewire.core.feature import FeatureContext
from carewire.errors import CarewireError
from carewire.features.alerting.addressing import Addresses, checked, parse_bare
from carewire.features.alerting.sender import MARKERS_NS, AlertSender
from carewire.features.clinical_presence import ClinicalPresence
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp import ns
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import make

SYSTEM_NS = "urn:carewire:message:0"


class ServerGateway:
    """The running server, as the XMPP rule actions see it."""

    def __init__(
        self,
        ctx: FeatureContext,
        *,
        addresses: Addresses,
        alerts: AlertSender,
        tracker: MessageTracker,
        presence: ClinicalPresence,
    ) -> None:
        self.ctx = ctx
        self.addresses = addresses
        self.alerts = alerts
        self.tracker = tracker
        self.presence = presence

    @property
    def domain(self) -> str:
        """The chat domain."""
        return self.ctx.hosts.domain

    @property
    def room_domain(self) -> str:
        """Where rooms live."""
        return self.ctx.hosts.chat_domain

    async def send_alert(self, request: AlertRequest) -> AlertSent:
        """Alert the recipients in the record's room (see :mod:`.sender`)."""
        return await self.alerts.send(request)

    # -- messages -----------------------------------------------------------------

    async def send_message(self, request: MessageRequest) -> Delivered:
        """Send a message from a user or the system to users (tracked) and rooms."""
        users, rooms, unknown = self.addresses.split(request.recipients)
        sender = parse_bare(request.sender) if request.sender else None
        if request.sender and sender is None:
            raise GatewayError(f"From {request.sender!r} is not a Jabber ID")
        extra = self._system_element(request) if sender is None else None
        sent = 0
        for room in rooms:
            if not self.addresses.muc.exists(room):
                unknown.append(str(room))
                continue
            nick = (sender.localpart or "") if sender else ""
            await self.addresses.muc.send_groupchat(
                room, request.body, nick=nick, extra=[extra] if extra is not None else []
            )
            sent += 1
        for user in users:
            await self._send_direct(request.body, sender, user, extra)
            sent += 1
        text = f"sent to {sent} recipient(s)"
        if unknown:
            text += f"; not delivered to {', '.join(unknown)} (unknown here)"
        return Delivered(text=text, unknown=tuple(unknown))

    async def _send_direct(
        self, body: str, sender: JID | None, user: JID, extra: Element | None
    ) -> None:
        """One tracked chat message to ``user``, from ``sender`` or the server."""
        from_jid = sender or JID.parse(self.domain)
        message_id = str(uuid.uuid4())
        msg = make(
            f"{{{ns.CLIENT}}}message",
            {"type": "chat", "from": str(from_jid), "to": str(user), "id": message_id},
        )
        msg.append(make(f"{{{ns.CLIENT}}}body", text=body))
        if extra is not None:
            msg.append(deepcopy(extra))
        msg.append(make(f"{{{MARKERS_NS}}}markable"))
        stanzas.stamp(msg, str(user), message_id)
        pair = sorted((str(from_jid), str(user)))
        await self.tracker.record_message(
            conversation=(pair[0], pair[1]),
            sender=str(sender) if sender else None,
            recipients=[str(user)],
            stanza=msg,
            uuid=message_id,
            system=sender is None,
        )
        await self.ctx.router.route(msg, from_jid=from_jid, to_jid=user)

    def _system_element(self, request: MessageRequest) -> Element:
        attrs: dict[str, str] = {}
        if request.accepted is not None:
            attrs["accepted"] = "true" if request.accepted else "false"
        el = make(f"{{{SYSTEM_NS}}}system", attrs)
        if request.short_message:
            el.append(make(f"{{{SYSTEM_NS}}}short", text=request.short_message))
        return el

    # -- conversations --------------------------------------------------------------

    async def start_conversation(self, recipients: Sequence[str], subject: str) -> str:
        """Create a room with ``subject`` and invite the recipients; the room's JID."""
        muc = self.addresses.muc
        users, _ = self.addresses.users(recipients)
        room = await checked(muc.create_room(subject=subject, members=users))
        if users:
            await checked(muc.invite(room, users, reason=subject))
        return str(room)

    async def invite(
        self, recipients: Sequence[str], room: str, *, reason: str, re_alert: bool
    ) -> Delivered:
        """Invite recipients into an existing room (members again only with Re-Alert)."""
        muc = self.addresses.muc
        jid = self.addresses.room(room)
        users, unknown = self.addresses.users(recipients)
        already = muc.members(jid)
        targets = [u for u in users if re_alert or str(u) not in already]
        if targets:
            await checked(muc.invite(jid, targets, reason=reason))
        text = f"invited {len(targets)} to {jid}"
        if len(targets) < len(users):
            text += f"; {len(users) - len(targets)} already members (no Re-Alert)"
        return Delivered(text=text, unknown=tuple(unknown))

    async def expire_conversation(self, conversation: str) -> Delivered:
        """Expire a conversation (a room JID, or a user's JID pair ``a@d b@d``)."""
        key = conversation.strip()
        if not await self.tracker.expire_conversation(key):
            raise GatewayError(f"no conversation {key}")
        return Delivered(text=f"conversation {key} expired")

    async def leave_conversation(self, recipients: Sequence[str], conversation: str) -> Delivered:
        """Take recipients out of a room."""
        jid = self.addresses.room(conversation)
        users, unknown = self.addresses.users(recipients)
        await checked(self.addresses.muc.remove_members(jid, users, reason="left the conversation"))
        await self.tracker.leave_conversation(str(jid), [str(u) for u in users])
        return Delivered(text=f"{len(users)} left {jid}", unknown=tuple(unknown))

    # -- presence -------------------------------------------------------------------

    async def update_presence(
        self, recipients: Sequence[str], kind: str, status: str, *, changed_by: str = "rule"
    ) -> Delivered:
        """Set users' presence (virtual sessions for users without a client)."""
        presence = self.presence
        users, unknown = self.addresses.users(recipients)
        done = 0
        for user in users:
            assert user.localpart is not None
            try:
                await presence.set_presence(user.localpart, kind, status, changed_by=changed_by)
            except CarewireError as exc:  # no such account, bad kind
                unknown.append(f"{user} ({exc})")
                continue
            done += 1
        text = f"{kind} for {done} user(s)"
        if unknown:
            text += f"; not set for {', '.join(unknown)}"
        return Delivered(text=text, unknown=tuple(unknown))
