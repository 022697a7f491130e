"""The feature API: what a feature module may use, and how it registers itself.

A feature is a module of :mod:`carewire.features` with a ``setup(ctx)``
function that only registers things on the :class:`FeatureContext`: hook
handlers, IQ handlers, nonza handlers, disco features, stream features and
periodic jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast
from xml.etree.ElementTree import Element

from carewire.clock import Clock
from carewire.core.accounts import AccountService
from carewire.core.durability import Durability
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.iq import IqHandler, IqRegistry, IqTarget, PreAuthIqHandler
from carewire.core.router import Router
from carewire.core.sessions import Session, SessionManager, StanzaSink
from carewire.core.stores import Stores
from carewire.errors import ConfigError
from carewire.xmpp.jid import JID
from carewire.xmpp.stream import C2SStream

__all__ = [
    "ClientLink",
    "ConnectionLost",
    "DiscoRegistry",
    "FeatureConfig",
    "FeatureContext",
    "IqHandler",
    "IqRegistry",
    "IqTarget",
    "NonzaHandler",
    "NonzaRegistry",
    "PeriodicJob",
    "PreAuthIqHandler",
    "StreamPhase",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClientLink(Protocol):
    """One client connection as a nonza handler sees it (a :mod:`carewire.core.c2s` connection)."""

    @property
    def stream(self) -> C2SStream:
        """The connection's stream: nonzas are answered through it."""

    @property
    def sink(self) -> StanzaSink:
        """Where stanzas for this connection go."""

    @property
    def session(self) -> Session | None:
        """The session bound on this connection, if any."""

    def adopt(self, session: Session) -> StanzaSink:
        """Serve ``session`` on this connection from now on; returns its former sink."""


E = TypeVar("E")
NonzaHandler = Callable[[ClientLink, E], Awaitable[None]]


class NonzaRegistry:
    """Handlers of the nonzas of client streams (XEP-0198, XEP-0352), by stream event type.

    A client stream accepts the nonzas of a namespace only once a feature
    registered a handler in it; elsewhere they are unknown elements.
    """

    def __init__(self) -> None:
        self._handlers: dict[type[Any], NonzaHandler[Any]] = {}
        self._namespaces: set[str] = set()
        self._frozen: frozenset[str] = frozenset()

    def register(self, namespace: str, kind: type[E], handler: NonzaHandler[E]) -> None:
        """Hand the stream events of type ``kind`` (nonzas of ``namespace``) to ``handler``."""
        if kind in self._handlers:
            raise ValueError(f"two nonza handlers for {kind.__name__}")
        self._handlers[kind] = handler
        self._namespaces.add(namespace)
        self._frozen = frozenset(self._namespaces)

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces whose nonzas client streams accept."""
        return self._frozen  # shared by every stream (not a copy per connection)

    async def dispatch(self, link: ClientLink, event: object) -> bool:
        """Run the handler of ``event``'s type; False when there is none."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return False
        await handler(link, event)
        return True


#: A Bind2 inline handler (XEP-0386): enable a feature for a session being bound;
#: returns what goes into ``<bound/>`` (XEP-0198 ``<enabled/>``), or None.
InlineHandler = Callable[[Session, Element], Awaitable[Element | None]]


class InlineRegistry:
    """The features a client may enable inside a XEP-0386 ``<bind/>``, by element tag."""

    def __init__(self) -> None:
        self._handlers: dict[str, InlineHandler] = {}
        self._vars: list[str] = []

    def register(self, var: str, tags: tuple[str, ...], handler: InlineHandler) -> None:
        """Advertise ``var`` as a Bind2 inline feature; its ``tags`` go to ``handler``."""
        if var not in self._vars:
            self._vars.append(var)
        for tag in tags:
            self._handlers[tag] = handler

    @property
    def vars(self) -> tuple[str, ...]:
        """The inline features advertised (their namespaces)."""
        return tuple(self._vars)

    def lookup(self, tag: str) -> InlineHandler | None:
        """The handler of an inline element, or None (unadvertised: ignored)."""
        return self._handlers.get(tag)


class InlineResume(Protocol):
    """XEP-0198 resumption inside SASL2 ``<authenticate/>`` (provided by stream management)."""

    async def prepare(self, login: str, element: Element) -> tuple[Session | None, Element]:
        """The session ``<resume/>`` names (None: not resumable) and the answer for the success."""

    async def complete(self, link: ClientLink, session: Session) -> None:
        """After the success was sent: move the session to ``link``'s stream."""


class PinGate(Protocol):
    """The directory PIN that unlocks a device's FAST token (provided by the PIN feature)."""

    async def is_required(self, login: str) -> bool:
        """Whether a FAST login of ``login`` must present the PIN (the user has one)."""

    async def matches(self, login: str, pin: str, *, remote_ip: str = "") -> bool:
        """Whether ``pin`` is the user's PIN (nothing counted: the caller counts)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLost:
    """Payload of ``session/connection-lost``: the connection of a bound session ended."""

    session: Session
    stream: C2SStream  # how it ended: closed by the client, or with our stream error


class StreamPhase(StrEnum):
    """When a stream feature is advertised."""

    PRE_AUTH = "pre-auth"
    POST_AUTH = "post-auth"


@dataclass(slots=True)
class DiscoRegistry:
    """Service discovery (XEP-0030) contributions of the features."""

    server_features: set[str] = field(default_factory=set)
    account_features: set[str] = field(default_factory=set)
    server_identities: list[tuple[str, str, str]] = field(default_factory=list)
    account_identities: list[tuple[str, str, str]] = field(default_factory=list)
    # XEP-0128 extensions of an account's disco#info, built at request time.
    account_forms: list[Callable[[], Element]] = field(default_factory=list)
    # Items of an account's disco#items (e.g. its PEP nodes): (requester, account login).
    account_items: list[Callable[[JID, str], Awaitable[list[Element]]]] = field(
        default_factory=list
    )

    def add_server_feature(self, var: str) -> None:
        """Advertise a feature of the server (disco#info to DOMAIN)."""
        self.server_features.add(var)

    def add_account_feature(self, var: str) -> None:
        """Advertise a feature of every account (disco#info to a bare JID)."""
        self.account_features.add(var)

    def add_server_identity(self, category: str, type_: str, name: str = "") -> None:
        """Advertise an identity of the server."""
        self.server_identities.append((category, type_, name))

    def add_account_identity(self, category: str, type_: str, name: str = "") -> None:
        """Advertise an identity of every account (XEP-0163: pubsub/pep)."""
        self.account_identities.append((category, type_, name))

    def add_account_form(self, build: Callable[[], Element]) -> None:
        """Add an XEP-0128 data form to every account's disco#info."""
        self.account_forms.append(build)

    def add_account_items(self, items: Callable[[JID, str], Awaitable[list[Element]]]) -> None:
        """Add to every account's disco#items what ``items(requester, login)`` lists."""
        self.account_items.append(items)


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
    expiry_check_interval: float = 60.0  # longest wait before the next expiry is re-read
    # XEP-0157: (field var, URIs) of the serverinfo form in the server's disco#info.
    contact_addresses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # PEP (docs/pep.md): item size limits, items per node, the OMEMO policy.
    pep_item_max_bytes: int = 65_536
    pep_avatar_max_bytes: int = 196_608
    pep_max_items: int = 256
    pep_max_nodes: int = 256
    e2e_encryption: str = "refuse"  # or "allow"
    e2e_reason: str = ""  # empty: the default text of features/pep/omemo.py
    sasl2_enabled: bool = True  # XEP-0388 SASL2 with Bind2 (XEP-0386)
    fast_token_lifetime: timedelta = timedelta(days=14)  # XEP-0484; zero: FAST off
    fast_rotate_after: timedelta = timedelta(days=1)  # a token this old is replaced at use
    fast_require_pin: bool = True  # a FAST login of a user with a directory PIN needs it


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
    nonzas: NonzaRegistry = field(default_factory=NonzaRegistry)
    bind2: InlineRegistry = field(default_factory=InlineRegistry)
    services: dict[type[Any], Any] = field(default_factory=dict)
    loading: str = ""  # the feature whose setup runs now (named in errors)

    def provide(self, service: T, *, as_type: type[T] | None = None) -> T:
        """Share a service between features, keyed by ``as_type`` (default: its own type).

        The composition root provides the data platform's services and the
        XMPP adapter's door (:mod:`carewire.adapters.xmpp.gateway`) keyed by
        their interface, so features ask for the interface.
        """
        self.services[as_type or type(service)] = service
        return service

    def require(self, kind: type[T]) -> T:
        """The service of type ``kind``; a missing one is a start-up error.

        Raises:
            ConfigError: Nobody provided ``kind`` (a feature that needs it is
                loaded without the feature or platform that provides it).
        """
        found = self.services.get(kind)
        if found is None:
            who = f"feature {self.loading!r}" if self.loading else "a feature"
            raise ConfigError(
                f"{who} needs {kind.__name__}, which nothing loaded before it provides "
                "(a feature missing from the list, or a kernel without the data platform)"
            )
        return cast(T, found)

    def find(self, kind: type[T]) -> T | None:
        """The service of type ``kind`` if provided (for truly optional collaborators)."""
        return cast(T | None, self.services.get(kind))

    def add_stream_feature(self, phase: StreamPhase, build: Callable[[], Element]) -> None:
        """Advertise an element in ``<stream:features/>`` at ``phase``."""
        self.stream_features[phase].append(build)

    def every(self, name: str, interval: float, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run`` every ``interval`` seconds while the server runs."""
        self.jobs.append(PeriodicJob(name=name, interval=interval, run=run))
