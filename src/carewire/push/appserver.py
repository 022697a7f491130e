"""The push app server (XEP-0357 §5): registrations, publishes, sends with retries, attempts.

Theory of operation
-------------------
A device registers its provider token (:meth:`PushAppServer.register`) and
gets a node and a secret; only the secret's SHA-256 is kept (it is 256
random bits), and a publish must present the secret (compared in constant
time). :meth:`PushAppServer.submit` is synchronous: it takes the publish
and returns, so routing never waits for a provider. The publishes of one
event-loop turn (an alert's, one per device) form a batch that one task
(owned by the app server, cancelled by :meth:`close`) checks — unknown node
or wrong secret, invalid registration, notifications disabled (recorded as
such) — and sends, per provider, in one go (``send_many``: their HTTP/2
requests leave in one write). Retries go to a fixed pool of workers (started
by :meth:`start`). Each outcome is recorded as an attempt. The answer's
:class:`~carewire.push.model.Decision` moves the attempt by the model's
transition table; a retry is re-queued after the back-off by a
timer the app server owns (so a waiting retry holds no worker). A rejected
token marks the registration invalid: it is never tried again, and the
listeners (the XMPP side) drop the enables of its node, as when a device
registers a new token (replacing its older registration) or unregisters.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from carewire.clock import Clock
from carewire.errors import UnavailableError
from carewire.push.model import (
    AttemptState,
    Decision,
    Notification,
    Outcome,
    PushService,
    RegistrationState,
    backoff,
    check_registration,
)
from carewire.push.providers import Provider
from carewire.push.records import (
    Attempt,
    AttemptChange,
    NewAttempt,
    NewRegistration,
    PushStore,
    Registration,
)
from carewire.push.settings import PushSettings
from carewire.security.audit import AuditEvent, AuditTrail, Channel

log = logging.getLogger(__name__)

GoneListener = Callable[[Registration], Awaitable[None]]


class DevicePolicy(Protocol):
    """Whether a device may be pushed to (Disable Notification, wipe pending)."""

    async def may_push(self, device: str) -> bool:
        """False when an administrator disabled notifications or a wipe is pending."""

    async def load(self) -> None:
        """Read what it needs before the first push (at start)."""

    async def close(self) -> None:
        """Stop any background work."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Publish:
    """A XEP-0357 publish: the node, the secret from the publish-options, what to say."""

    node: str
    secret: str
    note: Notification


@dataclass(frozen=True, slots=True, kw_only=True)
class _Retry:
    is_recorded: bool  # False until the first outcome is recorded
    registration: Registration
    note: Notification
    tries: int


class _AttemptLog:
    """Attempt writes, batched: what piles up while one commit runs goes in the next one."""

    def __init__(self, store: PushStore) -> None:
        self.store = store
        self.new: list[NewAttempt] = []
        self.changes: list[tuple[str, AttemptChange]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, attempt: NewAttempt) -> None:
        """Record a new attempt (at the next commit)."""
        self.new.append(attempt)
        self._wake.set()
        self._idle.clear()

    def change(self, opaque_id: str, change: AttemptChange) -> None:
        """Record a later outcome of an attempt (at the next commit)."""
        self.changes.append((opaque_id, change))
        self._wake.set()
        self._idle.clear()

    async def flushed(self) -> None:
        """Wait until everything recorded so far is committed."""
        await self._idle.wait()

    async def run(self) -> None:
        """The writer task: commit batches until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            new, self.new = self.new, []
            changes, self.changes = self.changes, []
            try:
                await self.store.save_attempts(new, changes)
            except Exception:  # a supervisor: the next batch must still be written
                log.exception("recording %d push attempts failed", len(new) + len(changes))
            if not self.new and not self.changes:
                self._idle.set()


def secret_hash(secret: str) -> str:
    """The stored form of a node's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class PushAppServer:
    """Registrations and publishes in, provider requests out, every attempt recorded."""

    def __init__(
        self,
        store: PushStore,
        providers: Mapping[PushService, Provider],
        settings: PushSettings,
        clock: Clock,
        *,
        devices: DevicePolicy | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.settings = settings
        self.clock = clock
        self.devices = devices
        self.audit = audit
        self.unhealthy: set[PushService] = set()
        self.on_gone: list[GoneListener] = []  # a registration was rejected, replaced or removed
        self._queue: asyncio.Queue[Publish | _Retry] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._random = random.SystemRandom()
        self._registrations: dict[str, tuple[Registration, str]] = {}
        self._log = _AttemptLog(store)
        self._writer: asyncio.Task[None] | None = None
        self._batch: list[Publish] = []  # submitted in this event-loop turn
        self._batches: set[asyncio.Task[None]] = set()

    @property
    def queue_depth(self) -> int:
        """Publishes of this turn and retries waiting for a worker (read by /metrics)."""
        return len(self._batch) + self._queue.qsize()

    @property
    def services(self) -> frozenset[PushService]:
        """The services configured here."""
        return frozenset(self.providers)

    # -- registration ---------------------------------------------------------------------

    async def register(
        self, login: str, resource: str, *, service: str, token: str, topic: str = ""
    ) -> tuple[Registration, str]:
        """Register a device token; the registration and its secret (shown once).

        Raises:
            ValidationError: ``unknown-service`` or ``bad-token``.
            UnavailableError: The service is not configured on this server.
            NotFoundError: No such account.
        """
        known = check_registration(service, token, topic)
        if known not in self.providers:
            raise UnavailableError(f"{known.value} is not configured on this server")
        secret = secrets.token_urlsafe(32)
        reg = await self.store.add_registration(
            NewRegistration(
                node=secrets.token_urlsafe(16),
                secret_hash=secret_hash(secret),
                login=login,
                device=f"{login}/{resource}",
                service=known,
                token=token,
                topic=topic,
                at=self.clock.now(),
            )
        )
        await self._audit(login, "push.register", reg, {"service": known.value})
        log.info("push registration %d (%s) for %s", reg.id, known.value, reg.device)
        # A device holds one token per service: a new registration replaces its older ones
        # (an app registers again when its token changes), so it is never pushed twice.
        for old in await self.store.registrations_of(login):
            if old.id != reg.id and old.device == reg.device and old.service is known:
                await self.store.delete_registration(login, old.node)
                self._registrations.pop(old.node, None)
                for listener in self.on_gone:
                    await listener(old)
        return reg, secret

    async def unregister(self, login: str, node: str) -> bool:
        """Remove one of the account's registrations; False if it had none at ``node``."""
        found = await self.store.registration(node)
        if found is None or found[0].login != login:
            return False
        await self.store.delete_registration(login, node)
        self._registrations.pop(node, None)
        for listener in self.on_gone:
            await listener(found[0])
        await self._audit(login, "push.unregister", found[0], {})
        return True

    async def check_secret(self, login: str, node: str, secret: str) -> Registration | None:
        """The account's registration at ``node`` if ``secret`` is its secret (then kept)."""
        found = await self._registration(node)
        if found is None or found[0].login != login:
            return None
        if not hmac.compare_digest(found[1], secret_hash(secret)):
            return None
        return found[0]

    async def attempts(
        self, *, login: str | None = None, state: AttemptState | None = None, limit: int = 100
    ) -> Sequence[Attempt]:
        """Recent push attempts, newest first (what ``GET /push/attempts`` shows)."""
        return await self.store.attempts(login=login, state=state, limit=limit)

    async def registrations_of(self, login: str) -> list[Registration]:
        """The account's registrations, oldest first."""
        return await self.store.registrations_of(login)

    # -- publishing -----------------------------------------------------------------------

    def submit(self, publish: Publish) -> None:
        """Take a publish (never waits): those submitted in one event-loop turn leave together.

        An alert submits one publish per device of its offline recipients in one go; they
        are checked and their requests written to the provider's connection at once, by
        one task, before the alert's other work goes on (:meth:`_dispatch`).
        """
        self._batch.append(publish)
        if len(self._batch) == 1:
            task = asyncio.create_task(self._dispatch(), name="push-batch")
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def start(self) -> None:
        """Start the workers."""
        if not self._workers:
            if self.devices is not None:
                await self.devices.load()
            self._writer = asyncio.create_task(self._log.run(), name="push-attempts")
            for n in range(max(1, self.settings.workers)):
                self._workers.append(asyncio.create_task(self._work(), name=f"push-{n}"))

    async def drain(self) -> None:
        """Wait until every queued publish and due retry has been handled (tests, shutdown)."""
        while True:
            if self._batches:
                await asyncio.gather(*self._batches, return_exceptions=True)
            await self._queue.join()
            if not self._timers and not self._batches:
                break
            await asyncio.sleep(0.005)
        if self._writer is not None:
            await self._log.flushed()

    async def close(self) -> None:
        """Cancel pending retries and the workers; close the providers' connections."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in [*self._workers, *self._batches]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._batches, return_exceptions=True)
        self._workers.clear()
        self._batches.clear()
        if self._writer is not None:
            await self._log.flushed()  # what was tried is on record
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        if self.devices is not None:
            await self.devices.close()
        for provider in self.providers.values():
            await provider.close()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                if isinstance(job, Publish):
                    await self._publish(job)
                else:
                    await self._try(job)
            except Exception:  # a supervisor: one bad push must not stop the worker
                log.exception("push worker failed")
            finally:
                self._queue.task_done()

    async def _registration(self, node: str) -> tuple[Registration, str] | None:
        """The registration of ``node`` (kept in memory: this process alone changes them)."""
        found = self._registrations.get(node)
        if found is None:
            found = await self.store.registration(node)
            if found is not None:
                self._registrations[node] = found
        return found

    async def _dispatch(self) -> None:
        """Check this turn's publishes and send them, per provider, in one batch each."""
        batch, self._batch = self._batch, []
        jobs: dict[PushService, list[_Retry]] = {}
        for publish in batch:
            try:
                first = await self._admit(publish)
            except Exception:  # a supervisor: one bad publish must not stop the batch
                log.exception("push publish failed")
                continue
            if first is not None:
                jobs.setdefault(first.registration.service, []).append(first)
        for service, firsts in jobs.items():
            try:
                await self._try_many(service, firsts)
            except Exception:  # a supervisor, as the workers are
                log.exception("push batch failed")

    async def _publish(self, job: Publish) -> None:
        first = await self._admit(job)
        if first is not None:
            await self._try(first)

    async def _admit(self, job: Publish) -> _Retry | None:
        """The publish's first try, or None when it is not sent (recorded as such)."""
        found = await self._registration(job.node)
        if found is None or not hmac.compare_digest(found[1], secret_hash(job.secret)):
            log.warning("push publish to an unknown node or with a wrong secret")
            return None
        reg = found[0]
        note = job.note
        if not note.opaque_id:
            note = replace(note, opaque_id=secrets.token_hex(16))
        first = _Retry(is_recorded=False, registration=reg, note=note, tries=0)
        if reg.state is RegistrationState.INVALID:
            self._record(
                first, Decision.INVALID_TOKEN, Outcome(status=0, reason="registration invalid"), 0
            )
            return None
        if self.devices is not None and not await self.devices.may_push(reg.device):
            self._record(
                first, Decision.DISABLED, Outcome(status=0, reason="notifications disabled"), 0
            )
            return None
        return first

    async def _try(self, job: _Retry) -> None:
        await self._try_many(job.registration.service, [job])

    async def _try_many(self, service: PushService, jobs: list[_Retry]) -> None:
        """Send ``jobs`` (all to ``service``) side by side; record and follow up each outcome."""
        provider = self.providers.get(service)
        if provider is None:
            for job in jobs:
                outcome = Outcome(status=0, reason="service not configured")
                self._record(job, Decision.GIVE_UP, outcome, job.tries)
            return
        if len(jobs) == 1:
            (job,) = jobs
            reg = job.registration
            outcomes = [await provider.send(reg.token, job.note, topic=reg.topic)]
        else:
            outcomes = await provider.send_many(
                [(j.registration.token, j.note, j.registration.topic) for j in jobs]
            )
        for job, outcome in zip(jobs, outcomes, strict=True):
            await self._settle(provider, job, outcome)

    async def _settle(self, provider: Provider, job: _Retry, outcome: Outcome) -> None:
        tries = job.tries + 1
        decision = provider.classify(outcome)
        if decision is Decision.RETRY and tries >= self.settings.max_attempts:
            decision = Decision.EXHAUSTED
        self._record(job, decision, outcome, tries)
        await self._after(decision, replace(job, is_recorded=True), outcome, tries)

    async def _after(self, decision: Decision, job: _Retry, outcome: Outcome, tries: int) -> None:
        reg = job.registration
        if decision is Decision.DELIVERED:
            self.unhealthy.discard(reg.service)
        elif decision is Decision.RETRY:
            delay = backoff(
                tries,
                base=self.settings.retry_base,
                cap=self.settings.retry_cap,
                jitter=self._random.random(),
                retry_after=outcome.retry_after,
            )
            self._later(
                delay,
                _Retry(is_recorded=True, registration=reg, note=job.note, tries=tries),
            )
        elif decision is Decision.INVALID_TOKEN:
            reason = outcome.reason or str(outcome.status)
            now = self.clock.now()
            await self.store.mark_registration(reg.id, RegistrationState.INVALID, reason, now)
            self._registrations.pop(reg.node, None)
            log.info("push registration %d: the %s token was rejected", reg.id, reg.service.value)
            for listener in self.on_gone:
                await listener(reg)
        elif decision is Decision.PROVIDER_AUTH:
            self.unhealthy.add(reg.service)
            log.error(
                "%s refused our credentials (%d %s)",
                reg.service.value,
                outcome.status,
                outcome.reason,
            )

    def _later(self, delay: float, job: _Retry) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def due() -> None:
            assert handle is not None
            self._timers.discard(handle)
            self._queue.put_nowait(job)

        handle = loop.call_later(delay, due)
        self._timers.add(handle)

    def _record(self, job: _Retry, decision: Decision, outcome: Outcome, tries: int) -> None:
        """Record the attempt's new state: added at its first outcome, changed after."""
        change = AttemptChange.after(decision, outcome, tries, self.clock.now())
        if job.is_recorded:
            self._log.change(job.note.opaque_id, change)
            return
        reg = job.registration
        self._log.add(
            NewAttempt(
                registration=reg,
                login=reg.login,
                device=reg.device,
                priority=job.note.priority,
                opaque_id=job.note.opaque_id,
                change=change,
            )
        )

    async def _audit(
        self, login: str, action: str, reg: Registration, details: dict[str, object]
    ) -> None:
        if self.audit is None:
            return
        await self.audit.record(
            AuditEvent(
                actor=f"xmpp:{login}",
                channel=Channel.XMPP,
                action=action,
                target=reg.device,
                details={"node": reg.node, **details},
            )
        )
