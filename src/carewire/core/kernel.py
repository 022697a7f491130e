"""The XMPP kernel assembled: hook bus, IQ registry, sessions, router, features.

Used by :mod:`carewire.server` (with real listeners) and by the feature test
harness (with recording sinks instead of sockets).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from xml.etree.ElementTree import Element

from carewire.clock import Clock, SystemClock
from carewire.core.accounts import AccountService
from carewire.core.feature import (
    DiscoRegistry,
    FeatureConfig,
    FeatureContext,
    IqRegistry,
    StreamPhase,
)
from carewire.core.hooks import HookBus
from carewire.core.hosts import Hosts
from carewire.core.router import Router
from carewire.core.sessions import SessionManager
from carewire.core.stores import Stores
from carewire.errors import ConfigError

log = logging.getLogger(__name__)

# The default feature list; order only matters for readability (hooks carry priorities).
DEFAULT_FEATURES: tuple[str, ...] = (
    "c2s",
    "message",
    "offline",
    "roster",
    "presence",
    "disco",
    "ping",
    "vcard",
    "private",
    "blocking",
    "version",
    "time",
    "register",
    "carbons",
    "csi",
    "smacks",
    "muc",
    "tracking",
    "mam",
    "alerts",
    "clinical_presence",
    "client_settings",
    "chat_gateway",
    "bookmarks",
)


class Kernel:
    """Everything of the XMPP server that is not I/O."""

    def __init__(
        self,
        *,
        domain: str,
        stores: Stores,
        config: FeatureConfig | None = None,
        clock: Clock | None = None,
        scram_iterations: int = 4096,
        services: Sequence[object] = (),
    ) -> None:
        self.hosts = Hosts(domain=domain)
        self.hooks = HookBus()
        self.iq = IqRegistry()
        self.disco = DiscoRegistry()
        self.sessions = SessionManager()
        self.stores = stores
        self.clock = clock or SystemClock()
        self.config = config or FeatureConfig()
        self.router = Router(hosts=self.hosts, hooks=self.hooks, sessions=self.sessions, iq=self.iq)
        self.accounts = AccountService(
            stores, hooks=self.hooks, sessions=self.sessions, iterations=scram_iterations
        )
        self.ctx = FeatureContext(
            hosts=self.hosts,
            hooks=self.hooks,
            iq=self.iq,
            disco=self.disco,
            sessions=self.sessions,
            stores=stores,
            clock=self.clock,
            config=self.config,
            router=self.router,
            accounts=self.accounts,
        )
        for service in services:  # shared with features: ctx.require(type)
            self.ctx.provide(service)
        self.features: list[str] = []

    def load_features(self, names: Sequence[str] = DEFAULT_FEATURES) -> None:
        """Import ``carewire.features.<name>`` and run its ``setup(ctx)`` for each name."""
        for name in names:
            try:
                module = importlib.import_module(f"carewire.features.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"carewire.features.{name}":
                    raise ConfigError(f"features.enabled: unknown feature {name!r}") from None
                raise
            module.setup(self.ctx)
            self.features.append(name)
            log.debug("feature loaded: %s", name)

    def stream_features(self, phase: StreamPhase) -> tuple[Element, ...]:
        """The extra ``<stream:features/>`` children the features advertise at ``phase``."""
        return tuple(build() for build in self.ctx.stream_features[phase])
