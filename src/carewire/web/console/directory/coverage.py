"""The Coverage panel of Update User Profile: busy state, held messages, Release now.

Interruption control (docs/coverage.md) holds a busy clinician's routine
messages; this panel shows an administrator why the user is busy, until
when, and what is held for them by sender, time and reason. Message bodies
are clinical content and never reach the page. Release now (writers only,
with the session's CSRF token) goes through the coverage desk, which
delivers at once in the server's process and records ``coverage.release``;
the POST itself is :func:`carewire.web.console.directory.user_actions.release_held`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from carewire.errors import NotFoundError
from carewire.features.coverage.desk import BusyStatus, CoverageDesk, Released
from carewire.security.audit import Channel
from carewire.web.console.directory.common import OrgPage, services, when

#: The banners after Release now (``?m=``), beside the profile's own.
NOTICES = {
    "released": "The held messages were delivered to the user's devices.",
    "release-waiting": "No client of the user is online: the held messages go at their next "
    "connection.",
    "release-requested": "Release requested: the running server delivers the held messages "
    "within 15 seconds.",
    "nothing-held": "Nothing is held for this user.",
}

_REASONS = {"urgent-alert": "handling an urgent alert", "dnd": "Do Not Disturb"}


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldRow:
    """One held message as the panel lists it: never its content."""

    sender: str
    held_at: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoveragePanel:
    """What the Coverage panel shows.

    Attributes:
        has_account: The user has a chat account (else nothing can be held).
        is_busy: Routine traffic to the user is held now.
        reason: Why, for people ("Do Not Disturb", "handling an urgent alert").
        until: When time alone ends it, formatted ("" when it does not).
        note: The reason the user gave for a timed Do Not Disturb.
        urgent_alerts: Unanswered Urgent or Critical alerts.
        held: The held messages, oldest first.
        is_live: Read from the running server (else from the database).
    """

    has_account: bool
    is_busy: bool = False
    reason: str = ""
    until: str = ""
    note: str = ""
    urgent_alerts: int = 0
    held: tuple[HeldRow, ...] = ()
    is_live: bool = True


def desk(request: Request) -> CoverageDesk | None:
    """The coverage desk (None in a console built without it)."""
    return services(request).coverage


def _panel_of(status: BusyStatus) -> CoveragePanel:
    return CoveragePanel(
        has_account=True,
        is_busy=status.is_busy,
        reason=_REASONS.get(status.reason, status.reason),
        until=when(status.until),
        note=status.note,
        urgent_alerts=status.urgent_alerts,
        held=tuple(
            HeldRow(
                sender=h.sender or "unknown",
                held_at=when(h.held_at),
                reason=_REASONS.get(h.reason, h.reason),
            )
            for h in status.held
        ),
        is_live=status.is_live,
    )


async def panel(request: Request, login: str) -> CoveragePanel | None:
    """The panel of ``login`` (already scoped by the caller), or None without a desk."""
    found = desk(request)
    if found is None:
        return None
    try:
        return _panel_of(await found.status(login))
    except NotFoundError:
        return CoveragePanel(has_account=False)


def notice_of(done: Released) -> str:
    """The ``?m=`` code of what Release now did."""
    if done.is_requested:
        return "release-requested"
    if done.is_waiting:
        return "release-waiting"
    return "released" if done.delivered else "nothing-held"


async def release(where: OrgPage, found: CoverageDesk, login: str) -> str:
    """Release what is held for ``login`` now, audited as the console user; the ``?m=`` code."""
    done = await found.release(login, actor=where.caller.actor, channel=Channel.CONSOLE)
    return notice_of(done)
