"""The assignment manager's settings (adapter interface properties, seed 003)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from carewire.adapters.assignments.queue import DEFAULT_DEPTH, DEFAULT_PER_MINUTE
from carewire.rules.settings import FieldKind, SettingField

DEFAULT_PREFIX: Final = "am-bed-"
DEFAULT_ADMITTED: Final = ("admitted",)

SETTINGS: Final = (
    SettingField(
        name="updates_per_minute",
        label="Updates per minute",
        kind=FieldKind.INTEGER,
        minimum=60,
        maximum=600_000,
        default=DEFAULT_PER_MINUTE,
        help="At most this many assignment updates a minute, applied each second "
        "(4000 a minute is 66 a second).",
    ),
    SettingField(
        name="queue_depth",
        label="Queue depth",
        kind=FieldKind.INTEGER,
        minimum=1,
        maximum=1_000_000,
        default=DEFAULT_DEPTH,
        help="At most this many updates wait; more are refused, audited and found again at the "
        "next catch-up.",
    ),
    SettingField(
        name="location_prefix",
        label="Location id prefix",
        default=DEFAULT_PREFIX,
        help="The prefix of the location ids made for beds (followed by the bed's record id).",
    ),
    SettingField(
        name="admitted_statuses",
        label="Admitted statuses",
        kind=FieldKind.LINES,
        default=list(DEFAULT_ADMITTED),
        help="PATIENTS.status values that mean admitted (any case); an empty status counts as "
        "admitted. Any other status ends the patient's assignments.",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerSettings:
    """The settings, typed.

    Attributes:
        per_minute: The rate limit.
        depth: The queue depth.
        prefix: The location id prefix.
        admitted: Lower-cased admitted statuses.
    """

    per_minute: int = DEFAULT_PER_MINUTE
    depth: int = DEFAULT_DEPTH
    prefix: str = DEFAULT_PREFIX
    admitted: frozenset[str] = frozenset(DEFAULT_ADMITTED)

    @classmethod
    def of(cls, settings: Mapping[str, object]) -> ManagerSettings:
        """From an instance's validated settings."""
        statuses = settings.get("admitted_statuses", DEFAULT_ADMITTED)
        lines = statuses if isinstance(statuses, Sequence) and not isinstance(statuses, str) else ()
        return cls(
            per_minute=_int(settings.get("updates_per_minute"), DEFAULT_PER_MINUTE),
            depth=_int(settings.get("queue_depth"), DEFAULT_DEPTH),
            prefix=str(settings.get("location_prefix") or DEFAULT_PREFIX),
            admitted=frozenset(str(s).strip().lower() for s in lines if str(s).strip()),
        )

    def is_admitted(self, status: object) -> bool:
        """Whether a PATIENTS.status means the patient is admitted."""
        text = str(status or "").strip().lower()
        return not text or text in self.admitted


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
