"""Coverage and interruption control: no alert lands silently on someone who cannot take it.

*Coverage.* Before an alert goes out, :class:`~.service.Coverage` says which
recipients are off shift (no active ASSIGNMENTS record) or offline on every
device; the Send Alert action's Coverage setting records them or reroutes the
alert to the covering recipients (:mod:`carewire.features.alerting.sender`).
A chat message stored for a user who is off shift and offline gets its sender
a notice (``urn:carewire:coverage:0``).

*Interruption control.* While a user has an unanswered Urgent alert, or is in
Do Not Disturb (presence ``dnd`` on every device, or a timed ``<dnd/>``),
messages and alerts below Urgent are held durably and delivered when they are
free; Urgent and Critical break through. The sender is told the message is
held, and MESSAGE_DELIVERIES records ``held_at`` and ``released_at``.

Layout: :mod:`.model` (the decisions, pure), :mod:`.stanzas` (the protocol
elements), :mod:`.shifts` (who is on shift, in memory), :mod:`.service` (the
hooks), :mod:`.desk` (the administrators' view). See docs/coverage.md.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.service import DatasetService
from carewire.features.coverage import stanzas as cs
from carewire.features.coverage.desk import CoverageDesk
from carewire.features.coverage.model import CoverageMode, Unreachable, plan_coverage
from carewire.features.coverage.service import Coverage
from carewire.features.coverage.shifts import ShiftIndex
from carewire.features.tracking import MessageTracker
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.xmpp.errors import StanzaCondition, StanzaError

__all__ = ["Coverage", "CoverageDesk", "CoverageMode", "Unreachable", "plan_coverage", "setup"]

# After blocking (1000) and the wipe gate (1500); before carbons and clinical presence (-900)
# and the default delivery (-1000), so a held message reaches no resource and no carbon copy.
HOLD_PRIORITY = -800
# After clinical presence observed the presence (500).
PRESENCE_PRIORITY = 400
# Before offline delivery (0): what was held while the user was here came first.
INITIAL_PRESENCE_PRIORITY = 100
TICK_INTERVAL = 15.0
SHIFT_RELOAD_INTERVAL = 300.0


class _Requests:
    """The ``urn:carewire:coverage:0`` IQs: Do Not Disturb, resume, status."""

    def __init__(self, ctx: FeatureContext, coverage: Coverage, audit: AuditTrail | None) -> None:
        self.ctx = ctx
        self.coverage = coverage
        self.audit = audit

    async def dnd(self, req: IqRequest) -> Element | None:
        """``<dnd until='…'/>``: hold Normal traffic until then."""
        login = req.sender_login
        try:
            request = cs.parse_dnd(req.payload, self.ctx.clock.now())
        except cs.CoverageFormatError as exc:
            raise StanzaError(StanzaCondition.BAD_REQUEST, str(exc)) from None
        await self.coverage.set_dnd(login, request.until, request.reason)
        await self._audit(login, "coverage.dnd", until=cs.format_time(request.until))
        return None

    async def resume(self, req: IqRequest) -> Element | None:
        """``<resume/>``: the timed Do Not Disturb ends now; what was held follows."""
        login = req.sender_login
        await self.coverage.set_dnd(login, None)
        await self._audit(login, "coverage.resume")
        await self.coverage.release_free([login])
        return None

    async def status(self, req: IqRequest) -> Element | None:
        """``<status/>``: busy or not, why, until when, how many messages are held."""
        login = req.sender_login
        reason = self.coverage.reason_of(login)
        state = self.coverage.busy.get(login)
        until = state.dnd_until if state is not None else None
        return cs.build_status(
            reason=reason.value if reason else "",
            until=until,
            held=self.coverage.held.get(login, 0),
        )

    async def _audit(self, login: str, action: str, **details: object) -> None:
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor=f"xmpp:{login}",
                    channel=Channel.XMPP,
                    action=action,
                    target=f"{login}@{self.ctx.hosts.domain}",
                    details=details,
                )
            )


def setup(ctx: FeatureContext) -> None:
    """Provide :class:`Coverage`; hold, release and tell senders; answer the IQs."""
    datasets = ctx.require(DatasetService)
    shifts = ShiftIndex(datasets)
    datasets.subscribe(shifts.on_change, ShiftIndex.DATASETS)
    audit = ctx.find(AuditTrail)
    coverage = ctx.provide(
        Coverage(ctx, shifts=shifts, tracker=ctx.require(MessageTracker), audit=audit)
    )
    desk = ctx.find(CoverageDesk)
    if desk is not None:  # the administrators' view (REST, console) reads the live state
        desk.attach(coverage)
    ctx.hooks.on(H.MESSAGE_BARE, coverage.on_message, priority=HOLD_PRIORITY)
    ctx.hooks.on(H.MESSAGE_FULL, coverage.on_message, priority=HOLD_PRIORITY)
    ctx.hooks.on(H.MESSAGE_STORED, coverage.on_stored)
    ctx.hooks.on(H.PRE_PRESENCE, coverage.on_presence, priority=PRESENCE_PRIORITY)
    ctx.hooks.on(H.SESSION_CLOSED, coverage.on_closed)
    ctx.hooks.on(
        H.SESSION_INITIAL_PRESENCE, coverage.on_initial_presence, priority=INITIAL_PRESENCE_PRIORITY
    )
    ctx.hooks.on(H.ALERT_RESPONDED, coverage.on_responded)
    ctx.hooks.on(H.SERVER_STARTED, coverage.load)
    requests = _Requests(ctx, coverage, audit)
    targets = (IqTarget.ACCOUNT, IqTarget.HOST)
    ctx.iq.register(cs.DND, requests.dnd, types=("set",), targets=targets)
    ctx.iq.register(cs.RESUME, requests.resume, types=("set",), targets=targets)
    ctx.iq.register(cs.STATUS, requests.status, types=("get",), targets=targets)
    ctx.disco.add_server_feature(cs.NS)
    ctx.every("coverage-release", TICK_INTERVAL, coverage.tick)
    ctx.every("coverage-shifts", SHIFT_RELOAD_INTERVAL, shifts.reload)
