"""Logging set-up with a redaction safety net (no PHI, passwords or tokens in logs).

Code never logs message bodies or credentials in the first place; the filter
here masks anything that still looks like one (``<body>…</body>``,
``password=…``) before it reaches a handler.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar

#: The connection a log line belongs to ("-" outside connection handling); the
#: network layer sets it for the work it does on behalf of one connection.
connection_id: ContextVar[str] = ContextVar("connection_id", default="-")

_PATTERNS = [
    (re.compile(r"<body\b[^>]*>.*?</body>", re.S), "<body>[redacted]</body>"),
    (re.compile(r"(?i)(password|passwd|pin|token|secret)(\s*[=:]\s*)\S+"), r"\1\2[redacted]"),
]


class ContextFilter(logging.Filter):
    """Adds ``%(conn)s``: the id of the connection the work belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.conn = connection_id.get()
        return True


class RedactingFilter(logging.Filter):
    """Masks bodies and credentials in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        redacted = msg
        for pattern, repl in _PATTERNS:
            redacted = pattern.sub(repl, redacted)
        if redacted != msg:
            record.msg, record.args = redacted, None
        return True


def setup(level: str = "info") -> None:
    """Configure the root logger for the server and the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s [%(conn)s] %(name)s: %(message)s")
    )
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "asyncio", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
