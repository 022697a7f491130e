"""The coverage service: reachability for alerts, holding and releasing for busy users.

Theory of operation: everything the message path asks is in memory. ``busy``
holds the :class:`~.model.Busy` state of the users something keeps busy (an
empty dict is the common case, and one truth test is all a message costs);
``held`` counts the held messages per user (loaded from the store at start).
A message held for a busy user is committed to the held store before the
router is told it was handled, so nothing the server took is lost; when the
user is free again (the alert answered or expired, DND over) the messages go
to their available resources oldest first, or wait for their next initial
presence. The decisions are :mod:`.model`'s; this class only applies them.

What keeps a user busy is memory first and written through to the busy
store (a timed DND when it is set, urgent alerts once per alert for all
their recipients), so a restart starts from it (:meth:`load`); presence
``dnd`` is the clients' and is not kept. The store also carries an
administrator's request, made in another process, to release a user's
held messages now; the periodic :meth:`tick` honours it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from dataclasses import replace
from datetime import datetime

from carewire.core.events import AlertResponded, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.core.stores import BusyKind, BusyPeriod
from carewire.errors import NotFoundError
from carewire.features.clinical_presence.sessions import is_virtual
from carewire.features.coverage import stanzas as cs
from carewire.features.coverage.model import (
    BREAKS_THROUGH,
    Busy,
    CoveragePlan,
    HoldReason,
    Priority,
    Unreachable,
    hold_reason,
    prune,
    unreachable,
)
from carewire.features.coverage.shifts import ShiftIndex
from carewire.features.tracking import MessageTracker
from carewire.features.tracking import stanzas as ts
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.xmpp import ns
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

SHOW = f"{{{ns.CLIENT}}}show"


class Coverage:
    """Who can be reached now, and the messages held for those who cannot be interrupted."""

    def __init__(
        self,
        ctx: FeatureContext,
        *,
        shifts: ShiftIndex,
        tracker: MessageTracker,
        audit: AuditTrail | None,
    ) -> None:
        self.ctx = ctx
        self.shifts = shifts
        self.tracker = tracker
        self.audit = audit
        self.busy: dict[str, Busy] = {}
        self.held: dict[str, int] = {}
        # Released by an administrator while no client was online: at the next initial presence.
        self.release_on_connect: set[str] = set()

    # -- reachability -------------------------------------------------------------

    def is_online(self, login: str) -> bool:
        """Whether any resource of ``login`` is available (a virtual session counts)."""
        return bool(self.ctx.sessions.available_of_user(login))

    async def reach(self, logins: Iterable[str]) -> dict[str, Unreachable]:
        """The unreachable ones among ``logins``, with why."""
        index = await self.shifts.fresh()
        out: dict[str, Unreachable] = {}
        for login in logins:
            why = unreachable(is_on_shift=index.is_on_shift(login), is_online=self.is_online(login))
            if why is not None:
                out[login] = why
        return out

    async def record_cover(self, source: str, plan: CoveragePlan) -> None:
        """An alert for ``source`` met unreachable recipients: the audit trail keeps it."""
        await self._audit(
            "system",
            "coverage.rerouted" if plan.rerouted_from else "coverage.unreachable",
            source,
            unreachable={jid: why.value for jid, why in plan.uncovered},
            covering=list(plan.covering),
        )

    async def on_stored(self, event: StanzaEvent) -> None:
        """Hook ``message/stored``: tell a sender whose message waits for an off-shift user."""
        origin, to = event.origin, event.to_jid
        if origin is None or to is None or to.localpart is None:
            return
        login = to.localpart
        if (await self.shifts.fresh()).is_on_shift(login) is not False:
            return
        why = Unreachable.OFF_SHIFT_OFFLINE
        body = f"{login} is {why.text}; your message is stored and reaches them when they connect."
        self._notice(origin, event, state="stored", reason=why.value, body=body)
        await self._audit(origin.username, "coverage.unreachable", str(to.bare), reason=why.value)

    # -- interruption control: what keeps a user busy --------------------------------

    async def alerted(
        self, logins: Iterable[str], *, alert_id: str, priority: str, expires_at: datetime
    ) -> None:
        """An alert that can be answered was sent: an Urgent or Critical one keeps them busy.

        An alert offering no response (a mass alert) cannot be answered, so it
        keeps nobody busy: it would hold their traffic until it expires.
        """
        if Priority.parse(priority) < BREAKS_THROUGH:
            return
        periods = []
        for login in logins:
            self.busy[login] = self.busy.get(login, Busy()).with_alert(alert_id, expires_at)
            periods.append(
                BusyPeriod(login=login, kind=BusyKind.ALERT, ref=alert_id, until=expires_at)
            )
        await self._keep(self.ctx.stores.busy.put(periods))

    async def on_responded(self, event: AlertResponded) -> None:
        """Hook ``alert/responded``: the responder is free of it; an Accept frees everyone."""
        is_accept = event.action == "accept"
        logins = list(self.busy) if is_accept else [event.login]
        for login in logins:
            state = self.busy.get(login)
            if state is not None:
                self._set(login, state.without_alert(event.alert_id))
        await self._keep(
            self.ctx.stores.busy.remove(
                kind=BusyKind.ALERT, ref=event.alert_id, login=None if is_accept else event.login
            )
        )
        await self.release_free(logins)

    def on_presence(self, event: StanzaEvent) -> None:
        """Hook ``pre-presence``: every available resource showing ``dnd`` keeps the user busy."""
        origin = event.origin
        if origin is None or event.to_jid is not None or is_virtual(origin):
            return
        kind = event.stanza.get("type")
        if kind not in (None, "unavailable"):
            return
        shows = [self._show(s) for s in self._clients(origin.username) if s is not origin]
        if kind is None:
            shows.append(event.stanza.findtext(SHOW, "").strip())
        self._presence_dnd(origin.username, bool(shows) and all(s == "dnd" for s in shows))

    async def on_closed(self, event: SessionEvent) -> None:
        """Hook ``session/closed``: the user's DND is judged on what remains."""
        login = event.session.username
        shows = [self._show(s) for s in self._clients(login) if s is not event.session]
        self._presence_dnd(login, bool(shows) and all(s == "dnd" for s in shows))

    async def set_dnd(self, login: str, until: datetime | None, note: str = "") -> None:
        """Start (``until`` a time) or end (None) a timed Do Not Disturb, kept across restarts."""
        self._set(login, replace(self.busy.get(login, Busy()), dnd_until=until))
        busy = self.ctx.stores.busy
        if until is None:
            await self._keep(busy.remove(kind=BusyKind.DND, login=login))
        else:
            await self._keep(
                busy.put([BusyPeriod(login=login, kind=BusyKind.DND, until=until, note=note)])
            )

    def reason_of(self, login: str) -> HoldReason | None:
        """Why Normal messages to ``login`` are held now (None: they are not)."""
        return hold_reason(self.busy.get(login), Priority.NORMAL, self.ctx.clock.now())

    # -- holding and releasing ---------------------------------------------------------

    async def on_message(self, event: StanzaEvent) -> bool:
        """Hooks ``message/bare`` and ``message/full``: hold what a busy user must not get now."""
        if not self.busy:
            return False
        to = event.to_jid
        if (
            to is None
            or to.localpart is None
            or event.stanza.get("type", "normal")
            not in (
                "chat",
                "normal",
            )
        ):
            return False
        state = self.busy.get(to.localpart)
        if state is None:
            return False
        priority, _ = cs.message_priority(event.stanza)
        why = hold_reason(state, Priority.parse(priority), self.ctx.clock.now())
        if why is None or not ts.has_content(event.stanza):
            return False
        await self._hold(event, to.localpart, why)
        return True

    async def _hold(self, event: StanzaEvent, login: str, why: HoldReason) -> None:
        try:
            await self.ctx.stores.held.hold(
                login, serialize(event.stanza, None), stamp=self.ctx.clock.now(), reason=why.value
            )
        except NotFoundError:
            return  # no such account: the default delivery answers the sender
        self.held[login] = self.held.get(login, 0) + 1
        uid = ts.stanza_id(event.stanza)
        if uid is not None:
            self.tracker.delivered(uid, str(event.to_jid.bare) if event.to_jid else "", "held_at")
        if event.origin is not None:
            until = self.busy[login].dnd_until if why is HoldReason.DND else None
            body = (
                f"{login} is {_busy_text(why, until)}; "
                "your message is held and delivered when they are free."
            )
            self._notice(event.origin, event, state="held", reason=why.value, body=body)
        sender = event.origin.username if event.origin is not None else str(event.from_jid)
        await self._audit(
            sender,
            "coverage.held",
            str(event.to_jid.bare) if event.to_jid else login,
            reason=why.value,
        )

    async def release_free(self, logins: Iterable[str]) -> None:
        """Deliver what is held for each of ``logins`` that is no longer busy."""
        for login in list(logins):
            if self.held.get(login) and self.reason_of(login) is None:
                await self.release(login)

    async def release(self, login: str, targets: list[Session] | None = None) -> int:
        """Deliver the messages held for ``login`` to its top resources, oldest first."""
        targets = targets if targets is not None else self.ctx.sessions.top_priority(login)
        targets = [s for s in targets if not is_virtual(s)]
        if not targets:
            return 0  # they wait for the user's next initial presence
        held = await self.ctx.stores.held.fetch(login)
        who = f"{login}@{self.ctx.hosts.domain}"
        now = self.ctx.clock.now()
        expired = 0
        for message in held:
            try:
                stanza = parse_document(message.stanza)
            except Exception:  # a corrupt row must not block the rest
                log.exception("held message %d could not be read", message.id)
                continue
            expires_at = ts.expiry_of(stanza)
            if expires_at is not None and expires_at <= now:
                expired += 1  # expired while held (docs/retention.md): it never reaches a client
                continue
            for session in targets:
                self.ctx.router.deliver(session, stanza)
            uid = ts.stanza_id(stanza)
            if uid is not None:
                self.tracker.delivered(uid, who, "released_at")
        await self.ctx.stores.held.delete(login, [m.id for m in held])
        self.held.pop(login, None)
        if expired:
            log.info("dropped %d held messages to %s that expired while held", expired, login)
        if held:
            log.info("released %d held messages to %s", len(held) - expired, login)
            await self._audit("system", "coverage.released", who, count=len(held))
        return len(held)

    async def release_now(self, login: str) -> int:
        """An administrator's release: what is held goes now, busy or not.

        With no client online, it goes at the user's next initial presence
        (before offline messages), whether they are busy then or not.
        """
        delivered = await self.release(login)
        if not delivered and self.held.get(login):
            self.release_on_connect.add(login)
        return delivered

    async def on_initial_presence(self, event: SessionEvent) -> None:
        """Hook ``session/initial-presence``: a free user gets what was held, first."""
        login = event.session.username
        if not self.held.get(login) or is_virtual(event.session):
            return
        if self.reason_of(login) is None or login in self.release_on_connect:
            self.release_on_connect.discard(login)
            await self.release(login, [event.session])

    async def tick(self) -> None:
        """Periodic job: drop what time ended (alert expiry, DND end), honour release requests."""
        now = self.ctx.clock.now()
        ended = False
        for login, state in list(self.busy.items()):
            current = prune(state, now)
            ended = ended or current != state
            self._set(login, current)
        if ended:
            await self._keep(self.ctx.stores.busy.remove_ended(now))
        for request in await self.ctx.stores.busy.take(BusyKind.RELEASE):
            self.held[request.login] = len(await self.ctx.stores.held.fetch(request.login))
            await self.release_now(request.login)
        await self.release_free(list(self.held))

    async def load(self, _payload: object = None) -> None:
        """At start: who has held messages, who is busy (kept), and who is on shift."""
        self.held = await self.ctx.stores.held.owners()
        await self.ctx.stores.busy.remove_ended(self.ctx.clock.now())
        for period in await self.ctx.stores.busy.all():
            state = self.busy.get(period.login, Busy())
            if period.kind is BusyKind.DND:
                self.busy[period.login] = replace(state, dnd_until=period.until)
            elif period.kind is BusyKind.ALERT:
                self.busy[period.login] = state.with_alert(period.ref, period.until)
        await self.shifts.reload()

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    async def _keep(write: Awaitable[object]) -> None:
        """Write busy state through; memory stays right when the account is gone."""
        try:
            await write
        except NotFoundError:
            log.debug("busy state of a removed account not kept")

    def _set(self, login: str, state: Busy) -> None:
        if state.is_idle:
            self.busy.pop(login, None)
        else:
            self.busy[login] = state

    def _presence_dnd(self, login: str, is_dnd: bool) -> None:
        state = self.busy.get(login, Busy())
        if state.is_presence_dnd != is_dnd:
            self._set(login, replace(state, is_presence_dnd=is_dnd))

    def _clients(self, login: str) -> list[Session]:
        return [s for s in self.ctx.sessions.available_of_user(login) if not is_virtual(s)]

    @staticmethod
    def _show(session: Session) -> str:
        presence = session.presence
        return "" if presence is None else presence.findtext(SHOW, "").strip()

    def _notice(
        self, origin: Session, event: StanzaEvent, *, state: str, reason: str, body: str
    ) -> None:
        about = str(event.to_jid.bare) if event.to_jid is not None else ""
        notice = cs.build_notice(
            server=self.ctx.hosts.domain,
            to=str(origin.jid),
            about=about,
            message_id=event.stanza.get("id", ""),
            state=state,
            reason=reason,
            body=body,
        )
        self.ctx.router.deliver(origin, notice)

    async def _audit(self, actor: str, action: str, target: str, **details: object) -> None:
        if self.audit is None:
            return
        who = actor if actor == "system" or ":" in actor else f"xmpp:{actor}"
        channel = Channel.SYSTEM if who == "system" else Channel.XMPP
        await self.audit.record(
            AuditEvent(actor=who, channel=channel, action=action, target=target, details=details)
        )


def _busy_text(why: HoldReason, until: datetime | None) -> str:
    if why is HoldReason.URGENT_ALERT:
        return "handling an urgent alert"
    if until is not None:
        return f"in Do Not Disturb until {until.strftime('%H:%M UTC')}"
    return "in Do Not Disturb"
