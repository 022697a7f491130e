"""Mail to system administrators when the CA-signed certificate needs replacing (real SMTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carewire.mail import SmtpMailer
from carewire.security.cert_manager import CertificateDetails, CheckOutcome, CheckResult
from carewire.security.cert_notify import notify_admins
from carewire.security.certificates import CertStatus
from carewire.security.console_model import ConsoleUser, Role
from tests.mailserver import SmtpServer

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _result(outcome: CheckOutcome, days_left: int) -> CheckResult:
    details = CertificateDetails(
        domain="h.example",
        status=CertStatus.EXPIRES_SOON if days_left > 0 else CertStatus.EXPIRED,
        subject="CN=h.example",
        issuer="CN=Test CA",
        not_before=NOW - timedelta(days=300),
        not_after=NOW + timedelta(days=days_left),
        is_self_signed=False,
        fingerprint="ab" * 32,
        names=("h.example",),
    )
    return CheckResult(outcome=outcome, details=details, days_left=days_left)


def _user(uid: int, role: Role, email: str | None, *, locked: bool = False) -> ConsoleUser:
    return ConsoleUser(
        id=uid,
        username=f"u{uid}",
        email=email,
        role=role,
        is_locked=locked,
        created_at=NOW,
        password_changed_at=NOW,
    )


USERS = [
    _user(1, Role.SYSTEM_ADMIN, "it-lead@h.example"),
    _user(2, Role.SYSTEM_ADMIN, None),  # no address
    _user(3, Role.SYSTEM_ADMIN, "gone@h.example", locked=True),
    _user(4, Role.AUDITOR, "auditor@h.example"),
    _user(5, Role.ORG_ADMIN, "org@h.example"),
    _user(6, Role.SYSTEM_ADMIN, "oncall@h.example"),
]


async def test_expiring_certificate_mails_system_administrators(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, starttls=False, sender="carewire@h.example"
    )
    assert await notify_admins(_result(CheckOutcome.EXPIRING, 12), USERS, mailer) == 2
    rcpts = sorted(r for _, rs in smtp_server.inbox.envelopes for r in rs)
    assert rcpts == ["it-lead@h.example", "oncall@h.example"]
    msg = smtp_server.inbox.messages[0]
    assert msg["Subject"] == "The XMPP certificate of h.example expires in 12 day(s)"
    body = msg.get_body()
    assert body is not None and "never replaced automatically" in body.get_content()


async def test_expired_and_good_certificates(smtp_server: SmtpServer) -> None:
    mailer = SmtpMailer(
        smtp_server.host, smtp_server.port, starttls=False, sender="carewire@h.example"
    )
    assert await notify_admins(_result(CheckOutcome.GOOD, 200), USERS, mailer) == 0
    assert await notify_admins(_result(CheckOutcome.RENEWED, 365), USERS, mailer) == 0
    assert smtp_server.inbox.messages == []
    assert await notify_admins(_result(CheckOutcome.EXPIRED, -1), USERS, mailer) == 2
    assert smtp_server.inbox.messages[0]["Subject"] == (
        "The XMPP certificate of h.example has expired"
    )


async def test_an_unreachable_mail_server_is_logged_not_raised() -> None:
    mailer = SmtpMailer("127.0.0.1", 1, starttls=False, sender="c@h.example", timeout=2)
    assert await notify_admins(_result(CheckOutcome.EXPIRING, 3), USERS, mailer) == 0
