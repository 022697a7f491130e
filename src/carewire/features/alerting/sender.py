"""Send Alert and Send Mass Alert, delivered: one room per record, one tracked alert.

Theory of operation: alerts about the same record share one room,
``<dataset>-<id>@chat.DOMAIN``, so an escalation to a backup joins the
nurse's room and sees what happened there (a mass alert gets a room of its
own). The alert is recorded once, as a MESSAGES record of that room whose
uuid is the alert id, and committed before anyone can see (and answer) it;
each recipient to be notified then gets a direct message from the room
carrying the readable text as an ordinary ``<body/>``, the
``urn:carewire:alert:0`` element (:mod:`carewire.xmpp.alert`) and the alert's
stanza-id, so delivery to each recipient (sent, received, displayed,
acknowledged) is tracked like any message; then the invitation to the room,
as a stanza of its own. The invitation is not in the alert message because
ordinary clients that see an invitation (XEP-0249 or XEP-0045 mediated) in a
message show the invitation and not the body (issue 14). Without Re-Alert, recipients who
were already alerted for the record are not notified again. Last, the
firing's DELIVERIES record is linked to the alert's MESSAGES record, which
is how a response finds the rule that sent the alert.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from copy import deepcopy
from datetime import timedelta
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import AlertRequest, AlertSent, GatewayError
from carewire.core import hook_names as H
from carewire.core.events import AlertNotifying
from carewire.core.feature import FeatureContext
from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError
from carewire.features.alerting.addressing import Addresses, checked
from carewire.features.client_settings import ClientSettingsService
from carewire.features.coverage import Coverage
from carewire.features.coverage.model import CoverageMode, CoveragePlan, plan_coverage
from carewire.features.muc.service import MucService
from carewire.features.tracking import MessageTracker, stanzas
from carewire.xmpp import alert as al
from carewire.xmpp import ns
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

MARKERS_NS = "urn:xmpp:chat-markers:0"
HINTS_NS = "urn:xmpp:hints"

#: Recipients of one alert served at once (the rest wait their turn).
FANOUT_CONCURRENCY = 64

_SLUG = re.compile(r"[^a-z0-9_.-]+")
#: The origin of the writes an alert makes (links, not clinical data).
ORIGIN = Origin(adapter=None, actor="xmpp", depth=0)


def room_for_source(source: str) -> str:
    """The room localpart alerts about one record share (``nurse_calls-12``)."""
    dataset, _, record_id = source.partition("/")
    return _SLUG.sub("_", f"{dataset.lower()}-{record_id}")


class AlertSender:
    """Opens the record's room, records the alert, notifies, links the firing."""

    def __init__(
        self,
        ctx: FeatureContext,
        *,
        datasets: DatasetService,
        tracker: MessageTracker,
        addresses: Addresses,
        details: ClientSettingsService | None,
        coverage: Coverage | None = None,
    ) -> None:
        self.ctx = ctx
        self.datasets = datasets
        self.tracker = tracker
        self.addresses = addresses
        self.details = details
        self.coverage = coverage

    @property
    def muc(self) -> MucService:
        """The room service."""
        return self.addresses.muc

    async def send(self, request: AlertRequest) -> AlertSent:
        """Deliver one Send Alert / Send Mass Alert firing (see the module's theory)."""
        users, unknown = self.addresses.users(request.recipients)
        if unknown:
            log.warning(
                "alert for %s: %d recipients are not users here", request.source, len(unknown)
            )
        users, plan = await self._cover(request, users)
        room, already = await self._room(request, users)
        notify = [u for u in users if request.re_alert or str(u) not in already]
        alert_id = str(uuid.uuid4())
        alert = await self._alert(request, alert_id, room)
        element, body = al.build_alert(alert), al.readable_body(alert)
        await self.tracker.record_message(
            conversation=(str(room), "ROOM"),
            sender=None,
            recipients=[str(u) for u in users],
            stanza=self._message(room, room, alert_id, body, element),
            uuid=alert_id,
            acknowledgeable=bool(request.accept or request.decline or request.accept_and_call),
            system=True,
        )
        if notify and self.ctx.hooks.has_handlers(H.ALERT_NOTIFYING):
            # Phones that no session reaches hear of the alert now, all at once, rather than
            # each after its own copy was stored (docs/push.md). A push says only that
            # something waits: the alert is committed (next line) long before a woken app
            # has connected, so its commit need not hold the pushes up.
            self.ctx.hooks.fire_sync(
                H.ALERT_NOTIFYING,
                AlertNotifying(
                    alert_id=alert_id,
                    stanza=self._message(room, notify[0], alert_id, body, element),
                    recipients=tuple(notify),
                ),
            )
        await self.tracker.flush()  # recorded before anyone can see (and answer) it
        await self._describe_conversation(room, request)
        invitation_room = self.muc.room(room)
        gate = asyncio.Semaphore(FANOUT_CONCURRENCY)
        failures: list[Exception] = []

        async def notify_one(user: JID) -> None:
            # Each recipient gets the alert, then the room's invitation, in that order; the
            # recipients are served side by side, so the last of 200 offline recipients does
            # not wait for 199 offline stores (they share commits: storage/offline.py) and
            # its push leaves as soon as its own copy is stored.
            async with gate:
                try:
                    message = self._message(room, user, alert_id, body, element)
                    await self.ctx.router.route(message, from_jid=room, to_jid=user)
                    await self.muc.send_invitation(
                        invitation_room, user, inviter=None, reason=request.subject, has_body=False
                    )
                except Exception as exc:  # supervisor of the fan-out: see below
                    failures.append(exc)

        async with asyncio.TaskGroup() as fanout:
            for user in notify:
                fanout.create_task(notify_one(user))
        if failures:
            # One recipient's failure must not hold back the others' alerts; once they all
            # have theirs, the firing fails as it did when recipients were served in turn.
            log.error("alert %s: %d of %d recipients failed", alert_id, len(failures), len(notify))
            raise failures[0]
        if self.coverage is not None and alert.offered:
            await self.coverage.alerted(
                [u.localpart for u in notify if u.localpart is not None],
                alert_id=alert_id,
                priority=alert.priority.value,
                expires_at=alert.expires_at,
            )
        await self._link_delivery(request.delivery_id, alert_id)
        return AlertSent(
            room=str(room),
            alert_id=alert_id,
            notified=tuple(str(u) for u in notify),
            skipped=tuple(str(u) for u in users if u not in notify),
            uncovered=tuple((jid, why.text) for jid, why in plan.uncovered),
            rerouted_from=plan.rerouted_from,
            covering=plan.covering,
            is_without_cover=plan.is_without_cover,
        )

    async def _cover(
        self, request: AlertRequest, users: list[JID]
    ) -> tuple[list[JID], CoveragePlan]:
        """The recipients coverage leaves (docs/coverage.md), and what it decided."""
        try:
            mode = CoverageMode(request.coverage)
        except ValueError:
            raise GatewayError(f"unknown coverage {request.coverage!r}") from None
        if self.coverage is None:
            return users, CoveragePlan(notify=tuple(str(u) for u in users))
        cover: list[JID] = []
        if mode is CoverageMode.REROUTE:
            cover, _ = self.addresses.users(request.covering)
        people = {str(u): u for u in [*users, *cover] if u.localpart is not None}
        reasons = await self.coverage.reach(u.localpart or "" for u in people.values())
        plan = plan_coverage(
            [str(u) for u in users],
            {j: reasons[u.localpart or ""] for j, u in people.items() if u.localpart in reasons},
            mode=mode,
            covering=[str(c) for c in cover],
        )
        if plan.uncovered:
            await self.coverage.record_cover(request.source, plan)
        return [people[j] for j in plan.notify if j in people], plan

    async def _room(self, request: AlertRequest, users: list[JID]) -> tuple[JID, frozenset[str]]:
        """The alert's room with the recipients in it, and who was a member before."""
        if request.is_mass:
            room = await checked(self.muc.create_room(subject=request.subject, members=users))
            return room, frozenset()
        room = JID.parse(f"{room_for_source(request.source)}@{self.addresses.room_domain}")
        if not self.muc.exists(room):
            await checked(self.muc.create_room(name=room.localpart, subject=request.subject))
        already = self.muc.members(room)
        await checked(self.muc.add_members(room, users))
        return room, already

    async def _alert(self, request: AlertRequest, alert_id: str, room: JID) -> al.Alert:
        try:
            priority = al.Priority(request.priority)
        except ValueError:
            raise GatewayError(f"unknown priority {request.priority!r}") from None
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
            raise GatewayError(f"the alert is not valid: {exc}") from None

    async def _patient(self, mrn: str) -> al.Patient | None:
        if not mrn:
            return None
        details: list[tuple[str, str, bool]] = []
        if self.details is not None:
            try:
                details = list(await self.details.patient_details(mrn))
            except CarewireError:
                log.warning("alert: no details for its patient (unknown MRN)")
        return al.Patient(
            mrn=mrn,
            details=tuple(
                al.PatientDetail(label=label, value=value, is_hidden=hidden)
                for label, value, hidden in details
                if value.strip()  # an empty field says nothing ("Facility Admit Date: ")
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
        domain = self.addresses.domain
        team = [j.split("@", 1)[0] for j in request.event_response_team if j.endswith(f"@{domain}")]
        if team:
            users = await self.datasets.query(
                "USERS", Query(filters=(Filter(field="login", op=FilterOp.IN, value=team),))
            )
            changes["team_member"] = [u.id for u in users.records]
        if changes:
            await self._update_conversation(room, changes)

    async def _update_conversation(self, room: JID, changes: dict[str, object]) -> None:
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
            await self.datasets.update("CONVERSATIONS", page.records[0].id, changes, origin=ORIGIN)
        except CarewireError as exc:
            log.warning("alert room %s: conversation links not set: %s", room, exc.code)

    @staticmethod
    def _message(room: JID, to: JID, alert_id: str, body: str, alert: Element) -> Element:
        msg = make(
            f"{{{ns.CLIENT}}}message",
            {"type": "normal", "from": str(room), "to": str(to), "id": alert_id},
        )
        msg.append(make(f"{{{ns.CLIENT}}}body", text=body))
        msg.append(deepcopy(alert))
        msg.append(make(f"{{{MARKERS_NS}}}markable"))
        msg.append(make(f"{{{HINTS_NS}}}store"))
        stanzas.stamp(msg, str(room), alert_id)
        return msg

    async def _link_delivery(self, delivery_id: int, alert_id: str) -> None:
        message_id = await self.tracker.message_id(alert_id)
        if message_id is None:
            log.warning(
                "alert %s was not recorded; delivery %d left unlinked", alert_id, delivery_id
            )
            return
        await self.datasets.update(
            "DELIVERIES", delivery_id, {"message": message_id}, origin=ORIGIN
        )
