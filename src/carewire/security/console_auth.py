"""Web console accounts: argon2id passwords, lockout, idle-limited sessions and reset links.

Theory of operation. A console user signs in with a username or e-mail and a
password (argon2id, RFC 9106). The lockout follows the account security
policy (the same as the XMPP login): "If a user fails to log into the client
after 10 successive attempts, [the system] locks the user account. After the
5th failure, the system also enforces a three-minute wait between each
successive login attempt." Attempts refused during the wait are audited but
not counted. The browser always hears the same "Invalid username or
password", whatever went wrong; only the audit trail says why.

Administrators of an organisation that signs in by LDAP give their directory
password (:attr:`ConsoleAccounts.external`, docs/ldap.md), with the same
lockout; only an unreachable directory is told apart, and does not count.

A session is a random 32-byte token (the browser's cookie); the store keeps
its SHA-256 only, as for API tokens (see :mod:`carewire.security.tokens`
for why a fast hash suffices for 256-bit secrets). The policy: "the
application will log you out automatically after 20 minutes of inactivity"
— a session idle longer than the timeout is ended by the next request that
presents it. Password-reset links are single-use tokens of the same kind,
valid for a limited time; completing one ends every session of the user.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from carewire.clock import Clock
from carewire.errors import ConflictError, NotFoundError, ValidationError
from carewire.security.audit import AuditTrail, Channel, Outcome
from carewire.security.console_model import (
    CLI,
    DIRECTORY_PASSWORD_TEXT,
    FIRST_ADMIN,
    SYSTEM,
    TOKEN_BYTES,
    ConsoleConfig,
    ConsoleSession,
    ConsoleStore,
    ConsoleUser,
    DirectoryPasswords,
    DirectoryUnavailableError,
    DirectoryVerdict,
    LockoutPolicy,
    Origin,
    ResetLinkError,
    ResetRequest,
    Role,
    SessionExpired,
    SignInError,
    check_password,
    console_event,
    console_origin,
    digest,
    is_delayed,
    normalize_email,
    normalize_username,
)
from carewire.security.throttle import AuthThrottle

__all__ = [
    "CLI",
    "DIRECTORY_PASSWORD_TEXT",
    "FIRST_ADMIN",
    "SYSTEM",
    "ConsoleAccounts",
    "ConsoleConfig",
    "ConsoleSession",
    "ConsoleStore",
    "ConsoleUser",
    "DirectoryPasswords",
    "DirectoryUnavailableError",
    "DirectoryVerdict",
    "LockoutPolicy",
    "Origin",
    "ResetLinkError",
    "ResetRequest",
    "Role",
    "SessionExpired",
    "SignInError",
    "check_password",
    "digest",
    "normalize_email",
    "normalize_username",
]

log = logging.getLogger(__name__)


class ConsoleAccounts:
    """Console users, sign-in, sessions and password resets; records each in the audit trail."""

    def __init__(
        self,
        store: ConsoleStore,
        clock: Clock,
        audit: AuditTrail,
        *,
        hasher: PasswordHasher | None = None,
        policy: LockoutPolicy | None = None,
        throttle: AuthThrottle | None = None,
    ) -> None:
        """Keep users in ``store``; ``hasher`` defaults to argon2id's recommended costs.

        ``throttle`` counts failed sign-ins per address (with the XMPP and API
        ones) and refuses addresses over its limit.
        """
        self._store = store
        self._clock = clock
        self._audit = audit
        self._hasher = hasher or PasswordHasher()
        self.policy = policy or LockoutPolicy()
        self.throttle = throttle
        #: Told when a user becomes locked: (username, "console", address, failures).
        self.on_locked: Callable[[str, str, str, int], Awaitable[None]] | None = None
        #: Whose password an organisation's directory checks (None: every one is ours).
        self.external: DirectoryPasswords | None = None
        #: Told of a password a user set themselves: (user, new password); see the assembly.
        self.on_password_set: Callable[[ConsoleUser, str], Awaitable[None]] | None = None
        self._dummy_hash: str | None = None

    # -- passwords ---------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        """The argon2id hash of ``password`` (computed off the event loop)."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _burn(self, password: str) -> None:
        """Spend what a verification costs, so unknown users answer as slowly as known ones."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash_password(secrets.token_urlsafe(16))
        await self._verify(self._dummy_hash, password)

    # -- users -------------------------------------------------------------------

    async def create_user(
        self,
        username: str,
        role: Role,
        *,
        email: str | None = None,
        password: str | None = None,
        origin: Origin = CLI,
        organisation_id: int | None = None,
    ) -> tuple[ConsoleUser, str | None]:
        """Create a user; without ``password`` a one-time one is generated and returned.

        A generated password must be changed at the first sign-in. An
        organisation administrator names their directory organisation.

        Raises:
            ValidationError: A bad username, e-mail or password.
            ConflictError: The username or e-mail is taken.
        """
        name = normalize_username(username)
        mail = normalize_email(email) if email else None
        generated = password is None
        plain = secrets.token_urlsafe(12) if password is None else password
        check_password(plain)
        user = await self._store.add_user(
            username=name,
            email=mail,
            password_hash=await self.hash_password(plain),
            role=Role(role),
            must_change_password=generated,
            at=self._clock.now(),
            organisation_id=organisation_id,
        )
        await self._record(origin, "console.user.create", name, role=user.role.value)
        return user, plain if generated else None

    async def add_hashed_user(
        self,
        username: str,
        role: Role,
        *,
        email: str | None,
        password_hash: str,
        must_change_password: bool,
        organisation_id: int | None = None,
        origin: Origin = CLI,
    ) -> ConsoleUser:
        """Create a user whose password was hashed already (:meth:`hash_password`).

        For callers that write the user inside their own transaction (the
        directory's registration): the slow hash is done before it opens.

        Raises:
            ValidationError: A bad username or e-mail.
            ConflictError: The username or e-mail is taken.
        """
        name = normalize_username(username)
        user = await self._store.add_user(
            username=name,
            email=normalize_email(email) if email else None,
            password_hash=password_hash,
            role=Role(role),
            must_change_password=must_change_password,
            at=self._clock.now(),
            organisation_id=organisation_id,
        )
        await self._record(origin, "console.user.create", name, role=user.role.value)
        return user

    async def set_password_hash(
        self, username: str, password_hash: str, *, must_change: bool, origin: Origin = CLI
    ) -> bool:
        """Replace a user's password with one hashed already (:meth:`hash_password`).

        Their sessions end. Returns False when there is no such user.
        """
        found = await self._store.find(username.strip().lower())
        if found is None:
            return False
        user = found[0]
        await self._store.set_password(
            user.id, password_hash, at=self._clock.now(), must_change=must_change
        )
        await self._store.delete_sessions(user.id)
        await self._record(origin, "console.user.passwd", user.username)
        return True

    async def remove_user(self, username: str, *, origin: Origin = CLI) -> bool:
        """Delete a user (their sessions end); whether there was one."""
        name = username.strip().lower()
        removed = await self._store.remove_user(name)
        if removed:
            await self._record(origin, "console.user.remove", name)
        return removed

    async def rename_user(
        self, username: str, new_username: str, *, email: str | None, origin: Origin = CLI
    ) -> bool:
        """Change a user's username and e-mail (an administrator's address changed).

        Raises:
            ValidationError: A bad username or e-mail.
            ConflictError: The new username or e-mail is taken.
        """
        name = normalize_username(new_username)
        mail = normalize_email(email) if email else None
        done = await self._store.rename_user(
            username.strip().lower(), new_username=name, email=mail
        )
        if done:
            await self._record(origin, "console.user.rename", name, previous=username)
        return done

    async def ensure_first_admin(self, domain: str) -> str | None:
        """On an installation without console users, create ``admin``; return its password.

        The password is random, shown once, and must be changed at the first sign-in.
        """
        if await self._store.count_users():
            return None
        try:
            _, password = await self.create_user(
                FIRST_ADMIN, Role.SYSTEM_ADMIN, email=f"admin@{domain}", origin=SYSTEM
            )
        except ConflictError:  # another process created it first
            return None
        return password

    async def list_users(self) -> list[ConsoleUser]:
        """Every console user, by username."""
        return await self._store.list_users()

    async def unlock(self, username: str, *, origin: Origin = CLI) -> ConsoleUser:
        """Unlock a user and clear its failure count.

        Raises:
            NotFoundError: No such user.
        """
        user = await self._store.unlock(normalize_username(username))
        if user is None:
            raise NotFoundError(f"no console user named {username!r}", code="unknown-user")
        await self._record(origin, "console.user.unlock", user.username)
        return user

    async def reset_password(self, username: str, *, origin: Origin = CLI) -> str:
        """Give a user a new one-time password (to change at sign-in); end its sessions.

        Raises:
            NotFoundError: No such user.
        """
        found = await self._store.find(normalize_username(username))
        if found is None:
            raise NotFoundError(f"no console user named {username!r}", code="unknown-user")
        user = found[0]
        password = secrets.token_urlsafe(12)
        await self._store.set_password(
            user.id, await self.hash_password(password), at=self._clock.now(), must_change=True
        )
        await self._store.delete_sessions(user.id)
        await self._record(origin, "console.user.passwd", user.username)
        return password

    # -- signing in and out ------------------------------------------------------

    async def sign_in(
        self, login: str, password: str, *, remote_ip: str = ""
    ) -> tuple[ConsoleSession, str]:
        """Check the credentials under the lockout policy and open a session.

        Returns:
            (the session, its token for the cookie: never stored, never logged).

        Raises:
            SignInError: Always with the same message; ``reason`` is for tests and the audit.
        """
        key = login.strip().lower()
        if self.throttle is not None and not await self.throttle.admit(remote_ip, Channel.CONSOLE):
            await self._burn(password)  # counted by the throttle, not audited one by one
            raise SignInError("throttled")
        found = await self._store.find(key) if key else None
        now = self._clock.now()
        if found is None:
            await self._burn(password)
            await self._fail(key, remote_ip, "unknown-user")
        user, password_hash = found
        if user.is_locked:
            await self._burn(password)
            await self._fail(user.username, remote_ip, "locked")
        if is_delayed(user, now, self.policy):
            await self._burn(password)
            await self._fail(user.username, remote_ip, "delayed")
        is_external = await self.is_external(user)
        if not await self._password_ok(
            user, password_hash, password, is_external=is_external, remote_ip=remote_ip
        ):
            after = await self._store.record_failure(
                user.id, now, lock_after=self.policy.lock_after
            )
            if after.is_locked and after.failed_logins == self.policy.lock_after:
                log.warning("console user locked after %d failed sign-ins", after.failed_logins)
                if self.on_locked is not None:
                    await self.on_locked(user.username, "console", remote_ip, after.failed_logins)
            await self._fail(
                user.username,
                remote_ip,
                "wrong-password",
                after.failed_logins,
                method="directory" if is_external else "",
            )
        if user.failed_logins:
            await self._store.reset_failures(user.id)
        await self._after_check(user, password_hash, password, is_external=is_external)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = ConsoleSession(
            token_hash=digest(token),
            user=replace(
                user,
                failed_logins=0,
                must_change_password=user.must_change_password and not is_external,
            ),
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
            created_at=now,
            last_seen_at=now,
            remote_ip=remote_ip,
        )
        await self._store.add_session(
            token_hash=session.token_hash,
            user_id=user.id,
            csrf_token=session.csrf_token,
            at=now,
            remote_ip=remote_ip[:64],
        )
        details: dict[str, object] = {"method": "directory"} if is_external else {}
        await self._record(
            console_origin(user.username, remote_ip),
            "login",
            user.username,
            Outcome.SUCCESS,
            **details,
        )
        return session, token

    async def is_external(self, user: ConsoleUser) -> bool:
        """Whether ``user``'s password is their organisation's directory password."""
        return self.external is not None and await self.external.is_external(user)

    async def _password_ok(
        self,
        user: ConsoleUser,
        password_hash: str,
        password: str,
        *,
        is_external: bool,
        remote_ip: str,
    ) -> bool:
        """Check the password here or in the directory.

        Raises:
            DirectoryUnavailableError: The directory cannot be reached (audited, not counted).
        """
        if not is_external:
            return await self._verify(password_hash, password)
        assert self.external is not None
        verdict = await self.external.check_password(user, password)
        if verdict is DirectoryVerdict.UNAVAILABLE:
            await self._record(
                console_origin(user.username, remote_ip),
                "login",
                user.username,
                Outcome.FAILURE,
                reason="directory-unavailable",
                method="directory",
            )
            raise DirectoryUnavailableError()
        return verdict is DirectoryVerdict.OK

    async def _after_check(
        self, user: ConsoleUser, password_hash: str, password: str, *, is_external: bool
    ) -> None:
        """Rehash an old local hash; a directory user has no password here to change."""
        if is_external:
            if user.must_change_password:
                await self._store.set_password(
                    user.id, password_hash, at=user.password_changed_at, must_change=False
                )
            return
        if self._hasher.check_needs_rehash(password_hash):
            await self._store.set_password(
                user.id,
                await self.hash_password(password),
                at=user.password_changed_at,
                must_change=user.must_change_password,
            )

    async def _fail(
        self, username: str, remote_ip: str, reason: str, failures: int = 0, *, method: str = ""
    ) -> NoReturn:
        given = {"reason": reason, "failed_logins": failures, "method": method}
        details: dict[str, object] = {k: v for k, v in given.items() if v}  # as they apply
        if self.throttle is not None:
            await self.throttle.failed(remote_ip, Channel.CONSOLE)
        await self._record(
            console_origin(username, remote_ip), "login", username, Outcome.FAILURE, **details
        )
        raise SignInError(reason)

    async def session(
        self, token: str, *, timeout: timedelta, remote_ip: str = "", is_activity: bool = True
    ) -> ConsoleSession | None:
        """The live session the cookie ``token`` names (None if none); notes the activity.

        A page's background refresh (``is_activity`` False) reads the session
        without keeping it alive: the inactivity timeout still ends it.

        Raises:
            SessionExpired: It was idle longer than ``timeout``; it has now been ended.
        """
        if not token or len(token) > 128:
            return None
        session = await self._store.get_session(digest(token))
        if session is None:
            return None
        now = self._clock.now()
        if now - session.last_seen_at > timeout:
            await self._store.delete_session(session.token_hash)
            await self._record(
                console_origin(session.user.username, remote_ip),
                "logout",
                session.user.username,
                reason="inactivity",
                idle_seconds=int((now - session.last_seen_at).total_seconds()),
            )
            raise SessionExpired("the session was idle too long")
        if not is_activity:
            return session
        await self._store.touch_session(session.token_hash, now)
        return replace(session, last_seen_at=now)

    async def sign_out(self, session: ConsoleSession, *, remote_ip: str = "") -> None:
        """End ``session``."""
        if await self._store.delete_session(session.token_hash):
            username = session.user.username
            await self._record(console_origin(username, remote_ip), "logout", username)

    async def change_password(
        self, session: ConsoleSession, current: str, new: str, *, remote_ip: str = ""
    ) -> None:
        """Change the signed-in user's own password; ends the user's other sessions.

        Raises:
            ValidationError: ``current`` is wrong, or ``new`` breaks the policy or is the same,
                or the user's password is their directory's.
        """
        if await self.is_external(session.user):
            raise ValidationError(DIRECTORY_PASSWORD_TEXT)
        check_password(new)
        found = await self._store.find(session.user.username)
        if found is None or not await self._verify(found[1], current):
            raise ValidationError("The current password is not correct.")
        if current == new:
            raise ValidationError("The new password must differ from the current one.")
        user = found[0]
        await self._store.set_password(
            user.id, await self.hash_password(new), at=self._clock.now(), must_change=False
        )
        await self._store.delete_sessions(user.id, keep=session.token_hash)
        await self._record(
            console_origin(user.username, remote_ip), "password.change", user.username
        )
        if self.on_password_set is not None:
            await self.on_password_set(user, new)

    # -- password resets ---------------------------------------------------------

    async def request_reset(
        self, login: str, *, config: ConsoleConfig, remote_ip: str = ""
    ) -> ResetRequest | None:
        """Make a single-use reset link for the user named ``login`` (username or e-mail).

        Returns None when there is nobody to mail (unknown user, no e-mail);
        the caller answers the same either way.
        """
        key = login.strip().lower()
        found = await self._store.find(key) if key else None
        origin = console_origin(found[0].username if found else key, remote_ip)
        if found is None or not found[0].email:
            reason = "unknown-user" if found is None else "no-email"
            target = key[:200]
            await self._record(
                origin, "password.reset.request", target, Outcome.FAILURE, reason=reason
            )
            return None
        user = found[0]
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock.now()
        expires = now + config.reset_link_ttl
        await self._store.add_reset(
            token_hash=digest(token), user_id=user.id, at=now, expires_at=expires
        )
        await self._record(origin, "password.reset.request", user.username)
        assert user.email is not None
        return ResetRequest(
            user=user, email=user.email, url=f"{config.link_base}/reset/{token}", expires_at=expires
        )

    async def check_reset(self, token: str) -> None:
        """Check a reset link before showing its form.

        Raises:
            ResetLinkError: Unknown, used or expired.
        """
        link = await self._store.get_reset(digest(token)) if 0 < len(token) <= 128 else None
        if link is None or link.used_at is not None or link.expires_at <= self._clock.now():
            raise ResetLinkError("This link is not valid any more.")

    async def complete_reset(self, token: str, new: str, *, remote_ip: str = "") -> ConsoleUser:
        """Set a new password through a reset link: uses it up and ends every session.

        Raises:
            ValidationError: The password breaks the policy (the link stays usable).
            ResetLinkError: Unknown, used or expired.
        """
        check_password(new)
        await self.check_reset(token)
        user = await self._store.complete_reset(
            digest(token), password_hash=await self.hash_password(new), at=self._clock.now()
        )
        if user is None:  # used or expired meanwhile
            raise ResetLinkError("This link is not valid any more.")
        await self._record(
            console_origin(user.username, remote_ip), "password.reset.complete", user.username
        )
        if self.on_password_set is not None:
            await self.on_password_set(user, new)
        return user

    async def _record(
        self,
        origin: Origin,
        action: str,
        target: str,
        outcome: Outcome = Outcome.SUCCESS,
        **details: object,
    ) -> None:
        await self._audit.record(console_event(origin, action, target, outcome, details))
