"""Client authentication policy: lockout policy and the login audit.

The account security policy: "If a user fails to log into the client after 10 successive
attempts, [the system] locks the user account. After the 5th failure, the
system also enforces a three-minute wait between each successive login
attempt." Attempts refused during the wait are audited but do not count.
Every attempt — success or failure — is written to the login audit (who,
when, from where, outcome). Successes are batched off the login path and
flushed on shutdown. A failure is written before its answer leaves the
server (:meth:`LoginAuditor.record_durably`), so a crash right after failed
logins — the moment an attacker would arrange one — loses none of them;
failures arriving together share one transaction (group commit). Each
written batch is also handed to an optional sink (the server passes one that
appends it to the audit trail), which a failure awaits too.

Hardening against guessing and floods:

- failures are counted per source address too (:mod:`carewire.security.throttle`):
  a throttled address is refused before any account is looked up, like an
  account inside its delay, and its refusals are aggregated in the audit trail;
- an unknown login gets the same answers as a known one after repeated
  failures (the delay, then "locked"): its failures are counted in memory;
- a locked or delayed account still admits its owner from the address of one
  of their enrolled devices (the DEVICES record's ``ip_address``), unless
  failures of that account came from that address: a source elsewhere cannot
  lock a clinician out of their phone;
- an account that becomes locked is reported (``on_locked``: the server
  mails the system administrators).

On a cluster the counters this class keeps in memory (unknown logins, the
addresses of a login's failures) are shared by the nodes through
:attr:`Authenticator.shared` (:mod:`carewire.security.shared_counters`); when
the shared counters cannot be reached, the node counts locally meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from carewire.clock import Clock
from carewire.core.stores import Account, LoginAttempt, LoginOutcome, Stores
from carewire.errors import NotFoundError
from carewire.security.audit import Channel
from carewire.security.shared_counters import SharedCountersDown, SharedLoginFailures
from carewire.security.throttle import AuthThrottle
from carewire.xmpp.jid import InvalidJID, normalize_localpart
from carewire.xmpp.sasl import StoredKeys

log = logging.getLogger(__name__)

# The text administrators and clients see for an account in the delay or locked.
HARD_LIMIT_TEXT = "Invalid login hard limit reached. Delaying login attempts."
LOCKED_TEXT = "Account locked after repeated failed logins; an administrator must unlock it."
DISABLED_TEXT = "Login has been disabled for this account by an administrator."
#: The login audit's reason for a refused disabled account.
DISABLED_REASON = "login disabled"
#: Why SCRAM fails for an account whose password is checked elsewhere (its organisation's LDAP).
EXTERNAL_SCRAM_TEXT = (
    "This account signs in with its organisation's directory password: "
    "use SASL PLAIN (offered only over TLS)."
)
#: Why an account whose password is checked elsewhere cannot sign in now.
EXTERNAL_UNAVAILABLE_TEXT = "The organisation's directory cannot be reached; try again later."


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutPolicy:
    """The security policy's defaults."""

    delay_after: int = 5
    delay: timedelta = timedelta(minutes=3)
    lock_after: int = 10


class Admission(StrEnum):
    """Whether a login attempt may check a password at all."""

    ALLOW = "allow"
    DELAYED = "delayed"
    LOCKED = "locked"
    DISABLED = "disabled"
    THROTTLED = "throttled"  # the source address is over its failure limit


class ExternalVerdict(StrEnum):
    """The answer of a password check made elsewhere (an organisation's LDAP directory)."""

    OK = "ok"
    WRONG = "wrong"  # counts toward the lockout like any wrong password
    UNAVAILABLE = "unavailable"  # the directory cannot be reached: a temporary failure


class ExternalPasswords(Protocol):
    """Accounts whose password is checked by another system (docs/ldap.md).

    Such accounts have no SCRAM keys here: they sign in with PLAIN (inside
    TLS) and the server asks this object; a SCRAM attempt is refused with a
    text that says to use PLAIN.
    """

    async def is_external(self, login: str) -> bool:
        """Whether ``login``'s password is checked elsewhere."""

    async def check_password(self, login: str, password: str) -> ExternalVerdict:
        """Check ``password`` (off the event loop's critical path; never logged)."""


#: Whether ``login`` has an enrolled device at ``remote_ip`` (bound by the composition root).
EnrolledCheck = Callable[[str, str], Awaitable[bool]]
#: Told when an account becomes locked: (login, channel, remote address, failures).
LockNotice = Callable[[str, str, str, int], Awaitable[None]]
#: How many unknown logins' failures are remembered (the oldest are forgotten first).
MAX_UNKNOWN_TRACKED = 50_000


def admission(account: Account | None, now: datetime, policy: LockoutPolicy) -> Admission:
    """Pure lockout decision for one attempt (unknown accounts are allowed: they just fail).

    A disabled account ("Can Login" off) is refused like a locked one, before
    any password is checked; a lock wins over it (it says more).
    """
    if account is None:
        return Admission.ALLOW
    if account.is_locked:
        return Admission.LOCKED
    if account.is_disabled:
        return Admission.DISABLED
    if (
        account.failed_logins >= policy.delay_after
        and account.last_failed_at is not None
        and now - account.last_failed_at < policy.delay
    ):
        return Admission.DELAYED
    return Admission.ALLOW


#: Receives each batch written to the login audit (e.g. to append it to the audit trail).
LoginSink = Callable[[Sequence[LoginAttempt]], Awaitable[None]]


class LoginAuditor:
    """Batches login-audit rows and writes them in the background."""

    def __init__(
        self,
        stores: Stores,
        *,
        flush_interval: float = 0.2,
        max_batch: int = 500,
        sink: LoginSink | None = None,
    ) -> None:
        self._stores = stores
        self._sink = sink
        self._pending: list[LoginAttempt] = []
        self._unsunk: list[LoginAttempt] = []  # written, not yet handed to the sink
        self._interval = flush_interval
        self._max = max_batch
        self._wake = asyncio.Event()
        self._closed = False
        self._lock = asyncio.Lock()  # one flush at a time: the group commit of failures
        self._recorded = 0  # rows queued since the start
        self._done = 0  # rows written and handed to the sink (both queues are FIFO)
        # Attempts by (mechanism, outcome, reason), read by /metrics at scrape time.
        self.outcomes: Counter[tuple[str, str, str]] = Counter()

    @property
    def backlog(self) -> int:
        """Login-audit rows queued and not yet written (read by /metrics)."""
        return len(self._pending)

    def record(self, attempt: LoginAttempt) -> None:
        """Queue one row (never blocks the login)."""
        self._pending.append(attempt)
        self._recorded += 1
        self.outcomes[(attempt.mechanism, attempt.outcome.value, attempt.reason)] += 1
        if len(self._pending) >= self._max:
            self._wake.set()

    async def record_durably(self, attempt: LoginAttempt) -> None:
        """Queue one row and return once it is written (with everything queued before it).

        Concurrent callers share flushes: whoever holds the lock writes every
        row queued so far, and the others find theirs written. A failing
        write is logged and the row stays queued for the background writer:
        the login's answer is not held back by a broken database.
        """
        self.record(attempt)
        mine = self._recorded
        try:
            async with self._lock:
                if self._done < mine:
                    await self._flush_locked()
        except Exception:  # supervisor: the rows stay queued; flush logged the cause
            return

    async def flush(self) -> None:
        """Write everything queued, then hand it to the sink.

        Each stage keeps its own retry queue, so a failing sink never writes
        a row to the login audit twice.
        """
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                await self._stores.login_audit.append_many(batch)
            except Exception:
                log.exception("login audit write failed; %d rows kept for retry", len(batch))
                self._pending[:0] = batch
                raise
            if self._sink is not None:
                self._unsunk += batch
            else:
                self._done += len(batch)
        while self._unsunk and self._sink is not None:
            batch, self._unsunk = self._unsunk[: self._max], self._unsunk[self._max :]
            try:
                await self._sink(batch)
            except Exception:
                log.exception("login audit sink failed; %d rows kept for retry", len(batch))
                self._unsunk[:0] = batch
                raise
            self._done += len(batch)

    async def run(self) -> None:
        """The background writer (owned by the server's task group)."""
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # supervisor: keep the writer alive, retry next round
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Stop the writer and write what is left."""
        self._closed = True
        self._wake.set()
        await self.flush()


class Authenticator:
    """Looks up keys with the lockout policy and records outcomes."""

    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        auditor: LoginAuditor,
        policy: LockoutPolicy | None = None,
        *,
        throttle: AuthThrottle | None = None,
        enrolled: EnrolledCheck | None = None,
        on_locked: LockNotice | None = None,
        external: ExternalPasswords | None = None,
    ) -> None:
        self.stores = stores
        self.external = external
        self.clock = clock
        self.auditor = auditor
        self.policy = policy or LockoutPolicy()
        self.throttle = throttle
        self.enrolled = enrolled
        self.on_locked = on_locked
        # Logins whose last lookup showed failures: only they need a reset on success.
        self._had_failures: set[str] = set()
        # Unknown logins' (failures, last failure), so they answer as known ones do.
        self._unknown: OrderedDict[str, tuple[int, datetime]] = OrderedDict()
        # The addresses each login's counted failures came from.
        self._failure_sources: OrderedDict[str, set[str]] = OrderedDict()
        #: On a cluster, the nodes' shared copy of the two counters above (None: one node).
        self.shared: SharedLoginFailures | None = None

    @staticmethod
    def login_of(username: str, domain: str) -> str | None:
        """The normalised login for a SASL username ('alice' or 'alice@DOMAIN')."""
        local, at, dom = username.rpartition("@")
        if at and dom.lower() != domain:
            return None
        try:
            return normalize_localpart(local if at else username)
        except InvalidJID:
            return None

    async def lookup(
        self, login: str, mechanism: str, *, remote_ip: str = ""
    ) -> tuple[Admission, StoredKeys | None]:
        """The admission decision and the stored keys (None for unknown accounts)."""
        if self.throttle is not None and not await self.throttle.admit(remote_ip, Channel.XMPP):
            return Admission.THROTTLED, None
        account, cred = await self.stores.accounts.get_for_login(login, mechanism)
        now = self.clock.now()
        if account is None:
            return await self._unknown_admission(login, now), None
        decision = admission(account, now, self.policy)
        if account.failed_logins:
            self._had_failures.add(login)
        if decision in (Admission.LOCKED, Admission.DELAYED) and await self._is_owner_device(
            login, remote_ip
        ):
            log.info("%s login admitted from an enrolled device despite the lockout", login)
            decision = Admission.ALLOW
        if account is None or decision is not Admission.ALLOW or cred is None:
            return decision, None
        keys = StoredKeys(
            salt=cred.salt,
            iterations=cred.iterations,
            stored_key=cred.stored_key,
            server_key=cred.server_key,
        )
        return decision, keys

    async def _unknown_admission(self, login: str, now: datetime) -> Admission:
        """What a known account with the same failures would be told."""
        failures, last = self._unknown.get(login, (0, None))
        if self.shared is not None:
            with contextlib.suppress(SharedCountersDown):  # then this node's count decides
                failures, last = await self.shared.unknown_failures(login)
        if failures >= self.policy.lock_after:
            return Admission.LOCKED
        if (
            failures >= self.policy.delay_after
            and last is not None
            and now - last < self.policy.delay
        ):
            return Admission.DELAYED
        return Admission.ALLOW

    async def _is_owner_device(self, login: str, remote_ip: str) -> bool:
        if self.enrolled is None or not remote_ip:
            return False
        sources: set[str] | frozenset[str] = self._failure_sources.get(login, set())
        if self.shared is not None:
            with contextlib.suppress(SharedCountersDown):
                sources = await self.shared.failure_sources(login)
        if remote_ip in sources:
            return False  # the failures came from there: no exception for it
        return await self.enrolled(login, remote_ip)

    async def _note_failure_source(self, login: str, remote_ip: str) -> None:
        if self.shared is not None:
            with contextlib.suppress(SharedCountersDown):
                await self.shared.source_failed(login, remote_ip)
                return
        sources = self._failure_sources.get(login)
        if sources is None:
            sources = self._failure_sources[login] = set()
            while len(self._failure_sources) > MAX_UNKNOWN_TRACKED:
                self._failure_sources.popitem(last=False)
        if len(sources) < 64:
            sources.add(remote_ip)

    async def _note_unknown_failure(self, login: str) -> None:
        if self.shared is not None:
            with contextlib.suppress(SharedCountersDown):
                await self.shared.unknown_failed(login, self.clock.now())
                return
        failures, _ = self._unknown.pop(login, (0, None))
        self._unknown[login] = (failures + 1, self.clock.now())
        while len(self._unknown) > MAX_UNKNOWN_TRACKED:
            self._unknown.popitem(last=False)

    async def throttled(
        self, login: str, *, remote_ip: str, transport: str, mechanism: str = ""
    ) -> None:
        """A refusal of a throttled address: counted by the throttle, not audited per attempt.

        /metrics still counts it (``carewire_login_failures_total{reason="throttled"}``).
        """
        self.auditor.outcomes[(mechanism, "throttled", "throttled")] += 1
        log.debug("attempt for %s from throttled %s (%s)", login, remote_ip, transport)

    async def succeeded(
        self, login: str, *, remote_ip: str, transport: str, mechanism: str
    ) -> None:
        """Clear the failure counter (only if there were failures) and audit the success."""
        self._failure_sources.pop(login, None)
        if login in self._had_failures:
            self._had_failures.discard(login)
            await self.stores.accounts.reset_failures(login)
            if self.shared is not None:  # only then can failures' addresses have been noted
                with contextlib.suppress(SharedCountersDown):
                    await self.shared.forget_sources(login)
        self._audit(login, remote_ip, transport, mechanism, LoginOutcome.SUCCESS, "")

    async def failed(
        self,
        login: str,
        *,
        remote_ip: str,
        transport: str,
        mechanism: str,
        outcome: LoginOutcome = LoginOutcome.FAILURE,
        reason: str = "",
        counts: bool = True,
    ) -> Account | None:
        """Audit a failure; count it toward the lockout when it says the password was wrong."""
        account = None
        if counts and outcome is LoginOutcome.FAILURE:
            if self.throttle is not None:
                await self.throttle.failed(remote_ip, Channel.XMPP)
            try:
                account = await self.stores.accounts.record_failure(
                    login, self.clock.now(), lock_after=self.policy.lock_after
                )
            except NotFoundError:
                account = None
                await self._note_unknown_failure(login)
            else:
                self._had_failures.add(login)
                await self._note_failure_source(login, remote_ip)
            if (
                account is not None
                and account.is_locked
                and account.failed_logins == self.policy.lock_after
            ):
                log.warning(
                    "account locked after %d failed logins: %s", account.failed_logins, login
                )
                if self.on_locked is not None:
                    await self.on_locked(login, transport, remote_ip, account.failed_logins)
        # Written before the answer goes out (see the module docstring).
        await self.auditor.record_durably(
            self._attempt(login, remote_ip, transport, mechanism, outcome, reason)
        )
        return account

    def _audit(
        self,
        login: str,
        remote_ip: str,
        transport: str,
        mechanism: str,
        outcome: LoginOutcome,
        reason: str,
    ) -> None:
        self.auditor.record(self._attempt(login, remote_ip, transport, mechanism, outcome, reason))

    def _attempt(
        self,
        login: str,
        remote_ip: str,
        transport: str,
        mechanism: str,
        outcome: LoginOutcome,
        reason: str,
    ) -> LoginAttempt:
        return LoginAttempt(
            at=self.clock.now(),
            login=login[:1023],
            remote_ip=remote_ip,
            transport=transport,
            mechanism=mechanism,
            outcome=outcome,
            reason=reason[:255],
        )
