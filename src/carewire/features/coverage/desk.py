"""The administrator's view of interruption control: who is busy, what is held, release now.

Used by the REST API, the web console and the command line (docs/coverage.md).
In the server's process the desk is attached to the running
:class:`~.service.Coverage` and reports its state (presence ``dnd`` included)
and releases at once. In another process (the command line) it reads what
the server keeps in the database: a timed Do Not Disturb, unanswered urgent
alerts and the held messages; a release there is a request the running
server honours within its 15-second tick.

Held messages are reported by sender, time and reason only: their bodies
are clinical content and never leave the store here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from carewire.clock import Clock
from carewire.core.stores import BusyKind, BusyPeriod, Stores
from carewire.errors import NotFoundError
from carewire.features.coverage.model import Busy, HoldReason, Priority, hold_reason, prune
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document

if TYPE_CHECKING:
    from carewire.features.coverage.service import Coverage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldInfo:
    """One held message, without its content."""

    sender: str
    held_at: datetime
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BusyStatus:
    """A user's interruption state.

    Attributes:
        login: The user.
        reason: ``urgent-alert``, ``dnd`` or empty (not busy).
        until: When time alone ends it (the timed DND's end, or the last
            urgent alert's expiry); None when only presence ``dnd`` keeps them.
        note: The reason the user gave for a timed Do Not Disturb.
        urgent_alerts: Unanswered Urgent or Critical alerts.
        held: The held messages, oldest first.
        is_live: Read from the running server (else from the database,
            which does not know presence ``dnd``).
    """

    login: str
    reason: str
    until: datetime | None
    note: str
    urgent_alerts: int
    held: tuple[HeldInfo, ...]
    is_live: bool

    @property
    def is_busy(self) -> bool:
        """Normal traffic to the user is held now."""
        return bool(self.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Released:
    """What a release did: delivered now, left for the next connection, or requested."""

    login: str
    delivered: int
    is_waiting: bool
    is_requested: bool

    @property
    def text(self) -> str:
        """For people."""
        if self.is_requested:
            return "release requested: the running server delivers within 15 seconds"
        if self.is_waiting:
            return "no client online: the held messages go at the user's next connection"
        return f"{self.delivered} held message(s) delivered"


class CoverageDesk:
    """Busy state and held messages for administrators, in any process."""

    def __init__(self, stores: Stores, clock: Clock, audit: AuditTrail | None) -> None:
        self.stores = stores
        self.clock = clock
        self.audit = audit
        self.coverage: Coverage | None = None

    def attach(self, coverage: Coverage) -> None:
        """The running server's coverage (called by the feature when it loads)."""
        self.coverage = coverage

    async def status(self, login: str) -> BusyStatus:
        """The state of ``login``.

        Raises:
            NotFoundError: No such account.
        """
        await self._check(login)
        periods = await self.stores.busy.of(login)
        live = self.coverage
        state = live.busy.get(login, Busy()) if live is not None else _busy_of(periods)
        now = self.clock.now()
        state = prune(state, now)
        why = hold_reason(state, Priority.NORMAL, now)
        held = await self.stores.held.fetch(login)
        return BusyStatus(
            login=login,
            reason=why.value if why is not None else "",
            until=_until(state, why),
            note=next((p.note for p in periods if p.kind is BusyKind.DND), "") if why else "",
            urgent_alerts=len(state.urgent),
            held=tuple(
                HeldInfo(sender=_sender(m.stanza), held_at=m.stamp, reason=m.reason) for m in held
            ),
            is_live=live is not None,
        )

    async def release(self, login: str, *, actor: str, channel: Channel) -> Released:
        """Deliver the messages held for ``login`` now, busy or not; audited.

        Raises:
            NotFoundError: No such account.
        """
        await self._check(login)
        count = len(await self.stores.held.fetch(login))
        if self.coverage is not None:
            delivered = await self.coverage.release_now(login) if count else 0
            done = Released(
                login=login,
                delivered=delivered,
                is_waiting=bool(count) and not delivered,
                is_requested=False,
            )
        else:
            request = BusyPeriod(login=login, kind=BusyKind.RELEASE, until=self.clock.now())
            if count:
                await self.stores.busy.put([request])
            done = Released(login=login, delivered=0, is_waiting=False, is_requested=bool(count))
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor=actor,
                    channel=channel,
                    action="coverage.release",
                    target=login,
                    details={"held": count, "delivered": done.delivered, "result": done.text},
                )
            )
        return done

    async def _check(self, login: str) -> None:
        if not await self.stores.accounts.exists(login):
            raise NotFoundError(f"no user {login!r}", code="unknown-user")


def _busy_of(periods: list[BusyPeriod]) -> Busy:
    state = Busy()
    for p in periods:
        if p.kind is BusyKind.ALERT:
            state = state.with_alert(p.ref, p.until)
        elif p.kind is BusyKind.DND:
            state = Busy(urgent=state.urgent, dnd_until=p.until)
    return state


def _until(state: Busy, why: HoldReason | None) -> datetime | None:
    if why is HoldReason.URGENT_ALERT:
        return max(a[1] for a in state.urgent)
    if why is HoldReason.DND:
        return state.dnd_until
    return None


def _sender(stanza: str) -> str:
    """The bare JID that sent a held stanza (its ``from``), or empty when it cannot be read."""
    try:
        text = parse_document(stanza).get("from") or ""
        return str(JID.parse(text).bare) if text else ""
    except (RemoteProtocolError, InvalidJID):
        log.warning("a held message could not be read")
        return ""
