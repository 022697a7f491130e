"""The composition root: builds storage, kernel, listeners and HTTPS, and runs them.

Only this module wires packages together. ``carewire serve`` calls
:func:`run`; tests start a :class:`Server` in a subprocess through the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from carewire import storage
from carewire.clock import Clock, SystemClock
from carewire.config import Config, parse_duration
from carewire.core import hook_names as H
from carewire.core.auth import Authenticator, LockoutPolicy, LoginAuditor
from carewire.core.feature import FeatureConfig, PeriodicJob
from carewire.core.kernel import DEFAULT_FEATURES, Kernel
from carewire.core.stores import LoginAttempt, LoginOutcome
from carewire.errors import ConfigError
from carewire.features.chat_gateway import ServerGateway
from carewire.mail import mailer_from_config
from carewire.net.context import NetContext, NetLimits
from carewire.net.listeners import bound_port, listen_c2s
from carewire.net.tls import ALPN_XMPP_CLIENT, server_context, tls_server_end_point
from carewire.platform import Platform, engine_config, open_platform, platform_services
from carewire.security.audit import AuditEvent, AuditTrail, Channel, Outcome
from carewire.security.cert_manager import CertificateManager, CheckOutcome, CheckResult
from carewire.security.cert_notify import NEEDS_ACTION, notify_admins
from carewire.storage import migrate
from carewire.web.api import create_api
from carewire.web.api.deps import ApiServices
from carewire.web.app import create_app
from carewire.web.console import ConsoleServices, console_config, create_console
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.parser import ParserLimits

log = logging.getLogger(__name__)

SECRET_FILE = "keys/server.secret"
CONSOLE_PASSWORD_FILE = "initial-console-password.txt"


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to a file only the owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


PORTS_FILE = "run/ports.json"
CERTIFICATE_CHECK_INTERVAL = 24 * 3600.0  # seconds


def server_secret(data_dir: Path) -> bytes:
    """A per-installation secret (fake SCRAM salts must be stable across restarts)."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def raise_open_files_limit() -> int:
    """Thousands of connections need thousands of descriptors: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _tls_context(cfg: Config) -> ssl.SSLContext:
    """The TLS context, or a ConfigError that says what is wrong with the key or chain."""
    try:
        return server_context(cfg.cert_file, cfg.key_file, alpn=[ALPN_XMPP_CLIENT])
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tls.key: {cfg.key_file} cannot be used with {cfg.cert_file} "
            f"(unreadable, or not the certificate's key): {exc}"
        ) from None


def login_event(attempt: LoginAttempt) -> AuditEvent:
    """The audit-trail event of one XMPP login attempt (``login`` by ``xmpp:<login>``)."""
    details = {
        "mechanism": attempt.mechanism,
        "transport": attempt.transport,
        "result": LoginOutcome(attempt.outcome).value,
    }
    if attempt.reason:
        details["reason"] = attempt.reason
    return AuditEvent(
        actor=f"xmpp:{attempt.login}",
        channel=Channel.XMPP,
        action="login",
        target=attempt.login,
        outcome=Outcome.SUCCESS if attempt.outcome is LoginOutcome.SUCCESS else Outcome.FAILURE,
        remote_ip=attempt.remote_ip,
        details=details,
    )


def login_sink(audit: AuditTrail) -> Callable[[Sequence[LoginAttempt]], Awaitable[None]]:
    """The login auditor's sink: each written batch is appended to the audit trail too."""

    async def sink(attempts: Sequence[LoginAttempt]) -> None:
        await audit.record_many([(a.at, login_event(a)) for a in attempts])

    return sink


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (the server owns signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def feature_config(cfg: Config) -> FeatureConfig:
    """The features' view of the configuration."""
    from carewire import __version__

    x = cfg.xmpp
    return FeatureConfig(
        offline_ttl=parse_duration(x.offline_message_timeout, "xmpp.offline_message_timeout"),
        offline_max_per_user=x.offline_max_per_user,
        register_enabled=x.register_enabled,
        register_limit=x.register_limit,
        register_window=parse_duration(x.register_window, "xmpp.register_window").total_seconds(),
        version_visible=x.version_visible,
        server_version=__version__,
        ping_interval=parse_duration(x.ping_interval, "xmpp.ping_interval").total_seconds(),
        ping_timeout=parse_duration(x.ping_timeout, "xmpp.ping_timeout").total_seconds(),
        account_check_interval=parse_duration(
            x.account_check_interval, "xmpp.account_check_interval"
        ).total_seconds(),
        smacks_resume_timeout=parse_duration(
            x.smacks_resume_timeout, "xmpp.smacks_resume_timeout"
        ).total_seconds(),
        smacks_max_unacked=x.smacks_max_unacked,
        csi_max_held=x.csi_max_held,
    )


class Server:
    """One running Carewire instance."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.kernel: Kernel | None = None
        self.net: NetContext | None = None
        self.ports: dict[str, int] = {}
        self._db: storage.Database | None = None
        self.platform: Platform | None = None
        self._auditor: LoginAuditor | None = None
        self._listeners: list[asyncio.Server] = []
        self._https: _EmbeddedUvicorn | None = None
        self.certificates: CertificateManager | None = None
        self._https_tls: ssl.SSLContext | None = None  # set when the certificate changes
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        """Open storage, load features, bind every listener, write ``run/ports.json``."""
        cfg = self.config
        nofile = raise_open_files_limit()
        await migrate.upgrade(cfg.database_url)
        self._db, stores = await storage.open_stores(cfg.database_url)
        self.platform = await open_platform(
            cfg.database_url, clock=self.clock, upgrade=False, engine_config=engine_config(cfg)
        )
        self.certificates = await self._check_certificate()
        await self.platform.ensure_default_adapters(cfg.server.domain)
        console_password = await self.platform.console.ensure_first_admin(cfg.server.domain)
        if console_password is not None:  # a database made without `carewire init`
            write_secret_file(cfg.data_dir / CONSOLE_PASSWORD_FILE, f"admin\n{console_password}\n")
            print(  # never through logging: the one-time password must not reach log files
                f"web console: user admin, one-time password {console_password} "
                f"(also in {cfg.data_dir / CONSOLE_PASSWORD_FILE})",
                file=sys.stderr,
            )
        await self.platform.start()
        kernel = Kernel(
            domain=cfg.server.domain,
            stores=stores,
            config=feature_config(cfg),
            clock=self.clock,
            scram_iterations=cfg.xmpp.scram_iterations,
            services=platform_services(self.platform),
        )
        kernel.load_features(cfg.xmpp.features or DEFAULT_FEATURES)
        self.kernel = kernel
        # The XMPP rule actions deliver through this server from now on.
        self.platform.chat.attach(kernel.ctx.require(ServerGateway))
        self._auditor = LoginAuditor(stores, sink=login_sink(self.platform.audit))
        self.net = NetContext(
            kernel=kernel,
            auth=Authenticator(
                stores,
                self.clock,
                self._auditor,
                LockoutPolicy(
                    delay_after=cfg.xmpp.login_delay_after,
                    delay=parse_duration(cfg.xmpp.login_delay, "xmpp.login_delay"),
                    lock_after=cfg.xmpp.lockout_after,
                ),
            ),
            ssl_context=_tls_context(cfg),
            channel_binding=tls_server_end_point(cfg.cert_file),
            fake_secret=server_secret(cfg.data_dir),
            allow_register=cfg.xmpp.register_enabled,
            parser_limits=ParserLimits(max_stanza_bytes=cfg.xmpp.max_stanza_bytes),
            limits=NetLimits(
                max_send_buffer=cfg.xmpp.max_send_buffer,
                read_rate=cfg.xmpp.max_read_rate,
                read_burst=cfg.xmpp.max_read_burst,
                auth_timeout=parse_duration(
                    cfg.xmpp.auth_timeout, "xmpp.auth_timeout"
                ).total_seconds(),
            ),
        )
        self.certificates.add_listener(self._reload_tls)
        await self._listen()
        self._write_ports()
        await kernel.hooks.fire(H.SERVER_STARTED, None)
        self._tasks.append(asyncio.create_task(self._auditor.run(), name="login-audit"))
        for job in [*kernel.ctx.jobs, self._certificate_job()]:
            self._tasks.append(asyncio.create_task(self._run_job(job), name=f"job-{job.name}"))
        log.info(
            "Carewire serving %s: c2s %d, c2s-tls %d, https %s (open files limit %d)",
            cfg.server.domain,
            self.ports["c2s"],
            self.ports["c2s_tls"],
            self.ports.get("https", "off"),
            nofile,
        )

    async def _listen(self) -> None:
        cfg, net = self.config, self.net
        assert net is not None
        c2s = await listen_c2s(net, cfg.server.bind, cfg.server.c2s_port, direct_tls=False)
        c2s_tls = await listen_c2s(net, cfg.server.bind, cfg.server.c2s_tls_port, direct_tls=True)
        self._listeners += [c2s, c2s_tls]
        self.ports = {"c2s": bound_port(c2s), "c2s_tls": bound_port(c2s_tls)}
        if cfg.server.websocket:
            self.ports["https"] = await self._start_https()

    async def _start_https(self) -> int:
        cfg = self.config
        assert self.net is not None
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.server.bind else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((cfg.server.bind, cfg.server.https_port))
        assert self.platform is not None
        api = create_api(
            ApiServices(
                registry=self.platform.registry,
                datasets=self.platform.datasets,
                tokens=self.platform.tokens,
                adapters=self.platform.adapters,
                rules=self.platform.rules,
                engine=self.platform.engine,
                audit=self.platform.audit,
                certificates=self.certificates,
                chat=self.platform.chat,
            )
        )
        console = create_console(
            ConsoleServices(
                accounts=self.platform.console,
                audit=self.platform.audit,
                mailer=mailer_from_config(cfg),
                config=console_config(cfg),
                registry=self.platform.registry,
                datasets=self.platform.datasets,
                adapters=self.platform.adapters,
                rules=self.platform.rules,
                engine=self.platform.engine,
                certificates=self.certificates,
            )
        )
        uv_config = uvicorn.Config(
            create_app(self.net, api, console),
            ssl_certfile=str(cfg.cert_file),
            ssl_keyfile=str(cfg.key_file),
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            ws_max_size=cfg.xmpp.max_stanza_bytes + 1024,
            proxy_headers=False,
            server_header=False,
        )
        uv_config.load()
        assert uv_config.ssl is not None
        uv_config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        uv_config.ssl.sni_callback = self._https_certificate
        self._https = _EmbeddedUvicorn(uv_config)
        port = int(sock.getsockname()[1])
        self._tasks.append(asyncio.create_task(self._https.serve(sockets=[sock]), name="https"))
        for _ in range(200):
            if self._https.started:
                break
            await asyncio.sleep(0.01)
        log.info(
            "HTTPS (console at /, REST API at /api/v1, WebSocket at /xmpp-websocket) on %s:%d",
            cfg.server.bind,
            port,
        )
        return port

    async def _check_certificate(self) -> CertificateManager:
        """Create, renew or report the certificate; refuse to start on an expired CA-signed one."""
        cfg = self.config
        assert self.platform is not None
        manager = CertificateManager(
            cfg.data_dir,
            cfg.server.domain,
            self.clock,
            self.platform.audit,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
        )
        checked = await manager.check()
        await self._warn_admins(checked)
        if checked.outcome is CheckOutcome.EXPIRED:
            raise ConfigError(
                f"tls.cert: the certificate expired on {checked.details.not_after:%Y-%m-%d}; "
                "upload a new one ('carewire cert upload FILE')"
            )
        return manager

    async def _warn_admins(self, result: CheckResult) -> None:
        """Mail the system administrators when a CA-signed certificate needs replacing."""
        if result.outcome not in NEEDS_ACTION or self.platform is None:
            return
        users = await self.platform.console.list_users()
        sent = await notify_admins(result, users, mailer_from_config(self.config))
        log.warning(
            "the XMPP certificate is %s (%d day(s) left); %d administrator(s) mailed",
            result.outcome.value,
            result.days_left,
            sent,
        )

    def _certificate_job(self) -> PeriodicJob:
        """The daily check: renew an expired self-signed certificate, report a CA-signed one."""
        manager = self.certificates
        assert manager is not None

        async def run() -> None:
            await self._warn_admins(await manager.check())

        return PeriodicJob("certificate-check", CERTIFICATE_CHECK_INTERVAL, run)

    def _reload_tls(self) -> None:
        """Use the certificate files for new connections; existing ones keep their TLS state.

        c2s connections take ``net.ssl_context`` when their handshake starts, so
        replacing it is enough; HTTPS connections are moved to the new context
        as their handshake begins (:meth:`_https_certificate`).
        """
        cfg, net = self.config, self.net
        if net is None:
            return
        try:
            context = _tls_context(cfg)
            binding = tls_server_end_point(cfg.cert_file)
            https = server_context(cfg.cert_file, cfg.key_file)
        except (ConfigError, ssl.SSLError, OSError, ValueError) as exc:
            log.error("the new certificate cannot be loaded; keeping the old one: %s", exc)
            return
        net.ssl_context, net.channel_binding = context, binding
        self._https_tls = https
        log.info("TLS certificate reloaded: new connections use it")

    def _https_certificate(
        self, ssl_object: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext
    ) -> None:
        """Called as each HTTPS handshake begins: present the latest certificate."""
        if self._https_tls is not None:
            ssl_object.context = self._https_tls

    def _write_ports(self) -> None:
        path = self.config.data_dir / PORTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.ports, "pid": os.getpid()}))
        tmp.replace(path)

    async def _run_job(self, job: PeriodicJob) -> None:
        while True:
            await asyncio.sleep(job.interval)
            try:
                await job.run()
            except Exception:  # supervisor: a failing job runs again next time
                log.exception("periodic job %s failed", job.name)

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (signal handlers call this)."""
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Run until :meth:`request_stop`."""
        await self._stopped.wait()

    async def stop(self) -> None:
        """Clean shutdown: stop listening, end sessions, flush the audit, close storage."""
        log.info("shutting down")
        if self.kernel is not None:
            if self.platform is not None:
                self.platform.chat.attach(None)  # rule actions no longer reach this server
            await self.kernel.hooks.fire(H.SERVER_STOPPING, None)
        for listener in self._listeners:
            listener.close()
        if self.net is not None:
            for conn in list(self.net.connections):
                conn.close(StreamCondition.SYSTEM_SHUTDOWN, "the server is shutting down")
            for _ in range(50):  # let session-closed handlers finish their writes
                if not self.net.tasks:
                    break
                await asyncio.sleep(0.02)
        if self._https is not None:
            self._https.should_exit = True
        for task in self._tasks:
            if task.get_name() != "https":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.net is not None:
            for task in list(self.net.tasks):
                task.cancel()
            await asyncio.gather(*self.net.tasks, return_exceptions=True)
        if self._auditor is not None:
            await self._auditor.close()
        if self.platform is not None:
            await self.platform.close()
        if self._db is not None:
            await self._db.close()
        with contextlib.suppress(FileNotFoundError):
            (self.config.data_dir / PORTS_FILE).unlink()
        log.info("stopped")


async def run(config: Config) -> None:
    """Start, serve until SIGINT/SIGTERM, stop cleanly."""
    server = Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    try:
        await server.start()
        await server.serve_forever()
    finally:
        await server.stop()


def install_uvloop() -> bool:
    """Use uvloop when installed (faster event loop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
