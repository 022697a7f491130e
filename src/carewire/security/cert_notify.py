"""Mail to the system administrators when the CA-signed XMPP certificate is about to expire.

The daily certificate check reports a CA-signed certificate that expires
within a month (it is never replaced automatically); this tells the people
who can upload a new one, by mail, every day until it is replaced.
"""

from __future__ import annotations

import logging

from carewire.mail import Mailer, MailError
from carewire.security.cert_manager import CheckOutcome, CheckResult
from carewire.security.console_model import ConsoleUser, Role

log = logging.getLogger(__name__)

#: Check outcomes that need a person.
NEEDS_ACTION = frozenset({CheckOutcome.EXPIRING, CheckOutcome.EXPIRED})


def expiry_message(result: CheckResult) -> tuple[str, str]:
    """Subject and body of the warning."""
    d = result.details
    if result.outcome is CheckOutcome.EXPIRED:
        subject = f"The XMPP certificate of {d.domain} has expired"
        when = f"It expired on {d.not_after:%Y-%m-%d %H:%M} UTC."
    else:
        subject = f"The XMPP certificate of {d.domain} expires in {result.days_left} day(s)"
        when = f"It expires on {d.not_after:%Y-%m-%d %H:%M} UTC."
    body = (
        f"{when}\n\n"
        f"Subject: {d.subject}\nIssuer: {d.issuer}\nSHA-256: {d.fingerprint}\n\n"
        "A certificate signed by a certificate authority is never replaced automatically.\n"
        "Create a CSR and upload the signed certificate in the console (Certificates) or with\n"
        "'carewire cert csr' and 'carewire cert upload'.\n"
    )
    return subject, body


async def notify_admins(result: CheckResult, users: list[ConsoleUser], mailer: Mailer) -> int:
    """Mail every system administrator with an address; returns how many were mailed."""
    if result.outcome not in NEEDS_ACTION:
        return 0
    subject, body = expiry_message(result)
    sent = 0
    for user in users:
        if user.role is not Role.SYSTEM_ADMIN or not user.email or user.is_locked:
            continue
        try:
            await mailer.send(user.email, subject, body)
            sent += 1
        except MailError as exc:  # one unreachable address must not stop the others
            log.warning("certificate warning to console user %s not sent: %s", user.id, exc)
    return sent
