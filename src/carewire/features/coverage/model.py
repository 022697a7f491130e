"""Coverage and interruption control, the decisions: pure functions of state and ``now``.

Theory of operation
-------------------
*Interruption control.* A user is **busy** while they have an unanswered
alert of Urgent or Critical priority (from its delivery until they respond,
someone accepts it, or it expires) or while they are in Do Not Disturb
(presence ``<show>dnd</show>`` on every available resource, or a timed DND
set with ``<dnd xmlns='urn:carewire:coverage:0' until='…'/>``). While busy,
traffic below Urgent is held; Urgent and Critical break through. The state
of one user is a :class:`Busy` value; :func:`hold_reason` decides one
message, :func:`prune` drops what ``now`` has ended and :func:`next_change`
says when that will next happen.

*Coverage.* A recipient is unreachable when they are off shift (no active
assignment, judged only where shifts are recorded at all) or offline on
every device. :func:`plan_coverage` decides an alert's recipients under a
rule's Coverage setting: record only, or reroute to the covering recipients.
Nothing here awaits or reads a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime


class Priority(enum.IntEnum):
    """A message's priority, ordered (DEVICES.priority names these levels)."""

    NORMAL = 0
    IMPORTANT = 1
    URGENT = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, text: str | None) -> Priority:
        """A priority from its name in any case; anything unknown is Normal."""
        try:
            return cls[(text or "").strip().upper()]
        except KeyError:
            return cls.NORMAL


#: The lowest priority that reaches a busy user.
BREAKS_THROUGH = Priority.URGENT


class HoldReason(enum.StrEnum):
    """Why messages to a user are held."""

    URGENT_ALERT = "urgent-alert"
    DND = "dnd"


@dataclass(frozen=True, slots=True, kw_only=True)
class Busy:
    """What keeps one user busy.

    Attributes:
        urgent: Unanswered Urgent/Critical alerts as (alert id, expires at).
        dnd_until: The end of a timed Do Not Disturb, or None.
        is_presence_dnd: Every available resource of the user shows ``dnd``.
    """

    urgent: tuple[tuple[str, datetime], ...] = ()
    dnd_until: datetime | None = None
    is_presence_dnd: bool = False

    @property
    def is_idle(self) -> bool:
        """Nothing keeps the user busy (the state may be forgotten)."""
        return not self.urgent and self.dnd_until is None and not self.is_presence_dnd

    def with_alert(self, alert_id: str, expires_at: datetime) -> Busy:
        """The state with one more unanswered urgent alert."""
        kept = tuple(a for a in self.urgent if a[0] != alert_id)
        return replace(self, urgent=(*kept, (alert_id, expires_at)))

    def without_alert(self, alert_id: str) -> Busy:
        """The state once ``alert_id`` is answered."""
        return replace(self, urgent=tuple(a for a in self.urgent if a[0] != alert_id))


def prune(busy: Busy, now: datetime) -> Busy:
    """``busy`` without the alerts that expired and the timed DND that ended by ``now``."""
    urgent = tuple(a for a in busy.urgent if a[1] > now)
    dnd_until = busy.dnd_until if busy.dnd_until is not None and busy.dnd_until > now else None
    return replace(busy, urgent=urgent, dnd_until=dnd_until)


def hold_reason(busy: Busy | None, priority: Priority, now: datetime) -> HoldReason | None:
    """Why a message of ``priority`` must be held for a user in state ``busy`` (None: deliver)."""
    if busy is None or priority >= BREAKS_THROUGH:
        return None
    current = prune(busy, now)
    if current.urgent:
        return HoldReason.URGENT_ALERT
    if current.dnd_until is not None or current.is_presence_dnd:
        return HoldReason.DND
    return None


def next_change(busy: Busy) -> datetime | None:
    """When time alone next changes ``busy`` (an alert expires, a timed DND ends)."""
    times = [a[1] for a in busy.urgent]
    if busy.dnd_until is not None:
        times.append(busy.dnd_until)
    return min(times) if times else None


class Unreachable(enum.StrEnum):
    """Why a recipient cannot take a message now."""

    OFF_SHIFT = "off-shift"
    OFFLINE = "offline"
    OFF_SHIFT_OFFLINE = "off-shift-offline"

    @property
    def text(self) -> str:
        """For people."""
        return {
            Unreachable.OFF_SHIFT: "off shift",
            Unreachable.OFFLINE: "offline on every device",
            Unreachable.OFF_SHIFT_OFFLINE: "off shift and offline on every device",
        }[self]


def unreachable(*, is_on_shift: bool | None, is_online: bool) -> Unreachable | None:
    """Whether a recipient is reachable; ``is_on_shift`` None means shifts are not recorded."""
    off_shift = is_on_shift is False
    if off_shift and not is_online:
        return Unreachable.OFF_SHIFT_OFFLINE
    if off_shift:
        return Unreachable.OFF_SHIFT
    if not is_online:
        return Unreachable.OFFLINE
    return None


class CoverageMode(enum.StrEnum):
    """The rule's Coverage setting."""

    RECORD = "Record"
    REROUTE = "Reroute"


@dataclass(frozen=True, slots=True, kw_only=True)
class CoveragePlan:
    """Whom an alert notifies, and what coverage changed.

    Attributes:
        notify: Recipients to alert, in order.
        uncovered: Unreachable recipients, with why (alerted anyway under Record).
        covering: Covering recipients added (Reroute).
        is_without_cover: Reroute found no reachable covering recipient, so the
            unreachable recipients were alerted after all.
    """

    notify: tuple[str, ...]
    uncovered: tuple[tuple[str, Unreachable], ...] = ()
    covering: tuple[str, ...] = ()
    is_without_cover: bool = False

    @property
    def rerouted_from(self) -> tuple[str, ...]:
        """Unreachable recipients who are not alerted (their alert went to the cover)."""
        return tuple(r for r, _ in self.uncovered if r not in self.notify)


def plan_coverage(
    recipients: Sequence[str],
    reasons: Mapping[str, Unreachable],
    *,
    mode: CoverageMode,
    covering: Sequence[str] = (),
) -> CoveragePlan:
    """Decide an alert's recipients.

    Args:
        recipients: The rule's recipients, in order.
        reasons: Why each unreachable recipient (or covering candidate) is unreachable.
        mode: Record (alert everyone, note who is unreachable) or Reroute (alert
            the reachable covering recipients instead of the unreachable ones).
        covering: The covering candidates the rule names.

    An alert is never dropped: when Reroute finds no reachable cover, every
    recipient is alerted (offline ones find it when they connect).
    """
    uncovered = tuple((r, reasons[r]) for r in recipients if r in reasons)
    if mode is CoverageMode.RECORD or not uncovered:
        return CoveragePlan(notify=tuple(recipients), uncovered=uncovered)
    reachable = [r for r in recipients if r not in reasons]
    cover = tuple(c for c in dict.fromkeys(covering) if c not in reasons and c not in recipients)
    if not cover and not reachable:
        return CoveragePlan(notify=tuple(recipients), uncovered=uncovered, is_without_cover=True)
    return CoveragePlan(
        notify=(*reachable, *cover),
        uncovered=uncovered,
        covering=cover,
    )
