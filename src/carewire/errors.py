"""The error root of Carewire.

Every domain error derives from :class:`CarewireError` and carries a
machine-readable ``condition`` (an RFC 6120 condition name for XMPP) or
``code`` (for HTTP/API clients). Errors are raised, never returned, and are
translated only at the edges (net → stream error, router → stanza error,
web → problem+json).
"""

from __future__ import annotations


class CarewireError(Exception):
    """Root of all Carewire errors."""

    code: str = "internal-error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(CarewireError):
    """The configuration is invalid; the message names the bad key."""

    code = "bad-config"


class NotFoundError(CarewireError):
    """A named thing (account, record, …) does not exist."""

    code = "not-found"


class ConflictError(CarewireError):
    """A write conflicts with existing data (duplicate key, …)."""

    code = "conflict"


class ValidationError(CarewireError):
    """Input failed validation; the message says which field and why."""

    code = "invalid"


class ForbiddenError(CarewireError):
    """The caller is known but may not do this (HTTP 403): a read-only role writing, …"""

    code = "forbidden"


class GoneError(CarewireError):
    """A one-time thing (a mailed link) existed but is used up, withdrawn or expired (HTTP 410)."""

    code = "gone"


class UnavailableError(CarewireError):
    """A part the request needs is not running here (HTTP 503)."""

    code = "unavailable"
