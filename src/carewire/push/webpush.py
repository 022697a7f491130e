"""Web Push to the clinicians' browsers (RFC 8030 push, RFC 8291 encryption, RFC 8292 VAPID).

Theory of operation
-------------------
A browser subscribes with its push service (``pushManager.subscribe`` with
our VAPID public key) and hands the subscription to the server over XMPP
(``urn:carewire:webpush:0``, :mod:`carewire.features.webpush`), which
checks it (:func:`~carewire.push.webpush_model.check_subscription`) and
stores it sealed, per account. When the XMPP side decides a user who has no
session reading now should hear of an alert or a message (the same policy
as the phones', :mod:`carewire.features.push`), :meth:`WebPushService.notify`
takes it and returns at once: a task owned by the service posts one
encrypted push to each of the account's subscriptions. The payload says
only "alert" or "message", a count and an opaque id; it is encrypted for
the browser (``aes128gcm``, RFC 8291, with ``http_ece``) so the push service
cannot read even that. Each request carries a VAPID token (ES256, signed
with the key of :mod:`.vapid`) for the endpoint's origin, ``TTL``,
``Urgency`` (``high`` for alerts) and ``Topic``, and is bounded by
``push.timeout``. The answer is classified like the phones' providers': 404
and 410 delete the subscription (the browser unsubscribed or it expired);
429, 5xx, a timeout or a broken connection are retried after the same
back-off (``retry_base``, ``retry_cap``, a ``Retry-After`` honoured) up to
``max_attempts``. Every push is one attempt in ``push_attempts`` (service
``webpush``), shown by ``GET /api/push/attempts``. Endpoints and keys are
never logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from carewire.clock import Clock
from carewire.push import vapid
from carewire.push.model import (
    Decision,
    Notification,
    Outcome,
    PushPriority,
    backoff,
)
from carewire.push.records import AttemptChange, NewAttempt, PushStore
from carewire.push.settings import PushSettings, WebPushSettings
from carewire.push.webpush_model import (
    NewWebSubscription,
    WebKind,
    WebPushStore,
    WebSubscription,
    check_subscription,
    classify_webpush,
    push_headers,
    web_payload,
)
from carewire.security.audit import AuditEvent, AuditTrail, Channel

log = logging.getLogger(__name__)

SERVICE = "webpush"
#: RFC 8291 §4: "the record size [...] MUST be at least 18 octets"; one 4096-octet record
#: holds our few bytes, as push services expect.
RECORD_SIZE = 4096
#: Browsers one account may have subscribed at once (a new one beyond: the oldest goes).
MAX_PER_ACCOUNT = 10


def encrypt(payload: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """The ``aes128gcm`` body of a push (RFC 8291 §3.4): a fresh sender key pair and salt."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        private_key=ephemeral,
        dh=p256dh,
        auth_secret=auth,
        version="aes128gcm",
        rs=RECORD_SIZE,
    )
    return body


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: our own back-off


@dataclass(frozen=True, slots=True, kw_only=True)
class _Push:
    sub: WebSubscription
    kind: WebKind
    note: Notification


class WebPushService:
    """Subscriptions in, encrypted pushes out, every attempt recorded."""

    def __init__(
        self,
        store: WebPushStore,
        settings: PushSettings,
        clock: Clock,
        *,
        attempts: PushStore | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        if settings.webpush is None:
            raise ValueError("Web Push is not configured")
        self.web: WebPushSettings = settings.webpush
        self.store = store
        self.settings = settings
        self.clock = clock
        self.attempts = attempts
        self.audit = audit
        self.key = vapid.load_vapid_key(self.web.key_file)
        self.public_key = vapid.public_key(self.key)
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.SystemRandom()
        self._client: httpx.AsyncClient | None = None

    # -- subscriptions --------------------------------------------------------------------

    async def subscribe(
        self, login: str, *, endpoint: str, p256dh: str, auth: str
    ) -> WebSubscription:
        """Check and store a browser's subscription (replacing one with the same endpoint).

        Raises:
            ValidationError: ``bad-endpoint`` or ``bad-key``, naming the fault.
            NotFoundError: No such account.
        """
        url, key, secret = check_subscription(
            endpoint, p256dh, auth, hosts=self.web.hosts, allow_loopback=self.web.allow_loopback
        )
        sub = await self.store.add(
            NewWebSubscription(
                login=login, endpoint=url, p256dh=key, auth=secret, at=self.clock.now()
            )
        )
        await self._audit(login, "webpush.subscribe", sub)
        log.info("web push subscription %d for %s", sub.id, login)
        # Bounded fan-out: past MAX_PER_ACCOUNT browsers, the oldest subscription goes.
        for old in (await self.store.of(login))[:-MAX_PER_ACCOUNT]:
            await self.store.remove_id(old.id)
            log.info("web push subscription %d replaced by newer ones", old.id)
        return sub

    async def unsubscribe(self, login: str, endpoint: str) -> bool:
        """Remove the account's subscription at ``endpoint``; False if it had none there."""
        for sub in await self.store.of(login):
            if sub.endpoint == endpoint:
                await self.store.remove_id(sub.id)
                await self._audit(login, "webpush.unsubscribe", sub)
                return True
        return False

    async def subscriptions(self, login: str) -> list[WebSubscription]:
        """The account's subscriptions, oldest first."""
        return await self.store.of(login)

    # -- sending --------------------------------------------------------------------------

    def notify(self, login: str, kind: WebKind, *, count: int, priority: PushPriority) -> None:
        """Push to every browser of ``login`` (never waits: a task of ours sends)."""
        self._spawn(self._notify(login, kind, count, priority), "webpush")

    async def start(self) -> None:
        """Open the HTTP client (its connections are made as pushes leave)."""
        self._http()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            tls = ssl.create_default_context(
                cafile=str(self.settings.ca_file) if self.settings.ca_file else None
            )
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            # Redirects are not followed: a push goes to the endpoint the browser named only.
            self._client = httpx.AsyncClient(
                http2=True,
                verify=tls,
                timeout=self.settings.timeout,
                trust_env=False,
                follow_redirects=False,
            )
        return self._client

    async def drain(self) -> None:
        """Wait until every push raised so far is settled, retries included (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel what is pending and close the client."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, login: str, kind: WebKind, count: int, priority: PushPriority) -> None:
        try:
            subs = await self.store.of(login)
        except Exception:  # a supervisor: a failed read must not end the service's tasks
            log.exception("reading the web push subscriptions of %s failed", login)
            return
        for sub in subs:
            note = Notification(count=count, priority=priority, opaque_id=secrets.token_hex(16))
            self._spawn(self._deliver(_Push(sub=sub, kind=kind, note=note)), "webpush-send")

    async def _deliver(self, push: _Push) -> None:
        try:
            await self._settle(push)
        except Exception:  # a supervisor: one bad push must not take others down
            log.exception("web push to subscription %d failed", push.sub.id)

    async def _settle(self, push: _Push) -> None:
        """Send one push until it is settled: delivered, gone, refused or out of tries."""
        tries = 0
        while True:
            outcome = await self._send(push)
            tries += 1
            decision = classify_webpush(outcome)
            if decision is Decision.RETRY and tries >= self.settings.max_attempts:
                decision = Decision.EXHAUSTED
            await self._record(push, decision, outcome, tries)
            if decision is Decision.INVALID_TOKEN:
                await self.store.remove_id(push.sub.id)
                log.info("web push subscription %d is gone (%d)", push.sub.id, outcome.status)
            elif decision is Decision.PROVIDER_AUTH:
                log.error("a push service refused our VAPID token (%d)", outcome.status)
            if decision is not Decision.RETRY:
                return
            await asyncio.sleep(
                backoff(
                    tries,
                    base=self.settings.retry_base,
                    cap=self.settings.retry_cap,
                    jitter=self._random.random(),
                    retry_after=outcome.retry_after,
                )
            )

    async def _send(self, push: _Push) -> Outcome:
        sub = push.sub
        body = encrypt(web_payload(push.kind, push.note), sub.p256dh, sub.auth)
        headers = push_headers(push.kind, push.note, ttl=self.settings.ttl)
        headers["authorization"] = vapid.authorization(
            self.key, sub.endpoint, subject=self.web.subject, now=int(time.time())
        )
        try:
            async with asyncio.timeout(self.settings.timeout):
                # Streamed and never read: the answer's body is not ours to hold.
                request = self._http().stream("POST", sub.endpoint, content=body, headers=headers)
                async with request as response:
                    return Outcome(
                        status=response.status_code,
                        reason="" if response.is_success else response.reason_phrase[:128],
                        provider_id=response.headers.get("location", "").rpartition("/")[2][:255],
                        retry_after=_retry_after(response.headers.get("retry-after")),
                    )
        except (TimeoutError, httpx.HTTPError, ssl.SSLError, OSError) as exc:
            log.info("web push request failed: %s", type(exc).__name__)
            return Outcome(status=0, reason=type(exc).__name__)

    async def _record(self, push: _Push, decision: Decision, outcome: Outcome, tries: int) -> None:
        if self.attempts is None:
            return
        change = AttemptChange.after(decision, outcome, tries, self.clock.now())
        try:
            if tries == 1:
                new = NewAttempt(
                    registration=None,
                    registration_id=push.sub.id,
                    service=SERVICE,
                    login=push.sub.login,
                    device=f"{push.sub.login}/web-{push.sub.id}",
                    priority=push.note.priority,
                    opaque_id=push.note.opaque_id,
                    change=change,
                )
                await self.attempts.save_attempts([new], [])
            else:
                await self.attempts.save_attempts([], [(push.note.opaque_id, change)])
        except Exception:  # a supervisor: the push itself must still be followed up
            log.exception("recording a web push attempt failed")

    async def _audit(self, login: str, action: str, sub: WebSubscription) -> None:
        if self.audit is None:
            return
        await self.audit.record(
            AuditEvent(
                actor=f"xmpp:{login}",
                channel=Channel.XMPP,
                action=action,
                target=login,
                details={"subscription": sub.id},
            )
        )
