"""Small builders of test data for the storage tests."""

from __future__ import annotations

from datetime import UTC, datetime

from carewire.core.stores import NewAccount, ScramCredential


def cred(mechanism: str = "SCRAM-SHA-256", seed: bytes = b"k") -> ScramCredential:
    """A made-up SCRAM credential."""
    return ScramCredential(
        mechanism=mechanism,
        salt=b"salt-" + seed,
        iterations=4096,
        stored_key=b"stored-" + seed,
        server_key=b"server-" + seed,
    )


def new_account(login: str, **kwargs: str) -> NewAccount:
    """A :class:`NewAccount` with SHA-1 and SHA-256 credentials."""
    seed = login.encode()
    return NewAccount(
        login=login, credentials=[cred("SCRAM-SHA-1", seed), cred("SCRAM-SHA-256", seed)], **kwargs
    )


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
