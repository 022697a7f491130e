"""The dashboard's live view of the system: people online, alerts, latency, certificate, health.

Shown to the console users who administer the whole installation (not to an
organisation administrator). The figures come from the running server's
monitoring (:mod:`carewire.monitoring.service`); ``/dashboard/status`` serves
the section alone, which ``console.js`` fetches every few seconds to replace
it in place (not counted as activity: the session still times out).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from carewire.monitoring.model import SystemStatus
from carewire.security.console_auth import ConsoleUser
from carewire.web.console.auth import ANY_ROLE, require_role
from carewire.web.console.render import render

#: Seconds between refreshes of the section.
REFRESH_SECONDS = 10
#: Open alerts listed by age (the oldest first); the rest are counted.
SHOWN_ALERTS = 10


def can_see(user: ConsoleUser) -> bool:
    """Whether ``user`` sees the system's figures (not an organisation's administrator)."""
    return user.role != "org-admin" and user.organisation_id is None


async def view(request: Request, user: ConsoleUser) -> dict[str, Any] | None:
    """The template values of the system section, or None when it is not shown."""
    source = request.app.state.services.status
    if source is None or not can_see(user):
        return None
    return present(await source())


async def status_panel(request: Request) -> Response:
    """GET /dashboard/status: the system section alone (a background refresh)."""
    signed_in = await require_role(request, *ANY_ROLE, is_activity=False)
    system = await view(request, signed_in.user)
    if system is None:
        return Response(status_code=404)
    return render(request, "_system.html", title="System", signed_in=signed_in, system=system)


def present(status: SystemStatus) -> dict[str, Any]:
    """Words and numbers for the template (ages, milliseconds, the objective's verdict)."""
    lat = status.latency
    verdict = {None: "no alert measured yet", True: "within objective", False: "above objective"}
    return {
        "status": status,
        "at": f"{status.at:%Y-%m-%d %H:%M:%S} UTC",
        "refresh_seconds": REFRESH_SECONDS,
        "alert_ages": [age_text(a) for a in status.open_alerts[:SHOWN_ALERTS]],
        "more_alerts": max(0, len(status.open_alerts) - SHOWN_ALERTS),
        "oldest_alert": age_text(status.open_alerts[0]) if status.open_alerts else "",
        "p50": ms_text(lat.p50),
        "p99": ms_text(lat.p99),
        "objective": ms_text(lat.objective),
        "verdict": verdict[lat.is_met],
        "verdict_class": {None: "", True: "good", False: "expired"}[lat.is_met],
        "cert_expires": f"{status.certificate_expires:%Y-%m-%d}",
        "cert_days": (status.certificate_expires - status.at).days,
    }


def ms_text(seconds: float | None) -> str:
    """``"250 ms"``, ``"1.5 s"``; an em dash when there is nothing."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def age_text(age: timedelta) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 5 min"``."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
