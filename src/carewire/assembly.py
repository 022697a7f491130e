"""The composition root: every Carewire service built once, on one database handle.

The server (``carewire serve``), every CLI command and the feature test
harness build their services here and nowhere else; no other module wires
packages together. Theory of operation:

- :func:`assemble` migrates (unless told not to), opens **one**
  :class:`~carewire.storage.Database` and builds on it, in dependency order,
  the kernel's stores and the XMPP kernel (accounts, hooks, sessions, router),
  the audit trail and console accounts, API tokens, and the data platform:
  dataset registry and service, attribute paths, adapter manager with its
  kinds, rule service and rules engine.
- It binds the one door between clinical features and the XMPP adapter
  (:mod:`carewire.adapters.xmpp.gateway`): the adapter's settings as a
  :class:`ChatSettingsSource` and the rule-based :class:`AlertResponder` are
  provided to the kernel's features by interface, and the :class:`ChatGateway`
  the alerting feature provides is attached to the XMPP adapter's slot once
  features are loaded (:meth:`Assembly.load_features`). In a process that
  loads no features (the CLI) the slot stays empty and XMPP firings are handed
  over to the running server (``EngineConfig.hand_over``).
- A feature that needs a service nobody provides fails at start-up with a
  :class:`~carewire.errors.ConfigError` (``FeatureContext.require``).
- :func:`open_core` builds only the kernel's side (for tests of the standard
  XMPP features, which need no data platform); :func:`assemble` uses it too.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from argon2 import PasswordHasher

from carewire.adapters import assignments, dataupdate, pcd, xmpp
from carewire.adapters.hl7 import adt as hl7_adt
from carewire.adapters.manager import AdapterManager
from carewire.adapters.xmpp.gateway import (
    AlertResponder,
    ChatGateway,
    ChatSettingsSource,
    FixedChatSettings,
    GatewaySlot,
)
from carewire.adapters.xmpp.responses import RuleResponder
from carewire.adapters.xmpp.settings import EnabledAdapterSettings
from carewire.assembly_config import (
    directory_config,
    engine_config,
    feature_config,
    upload_settings,
)
from carewire.assembly_federation import federation_admin
from carewire.assembly_identity import (
    LdapConsolePasswords,
    LdapService,
    SyncConfig,
    ldap_service,
    sync_config,
)
from carewire.assembly_push import push_app_server, web_push_service
from carewire.clock import Clock, SystemClock
from carewire.cluster import Cluster
from carewire.config import Config, parse_duration
from carewire.core.accounts import AccountService
from carewire.core.feature import FeatureConfig
from carewire.core.kernel import DEFAULT_FEATURES, Kernel
from carewire.core.stores import Stores
from carewire.datasets.paths import PathResolver
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.directory.model import DirectoryConfig
from carewire.directory.retention import RetentionPurge
from carewire.directory.service import DirectoryService
from carewire.errors import ConflictError, NotFoundError
from carewire.features.coverage.desk import CoverageDesk
from carewire.federation.service import FederationAdmin
from carewire.mail import Mailer, MemoryMailer, mailer_from_config
from carewire.net.tls import server_context
from carewire.push.appserver import PushAppServer
from carewire.push.devices import DirectoryDevicePolicy
from carewire.push.settings import PushSettings, settings_from_config
from carewire.push.webpush import WebPushService
from carewire.rules.actions import ActionRegistry
from carewire.rules.engine import EngineConfig, RuleEngine
from carewire.rules.service import RuleService
from carewire.rules.store import StoredRuleUsage
from carewire.security.audit import AuditTrail
from carewire.security.audit_key import AuditKey, load_key
from carewire.security.console_auth import ConsoleAccounts, ConsoleUser
from carewire.security.console_model import shares_chat_account
from carewire.security.envelope import Keyring
from carewire.security.keyring import KeyService
from carewire.security.keys import ConfiguredKek, KekSource, ProcessKek
from carewire.security.lockout_notify import LockoutNotifier
from carewire.security.phi_access import PatientAccess
from carewire.security.throttle import AuthThrottle, ThrottlePolicy
from carewire.security.tokens import TokenService
from carewire.storage import Database, build_stores, migrate
from carewire.storage.adapters import SqlAdapterStore
from carewire.storage.audit import SqlAuditStore
from carewire.storage.break_glass import SqlBreakGlassStore
from carewire.storage.console import SqlConsoleStore
from carewire.storage.data_keys import SqlDataKeyStore
from carewire.storage.datasets import SqlDatasetStore
from carewire.storage.directory import build_directory_store
from carewire.storage.hl7 import SqlControlIdStore
from carewire.storage.push import SqlPushStore
from carewire.storage.retention import SqlRetentionStore
from carewire.storage.rules import SqlRuleStore
from carewire.storage.tokens import SqlTokenStore
from carewire.storage.uploads import SqlUploadStore
from carewire.storage.webpush import SqlWebPushStore
from carewire.uploads import UploadService, UploadSettings
from carewire.xmpp.sasl import DEFAULT_ITERATIONS


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What to build.

    Attributes:
        url: The database (``sqlite+aiosqlite:///…`` or ``postgresql://…``).
        domain: The chat domain (``carewire.localhost`` unless configured).
        clock: The clock every service reads (a fake one in tests).
        features: The features' settings.
        engine: The rules engine's settings.
        scram_iterations: PBKDF2 rounds for new SCRAM keys.
        upgrade: Migrate the schema before opening.
        directory: The directory's settings and the base of its mailed links.
        mailer: Sends the directory's mail (kept in memory unless given).
        secret_hasher: The argon2id hasher of console passwords and PINs (the
            library's recommended costs unless given; tests pass cheaper ones).
        tls: Builds a TLS context with the server's certificate, for adapters'
            own listeners (HL7 over MLLP); None where there is no certificate.
        audit_key: Authenticates the audit trail (read from outside the database by
            :func:`options_from_config`; a fresh in-memory key unless given, for tests).
        kek: Where the key-encryption key is read (a per-process key unless given, for tests).
        encrypt_at_rest: False only to measure the cost of encryption (``[encryption]``).
        key_refresh: Seconds between the server's reloads of stored keys.
        throttle: The failed-authentication limit per source address.
        upload: File sharing's settings (None: file sharing is off).
        push: The push app server's settings (``[push]``); None: no push notifications.
        directory_sync: LDAP sync's intervals and limits (``[directory_sync]``).
        components: The domains of external components (XEP-0114, ``[components]``).
    """

    url: str
    domain: str = "carewire.localhost"
    clock: Clock = field(default_factory=SystemClock)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    scram_iterations: int = DEFAULT_ITERATIONS
    upgrade: bool = True
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    mailer: Mailer = field(default_factory=MemoryMailer)
    secret_hasher: PasswordHasher | None = None
    tls: Callable[[], ssl.SSLContext] | None = None
    audit_key: AuditKey = field(default_factory=AuditKey.generate)
    kek: KekSource = field(default_factory=ProcessKek)
    encrypt_at_rest: bool = True
    key_refresh: float = 30.0
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    upload: UploadSettings | None = None
    push: PushSettings | None = None
    directory_sync: SyncConfig = field(default_factory=SyncConfig)
    components: frozenset[str] = frozenset()


def options_from_config(
    cfg: Config, *, clock: Clock | None = None, is_server: bool = True
) -> Options:
    """The options ``carewire.toml`` asks for.

    Args:
        cfg: The loaded configuration.
        clock: The clock (the system's by default).
        is_server: False for a process without an XMPP server (the CLI): the
            XMPP adapter's firings are then handed over to the running server.
    """
    hand_over = frozenset() if is_server else frozenset({xmpp.COMPONENT})
    return Options(
        url=cfg.database_url,
        domain=cfg.server.domain,
        clock=clock or SystemClock(),
        features=feature_config(cfg),
        engine=engine_config(cfg, hand_over=hand_over),
        scram_iterations=cfg.xmpp.scram_iterations,
        directory=directory_config(cfg),
        directory_sync=sync_config(cfg),
        mailer=mailer_from_config(cfg),
        tls=partial(server_context, cfg.cert_file, cfg.key_file),
        # Only the server creates a missing key (at its first start after an upgrade): a
        # CLI command must not replace a lost one behind the operator's back.
        audit_key=load_key(cfg.audit_key_file, create=is_server),
        kek=ConfiguredKek(key_file=cfg.kek_file, env=os.environ),
        encrypt_at_rest=cfg.encryption.enabled,
        key_refresh=parse_duration(
            cfg.encryption.refresh_interval, "encryption.refresh_interval"
        ).total_seconds(),
        throttle=ThrottlePolicy(
            max_failures=cfg.throttle.max_failures,
            window=parse_duration(cfg.throttle.window, "throttle.window"),
        ),
        upload=upload_settings(cfg),
        push=settings_from_config(cfg) if is_server else None,
        components=frozenset(c.domain for c in cfg.component_secrets),
    )


@dataclass(slots=True, kw_only=True)
class Core:
    """The XMPP kernel's side alone: one database, its stores and the kernel.

    Attributes:
        db: The database (closed by :meth:`close`).
        stores: The kernel's stores on ``db``.
        clock: The clock.
        kernel: The XMPP kernel (features loaded by :meth:`load_features`).
        keys: The data keys (the keyring every store encrypts through).
    """

    db: Database
    stores: Stores
    clock: Clock
    kernel: Kernel
    keys: KeyService

    @property
    def accounts(self) -> AccountService:
        """XMPP accounts (creating one derives SCRAM keys; removing one ends its sessions)."""
        return self.kernel.accounts

    def load_features(self, names: Sequence[str] = DEFAULT_FEATURES) -> None:
        """Load standard XMPP features (no data platform: default chat settings)."""
        self.kernel.ctx.provide(FixedChatSettings(), as_type=ChatSettingsSource)
        self.kernel.load_features(names)

    async def close(self) -> None:
        """Release the database."""
        await self.db.close()


async def open_core(options: Options) -> Core:
    """Migrate (unless ``options.upgrade`` is false) and build the kernel's side only."""
    if options.upgrade:
        await migrate.upgrade(options.url)
    db = await Database.open(options.url)
    try:
        keys = KeyService(
            SqlDataKeyStore(db),
            options.kek,
            options.clock,
            encrypt_new=options.encrypt_at_rest,
            refresh_interval=options.key_refresh,
        )
        await keys.load()
    except BaseException:
        await db.close()
        raise
    return _core(options, db, keys)


def _core(options: Options, db: Database, keys: KeyService) -> Core:
    stores = build_stores(db, keys.keyring)
    kernel = Kernel(
        domain=options.domain,
        stores=stores,
        config=options.features,
        clock=options.clock,
        scram_iterations=options.scram_iterations,
        components=options.components,
    )
    return Core(db=db, stores=stores, clock=options.clock, kernel=kernel, keys=keys)


@dataclass(slots=True, kw_only=True)
class Assembly:
    """Every service of one Carewire process, on one database.

    Attributes:
        core: The database, the kernel's stores and the XMPP kernel.
        audit: The audit trail.
        console: The web console's users, sessions and password resets.
        tokens: API tokens.
        registry: Dataset definitions.
        datasets: The one service for dataset writes and reads.
        resolver: Attribute paths over the datasets.
        adapters: Adapter kinds and instances.
        rules: Rules (validated, compiled per dataset).
        engine: The rules engine, listening to the dataset service (its
            workers run once :meth:`start` is called).
        chat: The XMPP adapter's gateway slot (attached by :meth:`load_features`).
        chat_settings: The enabled XMPP adapter's settings, for the features.
        responder: Applies alert responses, for the alerting feature.
        directory: The organisation directory (provided to the features).
        coverage: Busy users and held messages for administrators (attached to
            the running coverage feature by :meth:`load_features`).
        retention: The retention purge (nightly in the server, ``carewire purge``).
        throttle: Failed authentications per source address (XMPP, API, console).
        lockouts: Records and reports accounts locked by failed sign-ins.
        phi_access: PHI read audit, care-team rule, break the glass (given to features).
        uploads: File sharing (XEP-0363), given to the features and the HTTPS app (None: off).
        push: The push app server (None when ``[push]`` is not enabled).
        webpush: Web Push to browsers (None unless ``[push] webpush``).
        ldap: Directory sync from LDAP and LDAP sign-in (docs/ldap.md).
        assignment_ticks: Whether the assignment manager's minute tick runs here.
        federation: Trusted domains and stream status (docs/federation-admin.md).
        cluster: This node's part in a cluster (docs/cluster.md; the server sets it).
    """

    core: Core
    audit: AuditTrail
    console: ConsoleAccounts
    tokens: TokenService
    registry: Registry
    datasets: DatasetService
    resolver: PathResolver
    adapters: AdapterManager
    rules: RuleService
    engine: RuleEngine
    chat: GatewaySlot
    chat_settings: ChatSettingsSource
    responder: AlertResponder
    directory: DirectoryService
    coverage: CoverageDesk
    retention: RetentionPurge
    throttle: AuthThrottle
    lockouts: LockoutNotifier
    phi_access: PatientAccess
    federation: FederationAdmin
    uploads: UploadService | None = None
    assignment_ticks: assignments.TickGate = field(default_factory=assignments.TickGate)
    push: PushAppServer | None = None
    webpush: WebPushService | None = None
    ldap: LdapService | None = None
    cluster: Cluster | None = None

    @property
    def db(self) -> Database:
        """The one database handle."""
        return self.core.db

    @property
    def stores(self) -> Stores:
        """The kernel's stores."""
        return self.core.stores

    @property
    def kernel(self) -> Kernel:
        """The XMPP kernel."""
        return self.core.kernel

    @property
    def accounts(self) -> AccountService:
        """XMPP accounts."""
        return self.core.accounts

    @property
    def clock(self) -> Clock:
        """The clock every service reads."""
        return self.core.clock

    @property
    def keyring(self) -> Keyring:
        """Encrypts and decrypts values at rest, keys blind indexes (docs/encryption.md)."""
        return self.core.keys.keyring

    def load_features(self, names: Sequence[str] = DEFAULT_FEATURES) -> None:
        """Provide the platform and the door to the kernel, load ``names``, attach the gateway.

        Raises:
            ConfigError: An unknown feature, or one whose needs nothing provides.
        """
        ctx = self.kernel.ctx
        ctx.provide(self.registry)
        ctx.provide(self.datasets)
        ctx.provide(self.resolver)
        ctx.provide(self.chat_settings, as_type=ChatSettingsSource)
        ctx.provide(self.responder, as_type=AlertResponder)
        ctx.provide(self.directory)
        ctx.provide(self.audit)
        ctx.provide(self.coverage)
        ctx.provide(self.phi_access)
        if self.uploads is not None:
            ctx.provide(self.uploads)
        if self.push is not None:
            ctx.provide(self.push)
        if self.webpush is not None:
            ctx.provide(self.webpush)
        self.kernel.load_features(names)
        self.chat.attach(ctx.find(ChatGateway))

    async def start(self, *, scheduler: bool = True) -> None:
        """Start the rules engine (and its scheduler) and the adapters' runtimes."""
        await self.engine.start(scheduler=scheduler)
        await self.adapters.start()
        if self.push is not None:
            await self.push.start()
        if self.webpush is not None:
            await self.webpush.start()
        await self.federation.start()

    async def ensure_default_adapters(self, domain: str) -> None:
        """On a new installation, create the XMPP adapter (for ``domain``), a DataUpdate one and
        the assignment manager."""
        if self.adapters.list():
            return
        for component, name, settings in (
            (xmpp.COMPONENT, "XMPP", {"chat_domain": domain}),
            (dataupdate.COMPONENT, "DataUpdate", None),
            (assignments.COMPONENT, "Assignment Manager", None),
        ):
            try:
                await self.adapters.create(component, name, is_enabled=True, settings=settings)
            except ConflictError:  # another node of a cluster made it as it started too
                await self.adapters.load()

    async def close(self) -> None:
        """Detach the gateway, stop workers and runtimes, then release the database."""
        self.chat.attach(None)
        await self.federation.close()
        if self.push is not None:
            await self.push.close()
        if self.webpush is not None:
            await self.webpush.close()
        await self.throttle.flush()
        await self.lockouts.drain()
        await self.directory.close()
        await self.adapters.stop()
        await self.engine.stop()
        await self.core.close()


async def assemble(options: Options) -> Assembly:
    """Migrate (unless ``options.upgrade`` is false), open the database and build everything.

    The engine is attached to the dataset service, so writes made through the
    returned services fire rules; call :meth:`Assembly.start` to run them in
    the background (the CLI drains the engine before it exits).
    """
    core = await open_core(options)
    try:
        return await _platform(options, core)
    except BaseException:
        await core.close()
        raise


async def _platform(options: Options, core: Core) -> Assembly:
    db, clock = core.db, options.clock
    store = SqlDatasetStore(db, core.keys.keyring)
    registry = Registry(store)
    await registry.load()
    datasets = DatasetService(registry, store, clock)
    resolver = PathResolver(registry, store)
    actions = ActionRegistry()
    rule_store = SqlRuleStore(db)
    audit = AuditTrail(SqlAuditStore(db, options.audit_key), clock)
    adapters = AdapterManager(
        SqlAdapterStore(db), registry, actions, clock, rule_usage=StoredRuleUsage(rule_store)
    )
    chat = GatewaySlot()
    adapters.register_kind(xmpp.make_kind(chat))
    adapters.register_kind(dataupdate.KIND)
    adapters.register_kind(
        hl7_adt.make_kind(
            hl7_adt.AdtServices(
                datasets=datasets,
                audit=audit,
                clock=clock,
                control_ids=SqlControlIdStore(db),
                default_tz=options.engine.tz,
                tls=options.tls,
            )
        )
    )
    ticks = assignments.TickGate()  # the server gates it on a cluster (server_jobs.py)
    adapters.register_kind(
        assignments.make_kind(datasets=datasets, audit=audit, clock=clock, ticks=ticks)
    )
    adapters.register_kind(
        pcd.make_kind(datasets=datasets, clock=clock, audit=audit, server_tls=options.tls)
    )
    await adapters.load()
    rules = RuleService(rule_store, registry, actions, adapters, clock)
    await rules.load()
    engine = RuleEngine(
        rules=rules,
        store=rule_store,
        datasets=datasets,
        resolver=resolver,
        adapters=adapters,
        clock=clock,
        config=options.engine,
    )
    engine.attach()
    throttle = AuthThrottle(clock, audit, options.throttle)
    console = ConsoleAccounts(
        SqlConsoleStore(db), clock, audit, hasher=options.secret_hasher, throttle=throttle
    )
    lockouts = LockoutNotifier(audit, options.mailer, console.list_users)
    console.on_locked = lockouts.locked
    console.on_password_set = chat_password_keeper(core.accounts, options.domain)
    directory = DirectoryService(
        store=build_directory_store(db),
        accounts=core.accounts,
        datasets=datasets,
        console=console,
        audit=audit,
        mailer=options.mailer,
        clock=clock,
        config=replace(options.directory, domain=options.domain),
        pin_hasher=options.secret_hasher,
    )
    await directory.load()
    bg = SqlBreakGlassStore(db, core.keys.keyring)
    phi = PatientAccess(registry=registry, resolver=resolver, store=bg, audit=audit, clock=clock)
    uploads = None
    if options.upload is not None:
        uploads = UploadService(
            SqlUploadStore(db), core.keys.keyring, clock, options.upload, audit=audit
        )
    ldap = ldap_service(db, core.keys.keyring, directory=directory, audit=audit, options=options)
    console.external = LdapConsolePasswords(ldap, directory)
    federation = await federation_admin(db, audit, clock, domain=options.domain)
    return Assembly(
        core=core,
        audit=audit,
        console=console,
        tokens=TokenService(SqlTokenStore(db), clock),
        registry=registry,
        datasets=datasets,
        resolver=resolver,
        adapters=adapters,
        rules=rules,
        engine=engine,
        chat=chat,
        chat_settings=EnabledAdapterSettings(adapters),
        responder=RuleResponder(
            datasets=datasets,
            resolver=resolver,
            rules=rules,
            registry=registry,
            tz=options.engine.tz,
        ),
        directory=directory,
        coverage=CoverageDesk(core.stores, clock, audit),
        retention=RetentionPurge(
            SqlRetentionStore(db), directory, audit, clock, domain=options.domain, files=uploads
        ),
        throttle=throttle,
        lockouts=lockouts,
        phi_access=phi,
        federation=federation,
        uploads=uploads,
        push=push_app_server(
            options.push,
            SqlPushStore(db, core.keys.keyring),
            options.clock,
            audit=audit,
            devices=DirectoryDevicePolicy(datasets, directory),
        ),
        webpush=web_push_service(
            options.push,
            SqlWebPushStore(db, core.keys.keyring),
            SqlPushStore(db, core.keys.keyring),
            options.clock,
            audit=audit,
        ),
        ldap=ldap,
        assignment_ticks=ticks,
    )


def chat_password_keeper(
    accounts: AccountService, domain: str
) -> Callable[[ConsoleUser, str], Awaitable[None]]:
    """What a console password change does to chat: the linked account gets it too.

    The first administrator is one account for the console and for chat
    (``admin``, e-mail ``admin@DOMAIN``: :func:`shares_chat_account`); a new
    password set in the console (changed, or through a reset link) is also
    the chat account's, so the two never drift apart. Others are left alone.
    """

    async def keep(user: ConsoleUser, password: str) -> None:
        if not shares_chat_account(user, domain):
            return
        try:
            await accounts.set_password(user.username, password)
        except NotFoundError:  # no chat account of that name (a database made without init)
            return

    return keep
