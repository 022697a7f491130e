"""What the push store keeps, and the store's interface (implemented in storage/push.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from carewire.push.model import (
    AttemptState,
    Decision,
    Outcome,
    PushPriority,
    PushService,
    RegistrationState,
    advance,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A device token registered with the app server (the token is never logged)."""

    id: int
    node: str
    login: str
    device: str  # DEVICES name: login/resource
    service: PushService
    token: str
    topic: str
    state: RegistrationState
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRegistration:
    """A registration to store."""

    node: str
    secret_hash: str
    login: str
    device: str
    service: PushService
    token: str
    topic: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PushEnable:
    """XEP-0357: an account enabled pushes to ``node`` at ``jid`` from ``resource``."""

    login: str
    resource: str
    jid: str
    node: str
    secret: str
    enabled_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One push, tracked like a delivery."""

    id: int
    registration_id: int | None
    login: str
    device: str
    service: str
    state: AttemptState
    priority: PushPriority
    opaque_id: str
    provider_id: str
    status: int | None
    reason: str
    tries: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptChange:
    """A new state of an attempt after a try."""

    state: AttemptState
    status: int | None
    reason: str
    provider_id: str
    tries: int
    at: datetime

    @classmethod
    def after(cls, decision: Decision, outcome: Outcome, tries: int, at: datetime) -> AttemptChange:
        """The attempt's state after a try that ``outcome`` answered and ``decision`` judged."""
        return cls(
            state=advance(AttemptState.QUEUED, decision),
            status=outcome.status or None,
            reason=outcome.reason,
            provider_id=outcome.provider_id,
            tries=tries,
            at=at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAttempt:
    """An attempt to record, in the state of its first outcome."""

    registration: Registration | None
    login: str
    device: str
    priority: PushPriority
    opaque_id: str  # unique: later changes name the attempt by it
    change: AttemptChange
    registration_id: int | None = None  # without ``registration``: a web push subscription's
    service: str = ""  # without ``registration``: ``webpush``


class PushStore(Protocol):
    """Registrations, enables and attempts."""

    async def add_registration(self, new: NewRegistration) -> Registration:
        """Store a registration (one per node).

        Raises:
            NotFoundError: ``new.login`` has no account.
        """

    async def registration(self, node: str) -> tuple[Registration, str] | None:
        """The registration of ``node`` and its secret's hash, or None."""

    async def registrations_of(self, login: str) -> list[Registration]:
        """The account's registrations, oldest first."""

    async def mark_registration(
        self, reg_id: int, state: RegistrationState, reason: str, at: datetime
    ) -> None:
        """Change a registration's state."""

    async def delete_registration(self, login: str, node: str) -> bool:
        """Remove one of the account's registrations; False if there was none."""

    async def add_enable(self, enable: PushEnable) -> None:
        """Store (or replace) an enable."""

    async def remove_enables(self, login: str, jid: str, node: str | None) -> int:
        """Remove the account's enables at ``jid`` (one node, or all); how many went."""

    async def enables(self) -> list[PushEnable]:
        """Every enable (the feature keeps them in memory)."""

    async def save_attempts(
        self, new: Sequence[NewAttempt], changes: Sequence[tuple[str, AttemptChange]]
    ) -> None:
        """Insert ``new`` attempts, then apply ``changes`` (by opaque id), in one transaction."""

    async def attempts(
        self, *, login: str | None = None, state: AttemptState | None = None, limit: int = 100
    ) -> Sequence[Attempt]:
        """Recent attempts, newest first."""
