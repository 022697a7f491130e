"""Outgoing mail (RFC 5322 messages): to an SMTP server, or to an outbox folder.

The console mails password-reset links and confirmations. An installation
without a mail server (the embedded default) gets every message written as
an ``.eml`` file in ``DATA/outbox/``, readable with ``carewire mail outbox``
or any mail program. With ``[mail] smtp_host`` set, messages go to that SMTP
server (RFC 5321), with STARTTLS (RFC 3207) unless turned off.

Message bodies may hold one-time links: they are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from carewire.config import Config
from carewire.errors import CarewireError

log = logging.getLogger(__name__)

#: Seconds an SMTP conversation may take (connect, STARTTLS, login, send).
SMTP_TIMEOUT = 30.0


class MailError(CarewireError):
    """A message could not be handed over (SMTP refused it, the server is down, a disk error)."""

    code = "mail-failed"


class Mailer(Protocol):
    """Something that sends mail."""

    async def send(self, to: str, subject: str, body: str) -> None:
        """Send a plain-text message to ``to``.

        Raises:
            MailError: It could not be sent.
        """


def compose(*, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """An RFC 5322 message with Date and Message-ID, UTF-8 plain text."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    return msg


class OutboxMailer:
    """Writes each message as an ``.eml`` file (mode 0600) in a folder."""

    def __init__(self, directory: Path, *, sender: str = "carewire@localhost") -> None:
        """Write into ``directory`` (created mode 0700 when first needed) as ``sender``."""
        self.directory = directory
        self.sender = sender

    async def send(self, to: str, subject: str, body: str) -> None:
        """Write the message atomically: a reader never sees half a file.

        Raises:
            MailError: The file could not be written.
        """
        msg = compose(sender=self.sender, to=to, subject=subject, body=body)
        try:
            path = await asyncio.to_thread(self._write, msg.as_bytes())
        except OSError as exc:
            raise MailError(f"cannot write to the outbox {self.directory}: {exc}") from None
        log.info("mail written to the outbox: %s", path.name)

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.directory / f"{stamp}-{secrets.token_hex(4)}.eml"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMail:
    """A message :class:`MemoryMailer` kept."""

    to: str
    subject: str
    body: str


class MemoryMailer:
    """Keeps messages in memory (tests, and processes that are told to mail nothing).

    Attributes:
        sent: Every message accepted, oldest first.
        refuse: Addresses whose messages are refused with :class:`MailError`.
    """

    def __init__(self) -> None:
        self.sent: list[SentMail] = []
        self.refuse: set[str] = set()

    async def send(self, to: str, subject: str, body: str) -> None:
        """Keep the message (or refuse it when ``to`` is in :attr:`refuse`).

        Raises:
            MailError: ``to`` is refused.
        """
        if to in self.refuse:
            raise MailError(f"the recipient {to} was refused")
        self.sent.append(SentMail(to=to, subject=subject, body=body))

    def to(self, address: str) -> list[SentMail]:
        """The messages sent to ``address``."""
        return [m for m in self.sent if m.to == address]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry:
    """One message in the outbox.

    Attributes:
        path: Its file.
        to: The recipient.
        subject: The subject.
        date: The Date header as written.
    """

    path: Path
    to: str
    subject: str
    date: str


def read_outbox(directory: Path) -> list[OutboxEntry]:
    """The outbox's messages, oldest first (file names start with the UTC time)."""
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as f:
            headers = BytesParser(policy=policy.default).parse(f, headersonly=True)
        entries.append(
            OutboxEntry(
                path=path,
                to=str(headers.get("To", "")),
                subject=str(headers.get("Subject", "")),
                date=str(headers.get("Date", "")),
            )
        )
    return entries


class SmtpMailer:
    """Sends through an SMTP server (stdlib :mod:`smtplib` in a worker thread)."""

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        starttls: bool = True,
        user: str = "",
        password: str = "",
        sender: str,
        timeout: float = SMTP_TIMEOUT,
    ) -> None:
        """Talk to ``host:port``; log in as ``user`` when given (only after STARTTLS)."""
        self.host = host
        self.port = port
        self.starttls = starttls
        self.user = user
        self._password = password
        self.sender = sender
        self.timeout = timeout

    def __repr__(self) -> str:
        # Never shows the password.
        return f"SmtpMailer({self.host!r}, {self.port}, starttls={self.starttls})"

    async def send(self, to: str, subject: str, body: str) -> None:
        """Hand the message to the SMTP server.

        Raises:
            MailError: The server could not be reached in time or refused the message.
        """
        msg = compose(sender=self.sender, to=to, subject=subject, body=body)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, msg), self.timeout + 5)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            raise MailError(
                f"cannot send mail through {self.host}:{self.port}: {type(exc).__name__}"
            ) from None
        log.info("mail handed to %s:%d", self.host, self.port)

    def _send(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self._password)
            smtp.send_message(msg)


def mailer_from_config(cfg: Config) -> Mailer:
    """The configured mailer: SMTP when ``mail.smtp_host`` is set, else the outbox."""
    m = cfg.mail
    if not m.smtp_host:
        return OutboxMailer(cfg.outbox_dir, sender=cfg.mail_sender)
    return SmtpMailer(
        m.smtp_host,
        m.smtp_port,
        starttls=m.smtp_starttls,
        user=m.smtp_user,
        password=m.smtp_password,
        sender=cfg.mail_sender,
    )
