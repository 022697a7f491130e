"""The XMPP kernel: hook bus, IQ registry, sessions, router, accounts and the features.

Built by the composition root (:mod:`carewire.assembly`), for the server
(with real listeners) and the feature test harness (with recording sinks
instead of sockets); services from outside the kernel reach features only
through ``ctx.provide`` there.
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
from carewire.xmpp.sasl import DEFAULT_ITERATIONS

log = logging.getLogger(__name__)

#: The standard XMPP features (RFC 6120/6121 and XEPs): they need no data platform.
IM_FEATURES: tuple[str, ...] = (
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
    "pep",
    "federation",
)
#: The clinical features, built on the data platform and the XMPP adapter's door (the
#: organisation directory's five next: its policy, roster, search, groups and PIN; file
#: sharing last, after the expiry feature whose lifetimes it reads).
CLINICAL_FEATURES: tuple[str, ...] = (
    "tracking",
    "mam",
    "moderation",
    "expiry",
    "clinical_presence",
    "client_settings",
    "bookmarks",
    "coverage",
    "alerting",
    "directory_policy",
    "directory_roster",
    "search",
    "groups",
    "pin",
    "upload",
    "push",
    "webpush",
)
#: Every feature, in load order: a feature's ``setup`` may ``require`` what an earlier one
#: provides, so :meth:`Kernel.load_features` always loads in this order.
DEFAULT_FEATURES: tuple[str, ...] = IM_FEATURES + CLINICAL_FEATURES
#: COMPAT(#10): feature names of earlier releases, still accepted in ``xmpp.features``.
RENAMED_FEATURES = {"alerts": "alerting", "chat_gateway": "alerting"}


class Kernel:
    """Everything of the XMPP server that is not I/O."""

    def __init__(
        self,
        *,
        domain: str,
        stores: Stores,
        config: FeatureConfig | None = None,
        clock: Clock | None = None,
        scram_iterations: int = DEFAULT_ITERATIONS,
        components: frozenset[str] = frozenset(),
    ) -> None:
        self.hosts = Hosts(domain=domain, components=components)
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
        self.features: list[str] = []

    def load_features(self, names: Sequence[str] = DEFAULT_FEATURES) -> None:
        """Import ``carewire.features.<name>`` and run its ``setup(ctx)`` for each name.

        Features load in the order of :data:`DEFAULT_FEATURES` whatever the
        order of ``names`` (so providers come before those that require them),
        each once.

        Raises:
            ConfigError: An unknown feature name, or a feature needing a
                service that nothing loaded provides.
        """
        for name in _in_load_order(names):
            try:
                module = importlib.import_module(f"carewire.features.{name}")
            except ModuleNotFoundError as exc:
                if exc.name == f"carewire.features.{name}":
                    raise ConfigError(f"features.enabled: unknown feature {name!r}") from None
                raise
            self.ctx.loading = name
            try:
                module.setup(self.ctx)
            finally:
                self.ctx.loading = ""
            self.features.append(name)
            log.debug("feature loaded: %s", name)

    def stream_features(self, phase: StreamPhase) -> tuple[Element, ...]:
        """The extra ``<stream:features/>`` children the features advertise at ``phase``."""
        return tuple(build() for build in self.ctx.stream_features[phase])


def _in_load_order(names: Sequence[str]) -> list[str]:
    """``names`` (old names translated), without repeats, known ones in load order first."""
    wanted: dict[str, None] = {}
    for name in names:
        new = RENAMED_FEATURES.get(name)
        if new is not None:
            log.warning("feature %r is now called %r", name, new)
        wanted[new or name] = None
    rank = {name: i for i, name in enumerate(DEFAULT_FEATURES)}
    return sorted(wanted, key=lambda n: rank.get(n, len(rank)))
