"""What every facet of the directory service shares: its collaborators and common steps.

Scoping, the write check, audit events, notifications and mail are done
here once, so each facet reads as its operation. Audit events of a change
are recorded inside the change's transaction (they commit together);
notifications run after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from carewire.clock import Clock
from carewire.core.accounts import AccountService
from carewire.datasets.service import DatasetService
from carewire.directory.index import DirectoryIndex
from carewire.directory.mails import Mail
from carewire.directory.model import (
    Caller,
    DirectoryConfig,
    DirectoryEvent,
    DirectoryUser,
    Organisation,
    ReadOnlyError,
    UnknownOrganisationError,
    UnknownUserError,
)
from carewire.directory.store import DirectoryStore
from carewire.mail import Mailer, MailError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.console_auth import ConsoleAccounts, digest

log = logging.getLogger(__name__)

#: Random bytes of mailed tokens (256 bits); affiliation links use 16 (the seed's 22 characters).
TOKEN_BYTES = 32

#: Receives every directory change after it committed.
Listener = Callable[[DirectoryEvent], Awaitable[None]]
#: The profile fields of a user that an identity integration fills (read-only here).
ManagedFields = Callable[[str], Awaitable[frozenset[str]]]


class JobQueue:
    """Runs jobs one after another in a task it owns (invitation mail, off the request).

    Theory of operation: :meth:`submit` queues a job and returns a future of
    its result; one worker task, started at the first job, runs them in
    order. A failed job sets its future's exception and is logged; the
    others still run. :meth:`drain` waits for everything queued so far;
    :meth:`close` drains and stops the worker (the assembly does it at exit).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Callable[[], Awaitable[object]], asyncio.Future[object]]]
        self._queue = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._pending = 0

    @property
    def pending(self) -> int:
        """Jobs submitted that have not finished yet (the one running included)."""
        return self._pending

    def submit(self, job: Callable[[], Awaitable[object]]) -> asyncio.Future[object]:
        """Queue ``job``; the future completes with its result once it ran."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._queue.put_nowait((job, future))
        self._pending += 1
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name="directory-jobs")
        return future

    async def _run(self) -> None:
        while True:
            job, future = await self._queue.get()
            try:
                result = await job()
            except Exception as exc:  # supervisor: one failed job must not stop the others
                log.exception("a directory job failed")
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a caller who does not wait is fine
            else:
                if not future.done():
                    future.set_result(result)
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def drain(self) -> None:
        """Return once every job submitted so far has run."""
        await self._queue.join()

    async def close(self) -> None:
        """Drain, then stop the worker."""
        await self.drain()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


@dataclass(slots=True, kw_only=True)
class Context:
    """The directory service's collaborators, shared by its facets."""

    store: DirectoryStore
    accounts: AccountService
    datasets: DatasetService
    console: ConsoleAccounts
    audit: AuditTrail
    mailer: Mailer
    clock: Clock
    config: DirectoryConfig
    index: DirectoryIndex
    pin_hasher: PasswordHasher
    listeners: list[Listener] = field(default_factory=list)
    jobs: JobQueue = field(default_factory=JobQueue)
    managed: list[ManagedFields] = field(default_factory=list)

    async def managed_fields(self, login: str) -> frozenset[str]:
        """The fields of ``login``'s profile that an integration fills (none by default)."""
        found: frozenset[str] = frozenset()
        for source in self.managed:
            found |= await source(login)
        return found

    # -- scoping --------------------------------------------------------------------------

    @staticmethod
    def check_write(caller: Caller) -> None:
        """Refuse callers that may only read.

        Raises:
            ReadOnlyError: An auditor.
        """
        if not caller.can_write:
            raise ReadOnlyError("this role can only read", code="read-only")

    @staticmethod
    def check_system_admin(caller: Caller) -> None:
        """Refuse everyone but system administrators.

        Raises:
            ReadOnlyError: Not a system administrator.
        """
        if not caller.is_system_admin:
            raise ReadOnlyError("only a system administrator may do this")

    async def organisation(self, caller: Caller, organisation_id: int) -> Organisation:
        """The organisation, if the caller may see it.

        Raises:
            UnknownOrganisationError: No such organisation, or not the caller's.
        """
        org = (
            await self.store.organisations.get(organisation_id)
            if caller.sees(organisation_id)
            else None
        )
        if org is None:
            raise UnknownOrganisationError(f"no organisation {organisation_id}")
        return org

    async def user(self, caller: Caller, login: str, *, with_photo: bool = True) -> DirectoryUser:
        """The directory user, if the caller may see them.

        Raises:
            UnknownUserError: No such user, or not of the caller's organisation.
        """
        user = await self.store.users.get(login.strip().lower(), with_photo=with_photo)
        if user is None or not caller.sees(user.organisation_id):
            raise UnknownUserError(f"no directory user {login!r}")
        return user

    # -- secrets --------------------------------------------------------------------------------

    @staticmethod
    def new_token(nbytes: int = TOKEN_BYTES) -> tuple[str, str]:
        """A random URL-safe token and its SHA-256 digest (only the digest is stored)."""
        token = secrets.token_urlsafe(nbytes)
        return token, digest(token)

    async def hash_pin(self, pin: str) -> str:
        """The argon2id hash of a PIN (computed off the event loop)."""
        return await asyncio.to_thread(self.pin_hasher.hash, pin)

    async def pin_matches(self, pin_hash: str, pin: str) -> bool:
        """Whether ``pin`` matches its stored hash (off the event loop)."""
        try:
            return await asyncio.to_thread(self.pin_hasher.verify, pin_hash, pin)
        except (VerificationError, InvalidHashError):
            return False

    # -- mail -------------------------------------------------------------------------------------

    async def send(self, mail: Mail) -> bool:
        """Send ``mail``; whether the mailer accepted it (a refusal is logged, not raised)."""
        try:
            await self.mailer.send(mail.to, mail.subject, mail.body)
        except MailError as exc:
            log.warning("directory mail refused: %s", exc.message)
            return False
        return True

    def link(self, path: str) -> str:
        """An absolute link to ``path`` on the console's address."""
        return f"{self.config.links}{path}"

    # -- audit, notifications ------------------------------------------------------------------

    async def record(
        self,
        caller: Caller,
        action: str,
        target: str,
        outcome: Outcome = Outcome.SUCCESS,
        **details: object,
    ) -> None:
        """Record ``directory.<action>`` in the audit trail (identifiers, changes; no secrets)."""
        await self.audit.record(
            AuditEvent(
                actor=caller.actor,
                channel=caller.channel,
                action=f"directory.{action}",
                target=target,
                outcome=outcome,
                remote_ip=caller.remote_ip,
                details=details,
            )
        )

    async def record_public(
        self,
        action: str,
        target: str,
        outcome: Outcome,
        *,
        actor: str,
        channel: Channel = Channel.CONSOLE,
        remote_ip: str = "",
        **details: object,
    ) -> None:
        """Record an act of someone not signed in (registration, PIN reset, PIN check)."""
        await self.audit.record(
            AuditEvent(
                actor=actor,
                channel=channel,
                action=f"directory.{action}",
                target=target,
                outcome=outcome,
                remote_ip=remote_ip,
                details=details,
            )
        )

    async def notify(self, event: DirectoryEvent) -> None:
        """Hand ``event`` to every listener (after the commit); a failing one is logged."""
        for listener in self.listeners:
            try:
                await listener(event)
            except Exception:  # supervisor: one listener's bug must not stop the others
                log.exception("directory listener failed for %s", type(event).__name__)


class Facet:
    """A part of the directory service, on the shared :class:`Context`."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
