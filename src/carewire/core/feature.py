"""The feature API: what a feature module may use, and how it registers itself.

A feature is a module of :mod:`carewire.features` with a ``setup(ctx)``
function that only registers things on the :class:`FeatureContext`: hook
handlers, IQ handlers, disco features, stream features and periodic jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from xml.etree.ElementTree import Element

from carewire.clock import Clock
from carewire.core.durability import Durability
from carewire.core.events import IqRequest
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.sessions import SessionManager
from carewire.core.stores import Stores

if TYPE_CHECKING:
    from carewire.core.accounts import AccountService
    from carewire.core.router import Router

log = logging.getLogger(__name__)

T = TypeVar("T")

IqHandler = Callable[[IqRequest], Awaitable[Element | None]]
# Pre-authentication IQ handler (XEP-0077 registration): (stanza, remote_ip) → payload.
PreAuthIqHandler = Callable[[Element, str], Awaitable[Element | None]]


class IqTarget(StrEnum):
    """Which address an IQ handler answers for."""

    HOST = "host"  # to the server itself (to=DOMAIN)
    ACCOUNT = "account"  # to the sender's own account (no 'to', or to=own bare JID)
    BARE = "bare"  # to another account's bare JID, answered by the server on its behalf
    ROOM = "room"  # to a room's bare JID on chat.DOMAIN (dispatched by the room service)


class StreamPhase(StrEnum):
    """When a stream feature is advertised."""

    PRE_AUTH = "pre-auth"
    POST_AUTH = "post-auth"


class IqRegistry:
    """IQ handlers by (target, type, payload tag)."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[IqTarget, str, str], IqHandler] = {}
        self._preauth: dict[str, PreAuthIqHandler] = {}

    def register(
        self, tag: str, handler: IqHandler, *, types: tuple[str, ...], targets: tuple[IqTarget, ...]
    ) -> None:
        """Answer IQs of ``types`` whose payload is ``tag`` (Clark notation) at ``targets``."""
        for t in types:
            for target in targets:
                key = (target, t, tag)
                if key in self._handlers:
                    raise ValueError(f"two IQ handlers for {key}")
                self._handlers[key] = handler

    def lookup(self, target: IqTarget, iq_type: str, tag: str) -> IqHandler | None:
        """The handler for an IQ, or None."""
        return self._handlers.get((target, iq_type, tag))

    def register_preauth(self, tag: str, handler: PreAuthIqHandler) -> None:
        """Answer IQs on a not-yet-authenticated stream (only XEP-0077 needs this)."""
        self._preauth[tag] = handler

    def lookup_preauth(self, tag: str) -> PreAuthIqHandler | None:
        """The pre-auth handler for ``tag``, or None."""
        return self._preauth.get(tag)


@dataclass(slots=True)
class DiscoRegistry:
    """Service discovery (XEP-0030) contributions of the features."""

    server_features: set[str] = field(default_factory=set)
    account_features: set[str] = field(default_factory=set)
    server_identities: list[tuple[str, str, str]] = field(default_factory=list)

    def add_server_feature(self, var: str) -> None:
        """Advertise a feature of the server (disco#info to DOMAIN)."""
        self.server_features.add(var)

    def add_account_feature(self, var: str) -> None:
        """Advertise a feature of every account (disco#info to a bare JID)."""
        self.account_features.add(var)

    def add_server_identity(self, category: str, type_: str, name: str = "") -> None:
        """Advertise an identity of the server."""
        self.server_identities.append((category, type_, name))


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureConfig:
    """Settings the features read (from ``carewire.toml`` via the server)."""

    offline_ttl: timedelta = timedelta(days=7)
    offline_max_per_user: int = 1000
    register_enabled: bool = False
    register_limit: int = 5  # new accounts per address …
    register_window: float = 3600.0  # … per this many seconds
    version_visible: bool = False
    server_name: str = "Carewire"
    server_version: str = "0.1.0"
    ping_interval: float = 300.0
    ping_timeout: float = 60.0
    account_check_interval: float = 30.0  # how soon sessions of removed accounts end
    # XEP-0198: how long a session whose connection broke waits for resumption (0: never).
    smacks_resume_timeout: float = 300.0
    smacks_max_unacked: int = 1000  # unacknowledged stanzas kept per session, at most
    csi_max_held: int = 500  # XEP-0352: stanzas held back for an inactive client, at most


@dataclass(slots=True)
class PeriodicJob:
    """A job the server runs every ``interval`` seconds (owned by the server's task group)."""

    name: str
    interval: float
    run: Callable[[], Awaitable[None]]


@dataclass(slots=True, kw_only=True)
class FeatureContext:
    """Everything a feature's ``setup`` may register with or use."""

    hosts: Hosts
    hooks: HookBus
    iq: IqRegistry
    disco: DiscoRegistry
    sessions: SessionManager
    stores: Stores
    clock: Clock
    config: FeatureConfig
    router: Router
    accounts: AccountService
    durability: Durability = field(default_factory=lambda: Durability())
    stream_features: dict[StreamPhase, list[Callable[[], Element]]] = field(
        default_factory=lambda: {StreamPhase.PRE_AUTH: [], StreamPhase.POST_AUTH: []}
    )
    jobs: list[PeriodicJob] = field(default_factory=list)
    services: dict[type[Any], Any] = field(default_factory=dict)

    def provide(self, service: T) -> T:
        """Share a service object between features, keyed by its type."""
        self.services[type(service)] = service
        return service

    def require(self, kind: type[T]) -> T | None:
        """The service of type ``kind`` another feature provided, or None."""
        found = self.services.get(kind)
        return found if isinstance(found, kind) else None

    def add_stream_feature(self, phase: StreamPhase, build: Callable[[], Element]) -> None:
        """Advertise an element in ``<stream:features/>`` at ``phase``."""
        self.stream_features[phase].append(build)

    def every(self, name: str, interval: float, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run`` every ``interval`` seconds while the server runs."""
        self.jobs.append(PeriodicJob(name=name, interval=interval, run=run))
