"""Administrators are told when an account is locked after repeated failed sign-ins.

A lock (10 failures by the security policy) needs a person: an administrator
unlocks the account once the user is reached. Each lock is recorded in the
audit trail (``account.locked``) and mailed to every system administrator of
the console who has an address. Mail goes out in the background, so the
failing attempt is answered as fast as any other (how long a refusal takes
must not tell an account that exists from one that does not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from carewire.mail import Mailer, MailError
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.console_model import ConsoleUser, Role

log = logging.getLogger(__name__)

#: The channel names a lock can come from, as the audit trail spells them.
_CHANNELS = {"console": Channel.CONSOLE, "api": Channel.API}


def lockout_message(login: str, where: str, remote_ip: str, failures: int) -> tuple[str, str]:
    """Subject and body of the notice (the login and the address; nothing about the patient)."""
    subject = f"Account locked: {login}"
    body = (
        f"The account {login} was locked after {failures} failed sign-ins "
        f"({where}, last from {remote_ip or 'an unknown address'}).\n\n"
        "If the user is reaching for their account, confirm who they are and unlock it in the\n"
        "console or with 'carewire user unlock'. If not, someone may be guessing passwords:\n"
        "the audit trail lists the attempts and their addresses.\n"
    )
    return subject, body


class LockoutNotifier:
    """Records each lock and mails the system administrators (tasks it owns)."""

    def __init__(
        self,
        audit: AuditTrail,
        mailer: Mailer | None,
        admins: Callable[[], Awaitable[list[ConsoleUser]]],
    ) -> None:
        """Record in ``audit``; mail through ``mailer`` (None: record only) to ``admins()``."""
        self._audit = audit
        self._mailer = mailer
        self._admins = admins
        self._tasks: set[asyncio.Task[int]] = set()

    async def locked(self, login: str, where: str, remote_ip: str, failures: int) -> None:
        """An account was locked: audit it now, mail about it in the background."""
        await self._audit.record(
            AuditEvent(
                actor="system",
                channel=_CHANNELS.get(where, Channel.XMPP),
                action="account.locked",
                target=login,
                outcome=Outcome.SUCCESS,
                remote_ip=remote_ip,
                details={"failed_logins": failures, "via": where},
            )
        )
        if self._mailer is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._mail(login, where, remote_ip, failures), name="lockout-notice"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mail(self, login: str, where: str, remote_ip: str, failures: int) -> int:
        assert self._mailer is not None
        subject, body = lockout_message(login, where, remote_ip, failures)
        sent = 0
        try:
            users = await self._admins()
        except Exception:  # supervisor of its own task: the lock itself is recorded already
            log.exception("the administrators could not be listed for a lockout notice")
            return 0
        for user in users:
            if user.role is not Role.SYSTEM_ADMIN or not user.email or user.is_locked:
                continue
            try:
                await self._mailer.send(user.email, subject, body)
                sent += 1
            except MailError as exc:
                log.warning("lockout notice to console user %s not sent: %s", user.id, exc)
        log.info("lockout of %s reported to %d administrator(s)", login, sent)
        return sent

    async def drain(self) -> None:
        """Wait for the notices under way (tests, and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
