"""The data platform assembled: datasets, rules, adapters and tokens on one database.

Both composition roots use it: ``server.py`` (which also starts the rule
engine and the adapters) and the CLI (which reads and writes through the same
services, so validation and rules behave identically).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from carewire.adapters import dataupdate, xmpp
from carewire.adapters.manager import AdapterManager
from carewire.adapters.xmpp.gateway import GatewaySlot
from carewire.clock import Clock, SystemClock
from carewire.config import Config, parse_duration
from carewire.datasets.paths import PathResolver
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.rules.actions import ActionRegistry
from carewire.rules.engine import EngineConfig, RuleEngine
from carewire.rules.service import RuleService
from carewire.security.audit import AuditTrail
from carewire.security.console_auth import ConsoleAccounts
from carewire.security.tokens import TokenService
from carewire.storage import Database, migrate
from carewire.storage.adapters import SqlAdapterStore
from carewire.storage.audit import SqlAuditStore
from carewire.storage.console import SqlConsoleStore
from carewire.storage.datasets import SqlDatasetStore
from carewire.storage.rules import SqlRuleStore
from carewire.storage.tokens import SqlTokenStore


@dataclass(slots=True, kw_only=True)
class Platform:
    """The platform's services on one open database.

    Attributes:
        db: The database (close it with :meth:`close`).
        registry: Dataset definitions.
        datasets: The one service for dataset writes and reads.
        tokens: API tokens.
        adapters: Adapter kinds and instances.
        rules: Rules (validated, compiled per dataset).
        engine: The rules engine, listening to the dataset service (its
            workers run only once :meth:`start` is called).
        audit: The audit trail.
        console: The web console's users, sessions and password resets.
        chat: Where the XMPP server attaches the gateway the XMPP rule actions use.
    """

    db: Database
    registry: Registry
    datasets: DatasetService
    tokens: TokenService
    adapters: AdapterManager
    rules: RuleService
    engine: RuleEngine
    audit: AuditTrail
    console: ConsoleAccounts
    chat: GatewaySlot

    async def start(self, *, scheduler: bool = True) -> None:
        """Start the rules engine (and its scheduler) and the adapters' runtimes."""
        await self.engine.start(scheduler=scheduler)
        await self.adapters.start()

    async def ensure_default_adapters(self, domain: str) -> None:
        """On a new installation, create the XMPP adapter (for ``domain``) and a DataUpdate one."""
        if self.adapters.list():
            return
        await self.adapters.create(
            xmpp.COMPONENT, "XMPP", is_enabled=True, settings={"chat_domain": domain}
        )
        await self.adapters.create(dataupdate.COMPONENT, "DataUpdate", is_enabled=True)

    async def close(self) -> None:
        """Stop workers and runtimes, then release the database."""
        await self.adapters.stop()
        await self.engine.stop()
        await self.db.close()


def platform_services(platform: Platform) -> list[object]:
    """The platform services the XMPP kernel's features may ``require`` (by type)."""
    return [
        platform.registry,
        platform.datasets,
        platform.adapters,
        platform.rules,
        platform.engine,
        platform.audit,
        PathResolver(platform.registry, platform.datasets.store),
    ]


def engine_config(cfg: Config) -> EngineConfig:
    """The rules engine's view of the configuration (``[rules]``)."""
    r = cfg.rules
    return EngineConfig(
        max_depth=r.max_depth,
        action_timeout=parse_duration(r.action_timeout, "rules.action_timeout").total_seconds(),
        tz=zoneinfo.ZoneInfo(r.time_zone),
    )


async def open_platform(
    url: str,
    *,
    clock: Clock | None = None,
    upgrade: bool = True,
    engine_config: EngineConfig | None = None,
) -> Platform:
    """Migrate (unless ``upgrade`` is false), open and load the platform at ``url``.

    The engine is attached to the dataset service, so writes made through the
    returned platform fire rules; call :meth:`Platform.start` to run them in
    the background (the CLI calls :meth:`RuleEngine.drain` before it exits).
    """
    if upgrade:
        await migrate.upgrade(url)
    db = await Database.open(url)
    try:
        store = SqlDatasetStore(db)
        registry = Registry(store)
        await registry.load()
        clock = clock or SystemClock()
        datasets = DatasetService(registry, store, clock)
        tokens = TokenService(SqlTokenStore(db), clock)
        actions = ActionRegistry()
        adapters = AdapterManager(SqlAdapterStore(db), registry, actions, clock)
        chat = xmpp.GatewaySlot()
        adapters.register_kind(xmpp.make_kind(chat))
        adapters.register_kind(dataupdate.KIND)
        await adapters.load()
        rule_store = SqlRuleStore(db)
        rules = RuleService(rule_store, registry, actions, adapters, clock)
        await rules.load()
        adapters.rules_using = lambda name: [
            r.name for r in rules.list_rules() if r.adapter == name
        ]
        engine = RuleEngine(
            rules=rules,
            store=rule_store,
            datasets=datasets,
            resolver=PathResolver(registry, store),
            adapters=adapters,
            clock=clock,
            config=engine_config,
        )
        engine.attach()
        audit = AuditTrail(SqlAuditStore(db), clock)
        console = ConsoleAccounts(SqlConsoleStore(db), clock, audit)
    except BaseException:
        await db.close()
        raise
    return Platform(
        db=db,
        registry=registry,
        datasets=datasets,
        tokens=tokens,
        adapters=adapters,
        rules=rules,
        engine=engine,
        audit=audit,
        console=console,
        chat=chat,
    )
