"""The XMPP rule actions' gateway: rooms, alerts, messages and presence driven by rules.

The rules engine lives on the data platform and never imports the kernel; the
XMPP adapter's actions render their settings into plain requests
(:mod:`carewire.adapters.xmpp.gateway`) and call the :class:`ServerGateway`
this feature provides. The server attaches it to the platform's gateway slot.

Theory of operation for an alert: alerts about the same record share one
room, ``<dataset>-<id>@chat.DOMAIN``, so an escalation to a backup joins the
nurse's room and sees what happened there. The alert is recorded once, as a
MESSAGES record of that room whose uuid is the alert id; each recipient to be
notified gets a direct message from the room carrying the readable text, the
``urn:carewire:alert:0`` element, an invitation to the room and the alert's
stanza-id, so delivery to each recipient (sent, received, displayed,
acknowledged) is tracked like any message. Without Re-Alert, recipients who
were already alerted for the record are not notified again.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from copy import deepcopy
from datetime import timedelta
from typing import TypeVar
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import (
    AlertRequest,
    AlertSent,
    Delivered,
    MessageRequest,
)
from carewire.core.feature import FeatureContext
from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError
from carewire.features.client_settings import ClientSettingsService
from carewire.features.clinical_presence import ClinicalPresence
from carewire.features.muc.service import MucService
from carewire.features.tracking import MessageTracker, stanzas
from carewire.rules.actions import ActionFailed
from carewire.xmpp import alert as al
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

T = TypeVar("T")

SYSTEM_NS = "urn:carewire:message:0"
CONFERENCE_NS = "jabber:x:conference"
MARKERS_NS = "urn:xmpp:chat-markers:0"
HINTS_NS = "urn:xmpp:hints"

_SLUG = re.compile(r"[^a-z0-9_.-]+")
_ORIGIN = Origin(adapter=None, actor="xmpp", depth=0)


def room_for_source(source: str) -> str:
    """The room localpart alerts about one record share (``nurse_calls-12``)."""
    dataset, _, record_id = source.partition("/")
    return _SLUG.sub("_", f"{dataset.lower()}-{record_id}")


class ServerGateway:
    """The running server, as the XMPP rule actions see it."""

    def __init__(self, ctx: FeatureContext, datasets: DatasetService) -> None:
        self.ctx = ctx
        self.datasets = datasets

    # -- what the actions read ---------------------------------------------------

    @property
    def domain(self) -> str:
        return self.ctx.hosts.domain

    @property
    def room_domain(self) -> str:
        return self.ctx.hosts.chat_domain

    # -- services of other features (looked up at use: they load after us or not at all)

    def _service(self, kind: type[T], what: str) -> T:
        found = self.ctx.require(kind)
        if found is None:
            raise ActionFailed(f"the {what} feature is not enabled on this server")
        return found

    def _muc(self) -> MucService:
        return self._service(MucService, "multi-user chat")

    def _tracker(self) -> MessageTracker:
        return self._service(MessageTracker, "message tracking")

    # -- addressing ---------------------------------------------------------------

    def _parse(self, text: str) -> JID | None:
        try:
            return JID.parse(text).bare
        except InvalidJID:
            return None

    def _split(self, recipients: Iterable[str]) -> tuple[list[JID], list[JID], list[str]]:
        """Users of this domain, rooms of chat.DOMAIN, and what is neither."""
        users: list[JID] = []
        rooms: list[JID] = []
        unknown: list[str] = []
        for text in recipients:
            jid = self._parse(text)
            if jid is None or jid.localpart is None:
                unknown.append(text)
            elif jid.domain == self.domain:
                users.append(jid)
            elif jid.domain == self.room_domain:
                rooms.append(jid)
            else:
                unknown.append(text)
        return users, rooms, unknown

    def _users(self, recipients: Iterable[str]) -> tuple[list[JID], list[str]]:
        """Users, with rooms expanded to their members (order kept, no repeats)."""
        users, rooms, unknown = self._split(recipients)
        seen = {u: None for u in users}
        for room in rooms:
            muc = self._muc()
            if not muc.exists(room):
                unknown.append(str(room))
                continue
            for member in sorted(muc.members(room)):
                jid = self._parse(member)
                if jid is not None and jid.domain == self.domain:
                    seen.setdefault(jid, None)
        return list(seen), unknown

    def _room(self, conversation: str) -> JID:
        jid = self._parse(conversation)
        if jid is None or jid.domain != self.room_domain or jid.localpart is None:
            raise ActionFailed(f"{conversation!r} is not a conversation room of {self.room_domain}")
        if not self._muc().exists(jid):
            raise ActionFailed(f"no conversation {jid}")
        return jid

    # -- alerts -------------------------------------------------------------------

    async def send_alert(self, request: AlertRequest) -> AlertSent:
        muc, tracker = self._muc(), self._tracker()
        users, unknown = self._users(request.recipients)
        if unknown:
            log.warning(
                "alert for %s: %d recipients are not users here", request.source, len(unknown)
            )
        if request.is_mass:
            room = await self._checked(muc.create_room(subject=request.subject, members=users))
            already: frozenset[str] = frozenset()
        else:
            room = JID.parse(f"{room_for_source(request.source)}@{self.room_domain}")
            if not muc.exists(room):
                await self._checked(muc.create_room(name=room.localpart, subject=request.subject))
            already = muc.members(room)
            await self._checked(muc.add_members(room, users))
        notify = [u for u in users if request.re_alert or str(u) not in already]
        skipped = [u for u in users if u not in notify]
        alert_id = str(uuid.uuid4())
        alert = await self._alert(request, alert_id, room)
        element = al.build_alert(alert)
        body = al.readable_body(alert)
        record = self._alert_message(room, room, alert_id, body, element)
        await tracker.record_message(
            conversation=(str(room), "ROOM"),
            sender=None,
            recipients=[str(u) for u in users],
            stanza=record,
            uuid=alert_id,
            acknowledgeable=bool(request.accept or request.decline or request.accept_and_call),
            system=True,
        )
        await tracker.flush()  # recorded before anyone can see (and answer) it
        await self._describe_conversation(room, request)
        for user in notify:
            await self._route(self._alert_message(room, user, alert_id, body, element), room, user)
        await self._link_delivery(request.delivery_id, alert_id)
        return AlertSent(
            room=str(room),
            alert_id=alert_id,
            notified=tuple(str(u) for u in notify),
            skipped=tuple(str(u) for u in skipped),
        )

    async def _alert(self, request: AlertRequest, alert_id: str, room: JID) -> al.Alert:
        try:
            priority = al.Priority(request.priority)
        except ValueError:
            raise ActionFailed(f"unknown priority {request.priority!r}") from None
        try:
            return al.Alert(
                id=alert_id,
                subject=request.subject,
                message=request.message,
                ttl=request.ttl,
                expires_at=self.ctx.clock.now() + timedelta(minutes=request.ttl),
                priority=priority,
                short_message=request.short_message,
                alarm_time=request.alarm_time or None,
                patient=await self._patient(request.patient_mrn),
                event_response_team=request.event_response_team,
                additional_content=request.additional_content,
                accept=request.accept,
                decline=request.decline,
                accept_and_call=request.accept_and_call,
                callback_number=request.callback_number if request.accept_and_call else "",
                accept_badge_phrases=request.accept_badge_phrases if request.accept else (),
                decline_badge_phrases=request.decline_badge_phrases if request.decline else (),
                badge_alert_sound=request.badge_alert_sound,
                vibrate=request.vibrate,
                audible=request.audible,
                alert_sound=request.alert_sound if request.audible else "",
                always_play=request.always_play and request.audible,
                custom_parameters=request.custom_parameters,
                is_mass=request.is_mass,
                re_alert=request.re_alert,
                room=str(room),
            )
        except al.AlertFormatError as exc:
            raise ActionFailed(f"the alert is not valid: {exc}") from None

    async def _patient(self, mrn: str) -> al.Patient | None:
        if not mrn:
            return None
        settings = self.ctx.require(ClientSettingsService)
        details: list[tuple[str, str, bool]] = []
        if settings is not None:
            try:
                details = list(await settings.patient_details(mrn))
            except CarewireError:
                log.warning("alert: no details for its patient (unknown MRN)")
        return al.Patient(
            mrn=mrn,
            details=tuple(
                al.PatientDetail(label=label, value=value, is_hidden=hidden)
                for label, value, hidden in details
            ),
        )

    async def _describe_conversation(self, room: JID, request: AlertRequest) -> None:
        """Link the room's CONVERSATIONS record to the patient and the event response team."""
        changes: dict[str, object] = {}
        if request.patient_mrn:
            found = await self.datasets.query(
                "PATIENTS",
                Query(filters=(Filter(field="mrn", op=FilterOp.EQ, value=request.patient_mrn),)),
            )
            if found.records:
                changes["patient"] = found.records[0].id
        team = [
            j.split("@", 1)[0] for j in request.event_response_team if j.endswith(f"@{self.domain}")
        ]
        if team:
            users = await self.datasets.query(
                "USERS", Query(filters=(Filter(field="login", op=FilterOp.IN, value=team),))
            )
            changes["team_member"] = [u.id for u in users.records]
        if not changes:
            return
        page = await self.datasets.query(
            "CONVERSATIONS",
            Query(
                filters=(
                    Filter(field="jid1", op=FilterOp.EQ, value=str(room)),
                    Filter(field="jid2", op=FilterOp.EQ, value="ROOM"),
                )
            ),
        )
        if not page.records:
            return
        try:
            await self.datasets.update("CONVERSATIONS", page.records[0].id, changes, origin=_ORIGIN)
        except CarewireError as exc:
            log.warning("alert room %s: conversation links not set: %s", room, exc.code)

    def _alert_message(
        self, room: JID, to: JID, alert_id: str, body: str, alert: Element
    ) -> Element:
        msg = make(
            f"{{{ns.CLIENT}}}message",
            {"type": "normal", "from": str(room), "to": str(to), "id": alert_id},
        )
        msg.append(make(f"{{{ns.CLIENT}}}body", text=body))
        msg.append(deepcopy(alert))
        msg.append(make(f"{{{CONFERENCE_NS}}}x", {"jid": str(room)}))
        msg.append(make(f"{{{MARKERS_NS}}}markable"))
        msg.append(make(f"{{{HINTS_NS}}}store"))
        stanzas.stamp(msg, str(room), alert_id)
        return msg

    async def _link_delivery(self, delivery_id: int, alert_id: str) -> None:
        tracker = self._tracker()
        message_id = await tracker.message_id(alert_id)
        if message_id is None:
            log.warning(
                "alert %s was not recorded; delivery %d left unlinked", alert_id, delivery_id
            )
            return
        await self.datasets.update(
            "DELIVERIES", delivery_id, {"message": message_id}, origin=_ORIGIN
        )

    # -- messages -----------------------------------------------------------------

    async def send_message(self, request: MessageRequest) -> Delivered:
        tracker = self._tracker()
        users, rooms, unknown = self._split(request.recipients)
        sender = self._parse(request.sender) if request.sender else None
        if request.sender and sender is None:
            raise ActionFailed(f"From {request.sender!r} is not a Jabber ID")
        from_jid = sender or JID.parse(self.domain)
        extra = self._system_element(request) if sender is None else None
        sent = 0
        for room in rooms:
            muc = self._muc()
            if not muc.exists(room):
                unknown.append(str(room))
                continue
            nick = (sender.localpart or "") if sender else ""
            await muc.send_groupchat(
                room, request.body, nick=nick, extra=[extra] if extra is not None else []
            )
            sent += 1
        for user in users:
            message_id = str(uuid.uuid4())
            msg = make(
                f"{{{ns.CLIENT}}}message",
                {"type": "chat", "from": str(from_jid), "to": str(user), "id": message_id},
            )
            msg.append(make(f"{{{ns.CLIENT}}}body", text=request.body))
            if extra is not None:
                msg.append(deepcopy(extra))
            msg.append(make(f"{{{MARKERS_NS}}}markable"))
            stanzas.stamp(msg, str(user), message_id)
            pair = sorted((str(from_jid), str(user)))
            await tracker.record_message(
                conversation=(pair[0], pair[1]),
                sender=str(sender) if sender else None,
                recipients=[str(user)],
                stanza=msg,
                uuid=message_id,
                system=sender is None,
            )
            await self._route(msg, from_jid, user)
            sent += 1
        text = f"sent to {sent} recipient(s)"
        if unknown:
            text += f"; not delivered to {', '.join(unknown)} (unknown here)"
        return Delivered(text=text, unknown=tuple(unknown))

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
        muc = self._muc()
        users, _ = self._users(recipients)
        room = await self._checked(muc.create_room(subject=subject, members=users))
        if users:
            await self._checked(muc.invite(room, users, reason=subject))
        return str(room)

    async def invite(
        self, recipients: Sequence[str], room: str, *, reason: str, re_alert: bool
    ) -> Delivered:
        muc = self._muc()
        jid = self._room(room)
        users, unknown = self._users(recipients)
        already = muc.members(jid)
        targets = [u for u in users if re_alert or str(u) not in already]
        if targets:
            await self._checked(muc.invite(jid, targets, reason=reason))
        text = f"invited {len(targets)} to {jid}"
        if len(targets) < len(users):
            text += f"; {len(users) - len(targets)} already members (no Re-Alert)"
        return Delivered(text=text, unknown=tuple(unknown))

    async def expire_conversation(self, conversation: str) -> Delivered:
        key = conversation.strip()
        if not await self._tracker().expire_conversation(key):
            raise ActionFailed(f"no conversation {key}")
        return Delivered(text=f"conversation {key} expired")

    async def leave_conversation(self, recipients: Sequence[str], conversation: str) -> Delivered:
        jid = self._room(conversation)
        users, unknown = self._users(recipients)
        await self._checked(self._muc().remove_members(jid, users, reason="left the conversation"))
        await self._tracker().leave_conversation(str(jid), [str(u) for u in users])
        return Delivered(text=f"{len(users)} left {jid}", unknown=tuple(unknown))

    # -- presence -------------------------------------------------------------------

    async def update_presence(
        self, recipients: Sequence[str], kind: str, status: str, *, changed_by: str = "rule"
    ) -> Delivered:
        presence = self._service(ClinicalPresence, "clinical presence")
        users, unknown = self._users(recipients)
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

    # -- helpers ---------------------------------------------------------------------

    async def _route(self, stanza: Element, from_jid: JID, to_jid: JID) -> None:
        await self.ctx.router.route(stanza, from_jid=from_jid, to_jid=to_jid)

    @staticmethod
    async def _checked(work: Awaitable[T]) -> T:
        """Await room work; a refusal (the 200-user limit …) becomes the delivery's error."""
        try:
            return await work
        except StanzaError as err:
            raise ActionFailed(err.text or err.condition.value) from None


def setup(ctx: FeatureContext) -> None:
    """Provide the gateway when the data platform is present."""
    datasets = ctx.require(DatasetService)
    if datasets is None:
        return
    ctx.provide(ServerGateway(ctx, datasets))
