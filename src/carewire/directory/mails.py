"""The directory's e-mails: user and administrator invitations, affiliation invitations, PINs.

The affiliation invitation is the seed's text word for word (docs/directory.md);
the others follow its tone. Bodies hold one-time links: never log them.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from carewire.directory.model import PRODUCT


@dataclass(frozen=True, slots=True, kw_only=True)
class Mail:
    """A message to send."""

    to: str
    subject: str
    body: str


def expiry_text(at: datetime, tz_name: str) -> str:
    """ "Sunday, Oct 16 2016 at 11:00 AM PDT": ``at`` in the zone ``tz_name``."""
    try:
        local = at.astimezone(zoneinfo.ZoneInfo(tz_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        local = at
    hour = local.hour % 12 or 12
    return (
        f"{local:%A}, {local:%b} {local.day} {local.year} at "
        f"{hour}:{local:%M} {local:%p} {local.tzname() or 'UTC'}"
    )


def user_invitation(
    *,
    to: str,
    first_name: str,
    organisation: str,
    url: str,
    expires: str,
    is_admin: bool,
) -> Mail:
    """The invitation to register (as a user, or as an administrator of the organisation)."""
    greeting = f"Hello {first_name},\n\n" if first_name else ""
    role = (
        f"register for a {PRODUCT} profile and become an administrator of {organisation}"
        if is_admin
        else f"register for a {PRODUCT} profile"
    )
    body = (
        f"{greeting}{organisation} has invited you to {role}. When you sign up, you will be "
        f"automatically added to {organisation}.\n\n"
        "To register, click here or navigate a web browser to:\n\n"
        f"{url}\n\n"
        f"This link will expire on {expires}.\n\n"
        "If you did not expect this invitation, you can ignore this e-mail.\n"
    )
    return Mail(to=to, subject=f"You're invited to join {organisation} on {PRODUCT}", body=body)


def affiliation_invitation(
    *, to: str, inviter_name: str, inviter_org: str, url: str, expires: str
) -> Mail:
    """The affiliation invitation, to each administrator of the invited organisation."""
    body = (
        f"{inviter_name} with {inviter_org} has invited your organization to join their "
        f"{PRODUCT} network. This will allow all their users to communicate with your "
        "organization.\n\n"
        f"If you are one of your organization's {PRODUCT} administrators, click here to accept "
        "or navigate a web browser to:\n\n"
        f"{url}\n\n"
        f"This link will expire on {expires}.\n\n"
        f"If your organization uses {PRODUCT} but you are not an administrator, please forward "
        f"this e-mail to one of your organization's {PRODUCT} administrators.\n"
    )
    return Mail(to=to, subject=f"Invitation to join {inviter_org}'s {PRODUCT} network", body=body)


def pin_reset(*, to: str, first_name: str, url: str, expires: str, pin_length: int) -> Mail:
    """The Reset PIN link."""
    body = (
        f"Hello {first_name},\n\n"
        f"Your administrator asked us to send you a link to choose a new {PRODUCT} PIN. "
        f"Click here or navigate a web browser to:\n\n{url}\n\n"
        f"The page asks for your new {pin_length}-digit PIN twice. This link works once and "
        f"will expire on {expires}. Afterwards, sign in on your device with the new PIN.\n"
    )
    return Mail(to=to, subject=f"Reset your {PRODUCT} PIN", body=body)


def pin_changed(*, to: str, first_name: str, when: str) -> Mail:
    """The confirmation after a PIN reset."""
    body = (
        f"Hello {first_name},\n\n"
        f"Your {PRODUCT} PIN was changed on {when}. If this wasn't you, contact your "
        "administrator.\n"
    )
    return Mail(to=to, subject=f"Your {PRODUCT} PIN was changed", body=body)


def admin_granted(*, to: str, first_name: str, organisation: str, url: str, expires: str) -> Mail:
    """A user was made administrator: the link to set their console password."""
    body = (
        f"Hello {first_name},\n\n"
        f"You are now a {PRODUCT} administrator of {organisation}. Your user name for the "
        f"administration console is {to}. To choose your console password, click here or "
        f"navigate a web browser to:\n\n{url}\n\n"
        f"This link works once and will expire on {expires}.\n"
    )
    return Mail(
        to=to, subject=f"You are now a {PRODUCT} administrator of {organisation}", body=body
    )
