"""Logging set-up with a redaction safety net (no PHI, passwords or tokens in logs).

Code never logs message bodies or credentials in the first place; the filter
here masks anything that still looks like one (``<body>…</body>``,
``password=…``) before it reaches a handler. It also escapes control
characters (CR, LF, ESC, …, and the Unicode line separators), so that text a
client chose (a login, a resource, a header) can never start a forged line of
its own in a log file.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

#: The connection a log line belongs to ("-" outside connection handling); the
#: network layer sets it for the work it does on behalf of one connection.
connection_id: ContextVar[str] = ContextVar("connection_id", default="-")

_PATTERNS = [
    (re.compile(r"<body\b[^>]*>.*?</body>", re.S), "<body>[redacted]</body>"),
    (re.compile(r"(?i)(password|passwd|pin|token|secret)(\s*[=:]\s*)\S+"), r"\1\2[redacted]"),
]


# C0 and C1 controls, DEL, and the characters some viewers break lines at.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    r"""``text`` with each control character written as an escape (``\n``, ``\x1b``)."""
    return _CONTROL.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class ContextFilter(logging.Filter):
    """Adds ``%(conn)s``: the id of the connection the work belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = connection_id.get()
        return True


class RedactingFilter(logging.Filter):
    """Masks bodies and credentials in the formatted message and escapes control characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        redacted = msg
        for pattern, repl in _PATTERNS:
            redacted = pattern.sub(repl, redacted)
        redacted = escape_controls(redacted)
        if redacted != msg:
            record.msg, record.args = redacted, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``.

    Also ``connection`` (the connection id, when there is one) and ``exception``
    (the traceback, when one is attached). The message has been through the
    redaction filter like the text format's.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        body: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        conn = getattr(record, "conn", "-")
        if conn != "-":
            body["connection"] = str(conn)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


#: The values of ``log.format``.
FORMATS = ("text", "json")


def setup(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger for the server and the CLI (``fmt``: "text" or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s [%(conn)s] %(name)s: %(message)s")
        )
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request's URL at INFO: push endpoints (APNs device paths, Web Push
    # subscription URLs) are secrets and must not reach the log.
    for noisy in ("aiosqlite", "asyncio", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
