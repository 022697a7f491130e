"""Web console accounts, the data side: roles, records, errors, policy checks and the store shape.

The service that uses them is :mod:`carewire.security.console_auth`, which
re-exports every public name here; import them from there.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from carewire.errors import CarewireError, ValidationError
from carewire.security.audit import AuditEvent, Channel, Outcome

#: What the browser is told about any failed sign-in.
GENERIC_FAILURE = "Invalid username or password"
#: What the browser is told when the organisation's directory cannot check the password.
DIRECTORY_UNAVAILABLE = (
    "Your organization's directory cannot be reached to check your password. "
    "Try again in a few minutes."
)
#: Why a directory user cannot change their console password here.
DIRECTORY_PASSWORD_TEXT = (
    "You sign in with your organization's directory password: change it in the directory."
)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
TOKEN_BYTES = 32
FIRST_ADMIN = "admin"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$")


class Role(enum.StrEnum):
    """What a console user may do."""

    SYSTEM_ADMIN = "system-admin"
    ORG_ADMIN = "org-admin"
    AUDITOR = "auditor"

    @property
    def can_write(self) -> bool:
        """Whether the role may change settings (auditors only look)."""
        return self is not Role.AUDITOR

    @property
    def can_manage_users(self) -> bool:
        """Whether the role may create, unlock or reset console users."""
        return self is Role.SYSTEM_ADMIN


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutPolicy:
    """The security policy's lockout numbers (as :class:`carewire.core.auth.LockoutPolicy`)."""

    delay_after: int = 5
    delay: timedelta = timedelta(minutes=3)
    lock_after: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleConfig:
    """The console's settings (``[console]``) and where it is reached.

    Attributes:
        session_timeout: A session idle this long is ended.
        reset_link_ttl: How long a mailed reset link works.
        domain: The chat domain (names the first administrator's address).
        base_url: The console's address for links in mail (``https://host:port``);
            empty: ``https://<domain>``. Never taken from a request's Host header,
            which an attacker chooses.
    """

    session_timeout: timedelta = timedelta(minutes=20)
    reset_link_ttl: timedelta = timedelta(minutes=30)
    domain: str
    base_url: str = ""

    @property
    def link_base(self) -> str:
        """The scheme and authority reset links start with."""
        return (self.base_url or f"https://{self.domain}").rstrip("/")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleUser:
    """A console user, without the password hash."""

    id: int
    username: str
    email: str | None
    role: Role
    failed_logins: int = 0
    last_failed_at: datetime | None = None
    is_locked: bool = False
    must_change_password: bool = False
    created_at: datetime
    password_changed_at: datetime
    organisation_id: int | None = None  # the directory organisation an org admin administers


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSession:
    """A signed-in browser: its user and the session's CSRF token."""

    token_hash: str
    user: ConsoleUser
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    remote_ip: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetLink:
    """A stored password-reset link (by digest)."""

    user_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetRequest:
    """A reset link to mail: the user, the link itself and when it stops working."""

    user: ConsoleUser
    email: str
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Who acts and from where, for the audit trail (``cli``, ``console:alice``)."""

    actor: str
    channel: Channel
    remote_ip: str = ""


CLI = Origin(actor="cli", channel=Channel.CLI)
SYSTEM = Origin(actor="system", channel=Channel.SYSTEM)


class SignInError(CarewireError):
    """A sign-in failed; the message is always :data:`GENERIC_FAILURE`, ``reason`` says why."""

    code = "invalid-credentials"

    def __init__(self, reason: str) -> None:
        super().__init__(GENERIC_FAILURE)
        self.reason = reason


class DirectoryUnavailableError(SignInError):
    """The organisation's directory that checks this user's password cannot be reached.

    Unlike other sign-in failures the browser is told (the user can do nothing
    but wait), and it does not count toward the lockout.
    """

    code = "directory-unavailable"

    def __init__(self) -> None:
        CarewireError.__init__(self, DIRECTORY_UNAVAILABLE)
        self.reason = "directory-unavailable"


class DirectoryVerdict(enum.StrEnum):
    """The answer of a password check made by an organisation's directory (LDAP)."""

    OK = "ok"
    WRONG = "wrong"  # counts toward the lockout like any wrong password
    UNAVAILABLE = "unavailable"  # the directory cannot be reached: not counted


class DirectoryPasswords(Protocol):
    """Console users whose password their organisation's directory checks (docs/ldap.md).

    Bound by the composition root (LDAP sign-in); the console's accounts ask
    it before their own password hash.
    """

    async def is_external(self, user: ConsoleUser) -> bool:
        """Whether ``user`` signs in with their directory password."""

    async def check_password(self, user: ConsoleUser, password: str) -> DirectoryVerdict:
        """Check ``password`` against the directory (never logged)."""


class SessionExpired(CarewireError):
    """The session was idle longer than the timeout; it has been ended."""

    code = "session-expired"


class ResetLinkError(CarewireError):
    """The reset link is unknown, used or expired."""

    code = "invalid-reset-link"


class ConsoleStore(Protocol):
    """Where console users, sessions and reset links live (:mod:`carewire.storage.console`)."""

    async def add_user(
        self,
        *,
        username: str,
        email: str | None,
        password_hash: str,
        role: Role,
        must_change_password: bool,
        at: datetime,
        organisation_id: int | None = None,
    ) -> ConsoleUser:
        """Save a new user. Raises ConflictError when the username or e-mail is taken."""

    async def remove_user(self, username: str) -> bool:
        """Delete a user with its sessions and reset links; whether it existed."""

    async def rename_user(self, username: str, *, new_username: str, email: str | None) -> bool:
        """Change a user's username and e-mail; whether it existed.

        Raises:
            ConflictError: The new username or e-mail is taken.
        """

    async def count_users(self) -> int:
        """How many console users exist."""

    async def list_users(self) -> list[ConsoleUser]:
        """Every user, by username."""

    async def find(self, login: str) -> tuple[ConsoleUser, str] | None:
        """The user whose username or e-mail is ``login``, and the password hash."""

    async def record_failure(self, user_id: int, at: datetime, *, lock_after: int) -> ConsoleUser:
        """Count one failed sign-in; lock the account at ``lock_after`` failures."""

    async def reset_failures(self, user_id: int) -> None:
        """Clear the failure counter."""

    async def set_password(
        self, user_id: int, password_hash: str, *, at: datetime, must_change: bool
    ) -> None:
        """Replace the password hash."""

    async def unlock(self, username: str) -> ConsoleUser | None:
        """Unlock and clear the failures; None if no such user."""

    async def add_session(
        self, *, token_hash: str, user_id: int, csrf_token: str, at: datetime, remote_ip: str
    ) -> None:
        """Save a new session."""

    async def get_session(self, token_hash: str) -> ConsoleSession | None:
        """The session and its user."""

    async def touch_session(self, token_hash: str, at: datetime) -> None:
        """Set the session's ``last_seen_at``."""

    async def delete_session(self, token_hash: str) -> bool:
        """End one session; whether it existed."""

    async def delete_sessions(self, user_id: int, *, keep: str | None = None) -> int:
        """End the user's sessions (but ``keep``); how many."""

    async def add_reset(
        self, *, token_hash: str, user_id: int, at: datetime, expires_at: datetime
    ) -> None:
        """Save a reset link."""

    async def get_reset(self, token_hash: str) -> ResetLink | None:
        """A reset link by digest."""

    async def complete_reset(
        self, token_hash: str, *, password_hash: str, at: datetime
    ) -> ConsoleUser | None:
        """In one transaction: use a valid link, set the password, end every session.

        Returns None (and changes nothing) when the link is unknown, used or expired.
        """


def digest(token: str) -> str:
    """The SHA-256 hex digest stored for a session or reset token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def console_event(
    origin: Origin, action: str, target: str, outcome: Outcome, details: Mapping[str, object]
) -> AuditEvent:
    """The audit event of a console act by ``origin`` (its actor cut to 200 characters)."""
    return AuditEvent(
        actor=origin.actor[:200],
        channel=origin.channel,
        action=action,
        target=target,
        outcome=outcome,
        remote_ip=origin.remote_ip,
        details=details,
    )


def shares_chat_account(user: ConsoleUser, domain: str) -> bool:
    """Whether ``user`` is the chat account of the same name: their e-mail is its address.

    ``carewire init`` makes the first administrator so (``admin`` and
    ``admin@DOMAIN``): one name and one password for the console and for chat.
    A console user who merely shares a name with a chat account is not linked.
    """
    return "@" not in user.username and user.email == f"{user.username}@{domain}"


def check_password(password: str) -> None:
    """Check the password policy: at least 12 characters.

    Raises:
        ValidationError: It is too short or too long.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"A password has at most {MAX_PASSWORD_LENGTH} characters.")


def normalize_username(username: str) -> str:
    """The stored form of a username (lowercase), checked.

    A username is 1–64 of a–z, 0–9, '.', '_', '-' starting with a letter or
    digit, or an e-mail address of at most 200 characters (organisation
    administrators sign in with their e-mail address).

    Raises:
        ValidationError: It is neither.
    """
    name = username.strip().lower()
    if "@" in name and len(name) <= 200 and _EMAIL.match(name):
        return name
    if not _USERNAME.match(name):
        raise ValidationError(
            "A username has 1–64 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return name


def normalize_email(email: str) -> str:
    """The stored form of an e-mail address (lowercase), checked."""
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise ValidationError(f"{email!r} is not an e-mail address.")
    return value


def is_delayed(user: ConsoleUser, now: datetime, policy: LockoutPolicy) -> bool:
    """Whether the user must still wait before the next attempt."""
    return (
        user.failed_logins >= policy.delay_after
        and user.last_failed_at is not None
        and now - user.last_failed_at < policy.delay
    )


def console_origin(username: str, remote_ip: str) -> Origin:
    """Who acts when a console user does: ``console:<username>`` from ``remote_ip``."""
    return Origin(actor=f"console:{username}", channel=Channel.CONSOLE, remote_ip=remote_ip)
