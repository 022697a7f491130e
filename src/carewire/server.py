"""The running server: listeners, HTTPS, background jobs and a clean shutdown.

Every service comes from the composition root (:mod:`carewire.assembly`);
this module binds sockets, TLS and uvicorn around them and runs them.
``carewire serve`` calls :func:`run`; tests start a :class:`Server` in a
subprocess through the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from carewire.assembly import Assembly, assemble, options_from_config
from carewire.assembly_cluster import cluster_service, start_cluster, stop_cluster
from carewire.assembly_components import component_net
from carewire.assembly_identity import ldap_jobs
from carewire.assembly_s2s import Federation, start_federation
from carewire.assembly_scim import scim_provisioning
from carewire.assembly_services import (
    api_services,
    certificate_manager,
    console_services,
    login_services,
)
from carewire.clock import Clock, SystemClock
from carewire.config import Config, parse_duration
from carewire.config_listeners import listening
from carewire.core import hook_names as H
from carewire.core.auth import Authenticator, LoginAuditor
from carewire.core.feature import PeriodicJob
from carewire.core.kernel import DEFAULT_FEATURES, Kernel
from carewire.errors import ConfigError
from carewire.mail import mailer_from_config
from carewire.monitoring.service import Monitoring, listener_health, start_monitoring
from carewire.net.component import ComponentNet, listen_components
from carewire.net.context import NetContext, NetLimits
from carewire.net.https import protocol as https_protocol
from carewire.net.listeners import bound_port, listen_c2s
from carewire.net.tls import ALPN_XMPP_CLIENT, server_context, tls_server_end_point
from carewire.process import raise_open_files_limit, settle_heap
from carewire.security.audit_checkpoint import Checkpointer
from carewire.security.cert_manager import CertificateManager, CheckOutcome, CheckResult
from carewire.security.cert_notify import NEEDS_ACTION, notify_admins
from carewire.security.filemodes import restrict_umask, tighten, write_private
from carewire.server_jobs import JobRunner, job_runner, share_counters
from carewire.storage.reseal import seal_plaintext
from carewire.web.api import create_api
from carewire.web.app import create_app
from carewire.web.console import create_console
from carewire.web.guard import BodyLimits
from carewire.web.host_meta import websocket_url
from carewire.web.scim import create_scim_app
from carewire.web.upload import create_upload_app
from carewire.web.webclient import create_webclient
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
#: The adapters' health and counters, rewritten every few seconds for ``carewire adapter show``.
ADAPTERS_FILE = "run/adapters.json"
ADAPTERS_FILE_INTERVAL = 5.0
#: Seconds between checks whether an organisation's nightly retention purge is due.
RETENTION_CHECK_INTERVAL = 60.0
CERTIFICATE_CHECK_INTERVAL = 24 * 3600.0  # seconds
THROTTLE_FLUSH_INTERVAL = 60.0  # seconds


def server_secret(data_dir: Path) -> bytes:
    """A per-installation secret (fake SCRAM salts must be stable across restarts)."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _tls_context(cfg: Config) -> ssl.SSLContext:
    """The TLS context, or a ConfigError that says what is wrong with the key or chain."""
    try:
        return server_context(cfg.cert_file, cfg.key_file, alpn=[ALPN_XMPP_CLIENT])
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tls.key: {cfg.key_file} cannot be used with {cfg.cert_file} "
            f"(unreadable, or not the certificate's key): {exc}"
        ) from None


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (the server owns signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server:
    """One running Carewire instance."""

    def __init__(self, config: Config, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.assembly: Assembly | None = None
        self.net: NetContext | None = None
        self.components: ComponentNet | None = None  # XEP-0114, when any is configured
        self.ports: dict[str, int] = {}
        self._auditor: LoginAuditor | None = None
        self._checkpointer: Checkpointer | None = None
        self._listeners: list[asyncio.Server] = []
        self._https: _EmbeddedUvicorn | None = None
        self.certificates: CertificateManager | None = None
        self._https_tls: ssl.SSLContext | None = None  # set when the certificate changes
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()
        self.federation: Federation | None = None
        self.monitoring: Monitoring | None = None  # /metrics and the dashboard's figures
        self.jobs = JobRunner()  # on a cluster, gated by the singleton lease (server_jobs.py)

    @property
    def kernel(self) -> Kernel | None:
        """The XMPP kernel, once started."""
        return self.assembly.kernel if self.assembly is not None else None

    async def start(self) -> None:
        """Assemble the services, load features, bind every listener, write ``run/ports.json``."""
        cfg = self.config
        nofile = raise_open_files_limit()
        restrict_umask()
        tighten(cfg.data_dir)  # a data directory from before modes were enforced
        self.assembly = a = await assemble(options_from_config(cfg, clock=self.clock))
        await a.audit.ensure_epoch()  # an upgraded installation's MACs begin here
        self._checkpointer = Checkpointer(
            a.audit.store, cfg.audit_checkpoint_dir, a.clock, to_log=cfg.audit.checkpoint_log
        )
        await self._checkpointer.tick(force=True)
        self.certificates = await self._check_certificate()
        await a.ensure_default_adapters(cfg.server.domain)
        await self._ensure_console_admin()
        a.load_features(cfg.xmpp.features or DEFAULT_FEATURES)
        if a.chat.gateway is None:
            raise ConfigError("xmpp.features: the XMPP rule actions need the 'alerting' feature")
        a.cluster = cluster_service(cfg.cluster, a.kernel)  # one Redis client, for the jobs too
        redis = a.cluster.redis if a.cluster is not None else None
        self.jobs = job_runner(cfg, a, redis)  # before a.start(): the rules scheduler asks it
        self.jobs.start()
        await a.start()  # the XMPP rule actions deliver through this server from now on
        await start_cluster(a.cluster)  # the session registry, before any client binds
        self._auditor, auth = login_services(cfg, a)
        share_counters(cfg, self.jobs, a, auth)  # on a cluster: throttle and lockouts in Redis
        self.net = self._net_context(auth)
        self.monitoring = await start_monitoring(
            cfg,
            a,
            net=self.net,
            auditor=self._auditor,
            certificates=self.certificates,
            s2s_connections=self._s2s_count,
            listeners=self._listener_health,
        )
        self.certificates.add_listener(self._reload_tls)
        await self._listen()
        if cfg.s2s.enabled:
            self.federation = await start_federation(cfg, a)
            self.ports.update(self.federation.ports)
            self.certificates.add_listener(self.federation.context.reload_tls)
        if self.monitoring.port is not None:
            self.ports["metrics"] = self.monitoring.port
        self._write_adapters_status()
        self._write_ports()
        await a.kernel.hooks.fire(H.SERVER_STARTED, None)
        self._tasks.append(asyncio.create_task(self._auditor.run(), name="login-audit"))
        self._tasks.append(asyncio.create_task(self._adapters_status(), name="adapters-status"))
        self._tasks.append(asyncio.create_task(a.core.keys.run(), name="key-refresh"))
        self._tasks.append(asyncio.create_task(self._seal_plaintext(), name="seal-plaintext"))
        jobs = [
            self._certificate_job(),
            self._retention_job(),
            self._checkpoint_job(),
            self._throttle_job(),
            *(ldap_jobs(a.ldap) if a.ldap is not None else []),
        ]
        for job in [*a.kernel.ctx.jobs, *jobs]:
            self._tasks.append(asyncio.create_task(self.jobs.run(job), name=f"job-{job.name}"))
        log.info(
            "Carewire serving %s: c2s %d, c2s-tls %d, https %s (open files limit %d)",
            cfg.server.domain,
            self.ports["c2s"],
            self.ports["c2s_tls"],
            self.ports.get("https", "off"),
            nofile,
        )

    async def _ensure_console_admin(self) -> None:
        """A database made without ``carewire init`` gets its first console administrator."""
        cfg, a = self.config, self.assembly
        assert a is not None
        password = await a.console.ensure_first_admin(cfg.server.domain)
        if password is None:
            return
        write_secret_file(cfg.data_dir / CONSOLE_PASSWORD_FILE, f"admin\n{password}\n")
        print(  # never through logging: the one-time password must not reach log files
            f"web console: user admin, one-time password {password} "
            f"(also in {cfg.data_dir / CONSOLE_PASSWORD_FILE})",
            file=sys.stderr,
        )

    def _net_context(self, auth: Authenticator) -> NetContext:
        """What the listeners share: the kernel, authentication, TLS and limits."""
        cfg, kernel = self.config, self.kernel
        assert kernel is not None
        x = cfg.xmpp
        return NetContext(
            kernel=kernel,
            auth=auth,
            ssl_context=_tls_context(cfg),
            channel_binding=tls_server_end_point(cfg.cert_file),
            fake_secret=server_secret(cfg.data_dir),
            allow_register=x.register_enabled,
            parser_limits=ParserLimits(max_stanza_bytes=x.max_stanza_bytes),
            limits=NetLimits(
                max_send_buffer=x.max_send_buffer,
                read_rate=x.max_read_rate,
                read_burst=x.max_read_burst,
                auth_timeout=parse_duration(x.auth_timeout, "xmpp.auth_timeout").total_seconds(),
                max_unauthenticated_per_address=x.max_unauthenticated_per_address,
            ),
        )

    async def _listen(self) -> None:
        cfg, net = self.config, self.net
        assert net is not None
        bind = cfg.server.bind
        with listening("server.c2s_port", cfg.server.c2s_port, host=bind, bind_key="server.bind"):
            c2s = await listen_c2s(net, bind, cfg.server.c2s_port, direct_tls=False)
        self._listeners.append(c2s)
        port = cfg.server.c2s_tls_port
        with listening("server.c2s_tls_port", port, host=bind, bind_key="server.bind"):
            c2s_tls = await listen_c2s(net, bind, port, direct_tls=True)
        self._listeners.append(c2s_tls)
        self.ports = {"c2s": bound_port(c2s), "c2s_tls": bound_port(c2s_tls)}
        if cfg.server.websocket:
            self.ports["https"] = await self._start_https()
        await self._listen_components()

    async def _listen_components(self) -> None:
        """The XEP-0114 listener, only when at least one component is configured."""
        cfg = self.config
        assert self.assembly is not None
        self.components = component_net(cfg, self.assembly)
        if self.components is not None:
            c = cfg.components
            with listening("components.port", c.port, host=c.bind, bind_key="components.bind"):
                listener = await listen_components(self.components, c.bind, c.port)
            self._listeners.append(listener)
            self.ports["component"] = bound_port(listener)

    async def _start_https(self) -> int:
        cfg = self.config
        assert self.net is not None
        sock = socket.socket(socket.AF_INET6 if ":" in cfg.server.bind else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        port = cfg.server.https_port
        with listening("server.https_port", port, host=cfg.server.bind, bind_key="server.bind"):
            try:
                sock.bind((cfg.server.bind, port))
            except OSError:
                sock.close()
                raise
        assert self.assembly is not None and self.certificates is not None
        api = create_api(api_services(self.assembly, self.certificates))
        assert self.monitoring is not None
        status = self.monitoring.status
        console = create_console(console_services(cfg, self.assembly, self.certificates, status))
        h = cfg.https
        limits = BodyLimits(max_body=h.max_body_bytes, max_upload=h.max_upload_bytes)
        uploads = self.assembly.uploads
        bound = int(sock.getsockname()[1])
        files = None
        if uploads is not None:
            files = create_upload_app(uploads)
            if uploads.base_url is None:  # no upload.public_url: this listener, by domain
                port = int(sock.getsockname()[1])
                uploads.base_url = f"https://{cfg.server.domain}" + (
                    "" if port == 443 else f":{port}"
                )
        uv_config = uvicorn.Config(
            create_app(
                self.net,
                api,
                console,
                limits=limits,
                uploads=files,
                scim=create_scim_app(scim_provisioning(self.assembly)),
                metrics=self.monitoring.https_app,
                websocket_url=websocket_url(cfg.server.domain, bound, h.websocket_url),
                webclient=create_webclient(cfg.server.domain),
            ),
            http=https_protocol(
                header_timeout=parse_duration(
                    h.header_timeout, "https.header_timeout"
                ).total_seconds(),
                body_timeout=parse_duration(h.body_timeout, "https.body_timeout").total_seconds(),
                upload_body_timeout=parse_duration(
                    cfg.upload.body_timeout, "upload.body_timeout"
                ).total_seconds(),
            ),
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
        assert self.assembly is not None
        manager = certificate_manager(self.config, self.assembly)
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
        if result.outcome not in NEEDS_ACTION or self.assembly is None:
            return
        users = await self.assembly.console.list_users()
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

    def _checkpoint_job(self) -> PeriodicJob:
        """Sign the audit trail's head every ``audit.checkpoint_interval`` (when it moved)."""
        checkpointer, cfg = self._checkpointer, self.config
        assert checkpointer is not None
        interval = parse_duration(cfg.audit.checkpoint_interval, "audit.checkpoint_interval")

        async def run() -> None:
            await checkpointer.tick()

        return PeriodicJob("audit-checkpoint", interval.total_seconds(), run)

    def _throttle_job(self) -> PeriodicJob:
        """Record the ended throttle periods of source addresses (one entry per period)."""
        assert self.assembly is not None
        throttle = self.assembly.throttle

        async def run() -> None:
            await throttle.flush()

        return PeriodicJob("auth-throttle", THROTTLE_FLUSH_INTERVAL, run)

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

    def _s2s_count(self) -> int:
        return 0 if self.federation is None else len(self.federation.context.connections)

    def _listener_health(self) -> list[tuple[str, int, bool]]:
        servers = [*self._listeners, *(self.federation.listeners if self.federation else [])]
        https = self._https is not None and self._https.started and not self._https.should_exit
        return listener_health(self.ports, servers, https_up=https)

    def _write_ports(self) -> None:
        write_private(
            self.config.data_dir / PORTS_FILE, json.dumps({**self.ports, "pid": os.getpid()})
        )

    async def _seal_plaintext(self) -> None:
        """Seal message values stored in plaintext before encryption (once, at start)."""
        assert self.assembly is not None
        try:
            counts = await seal_plaintext(self.assembly.db, self.assembly.keyring)
        except Exception:  # supervisor: the server keeps serving; the next start retries
            log.exception("sealing plaintext values failed")
            return
        if counts:
            log.info("sealed %d plaintext values stored before encryption", sum(counts.values()))

    async def _adapters_status(self) -> None:
        """Keep ``run/adapters.json`` (health and counters of every adapter) fresh."""
        while True:
            await asyncio.sleep(ADAPTERS_FILE_INTERVAL)
            self._write_adapters_status()

    def _write_adapters_status(self) -> None:
        assert self.assembly is not None
        body = {
            "pid": os.getpid(),
            "at": self.clock.now().isoformat(),
            "adapters": {
                name: {
                    "state": h.state.value,
                    "restarts": h.restarts,
                    "last_error": h.last_error,
                    "note": h.note,
                    "counters": dict(h.counters),
                }
                for name, h in self.assembly.adapters.health_all().items()
            },
        }
        write_private(self.config.data_dir / ADAPTERS_FILE, json.dumps(body, indent=2))

    def _retention_job(self) -> PeriodicJob:
        """The nightly retention purge: checked every minute, run per organisation at 02:00."""
        assert self.assembly is not None
        purge = self.assembly.retention

        async def run() -> None:
            await purge.run_scheduled()

        return PeriodicJob("retention-purge", RETENTION_CHECK_INTERVAL, run)

    def reload_definitions(self) -> None:
        """Take up the datasets and rules another process saved, now (``SIGHUP``).

        The rule scheduler re-reads them every few seconds anyway; ``carewire demo``
        signals the server so that the very next write already meets them.
        """
        if self.assembly is not None:
            log.info("SIGHUP: re-reading dataset definitions and rules")
            self.assembly.engine.wake()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (signal handlers call this)."""
        self._stopped.set()

    async def serve_forever(self) -> None:
        """Run until :meth:`request_stop`."""
        await self._stopped.wait()

    async def stop(self) -> None:
        """Clean shutdown: stop listening, end sessions, flush the audit, close storage."""
        log.info("shutting down")
        if self.assembly is not None:
            self.assembly.chat.attach(None)  # rule actions no longer reach this server
            await self.assembly.kernel.hooks.fire(H.SERVER_STOPPING, None)
        for listener in self._listeners:
            listener.close()
        if self.federation is not None:
            await self.federation.stop()
        if self.net is not None:
            for conn in list(self.net.connections):
                conn.close(StreamCondition.SYSTEM_SHUTDOWN, "the server is shutting down")
        if self.components is not None:
            await self.components.close_all(StreamCondition.SYSTEM_SHUTDOWN, "shutting down")
        if self.net is not None:
            for _ in range(50):  # let session-closed handlers finish their writes
                if not self.net.tasks:
                    break
                await asyncio.sleep(0.02)
        if self._https is not None:
            self._https.should_exit = True
        if self.monitoring is not None:
            await self.monitoring.stop()
        for task in self._tasks:
            if task.get_name() != "https":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.jobs.stop()  # releases the singleton lease: another node takes over at once
        if self.net is not None:
            for task in list(self.net.tasks):
                task.cancel()
            await asyncio.gather(*self.net.tasks, return_exceptions=True)
        if self._auditor is not None:
            await self._auditor.close()
        if self._checkpointer is not None:
            try:
                await self._checkpointer.tick()
            except Exception:  # supervisor: stopping goes on; the next start takes one
                log.exception("could not take the audit checkpoint at stop")
        if self.assembly is not None:
            await stop_cluster(self.assembly.cluster)
            await self.assembly.close()
        for name in (PORTS_FILE, ADAPTERS_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.config.data_dir / name).unlink()
        log.info("stopped")


async def run(config: Config) -> None:
    """Start, serve until SIGINT/SIGTERM, stop cleanly."""
    server = Server(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_stop)
    loop.add_signal_handler(signal.SIGHUP, server.reload_definitions)
    try:
        await server.start()
        # Here rather than in start(): a process that starts servers again and again (the
        # tests) would keep the cyclic garbage of the earlier ones for ever.
        frozen = settle_heap()
        log.debug("start-up heap settled: %d objects out of the collector's sight", frozen)
        await server.serve_forever()
    finally:
        await server.stop()
