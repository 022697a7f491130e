"""A real SMTP server for the mail tests (aiosmtpd on 127.0.0.1), and reading mail back.

Used by the mail, certificate-notification and console tests; their
``conftest.py`` (or module) imports the :func:`smtp_server` fixture.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def read_mails(outbox: Path) -> list[EmailMessage]:
    """Every message in ``outbox``, oldest first."""
    mails = []
    for path in sorted(outbox.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        mails.append(msg)
    return mails


def text_of(msg: EmailMessage) -> str:
    """A message's text with plain newlines (on disk and on the wire lines end in CRLF)."""
    content = msg.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


# -- a real SMTP server ---------------------------------------------------------------


@dataclass(slots=True)
class Inbox:
    """What the test SMTP server received."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        """Keep the message (aiosmtpd handler hook)."""
        data = envelope.original_content or b""
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.received.set()
        return "250 Message accepted"


class _AnyPortController(Controller):
    """A controller that may listen on port 0 (it learns the real port before its self-test)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """The test SMTP server's address and what it received."""

    host: str
    port: int
    inbox: Inbox


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 (a free port), collecting messages."""
    inbox = Inbox()
    controller = _AnyPortController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, inbox)
    finally:
        controller.stop()
