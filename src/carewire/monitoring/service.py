"""Monitoring of one running server: its exporter, the loopback port and the dashboard's figures.

The server builds one :class:`Monitoring` once its services and listeners
exist (:func:`start_monitoring`), mounts :attr:`Monitoring.https_app` at
``/metrics`` on the HTTPS port, hands :meth:`Monitoring.status` to the
console and calls :meth:`Monitoring.stop` when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import uvicorn

import carewire
from carewire.assembly import Assembly
from carewire.config import Config
from carewire.config_metrics import split_listen
from carewire.core.auth import LoginAuditor
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.errors import ConfigError
from carewire.monitoring.endpoint import loopback_app, metrics_app, metrics_token
from carewire.monitoring.exporter import Exporter, Sources, connection_counts
from carewire.monitoring.model import Health, LatencySummary, SystemStatus
from carewire.monitoring.records import RecordMeter
from carewire.net.context import NetContext
from carewire.security.cert_manager import CertificateManager

log = logging.getLogger(__name__)

#: (name, port, is serving) of each listener, asked for when the dashboard is drawn.
ListenerProbe = Callable[[], Sequence[tuple[str, int, bool]]]


class _Quiet(uvicorn.Server):
    """uvicorn without its own signal handling (the server owns signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Monitoring:
    """The exporter, the ``/metrics`` apps and the dashboard's snapshot of one server."""

    def __init__(
        self,
        cfg: Config,
        sources: Sources,
        *,
        listeners: ListenerProbe,
    ) -> None:
        self.config = cfg
        self.sources = sources
        self.exporter = Exporter(sources)
        self.listeners = listeners
        token = metrics_token(cfg) if cfg.metrics.enabled else None
        self.https_app = metrics_app(self.exporter.render, token) if token else None
        self.port: int | None = None  # the loopback port, when metrics.listen is set
        self._server: _Quiet | None = None
        self._task: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        """Serve ``/metrics`` on ``metrics.listen`` (plain HTTP), when it is set."""
        if not self.config.metrics.listen:
            return
        host, port = split_listen(self.config.metrics.listen)
        sock = bind_listen(host, port)
        config = uvicorn.Config(
            loopback_app(self.exporter.render),
            log_level="warning",
            lifespan="off",
            proxy_headers=False,
            server_header=False,
        )
        self._server = _Quiet(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="metrics")
        self.port = int(sock.getsockname()[1])
        for _ in range(200):
            if self._server.started:
                break
            await asyncio.sleep(0.01)
        log.info("metrics on http://%s:%d/metrics", host, self.port)

    async def stop(self) -> None:
        """Close the loopback port."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)

    async def status(self) -> SystemStatus:
        """The dashboard's figures now."""
        s = self.sources
        a = s.assembly
        now = a.clock.now()
        sessions = list(a.kernel.sessions)
        hist = s.meter.alert_latency
        cert = s.certificates.details(now)
        failed_rules, failed_messages = await self._failures(now - timedelta(hours=1))
        return SystemStatus(
            at=now,
            online_users=len({x.username for x in sessions}),
            devices=len(sessions),
            connections=connection_counts(s.net, s.s2s_connections()),
            open_alerts=tuple(now - at for at in s.meter.open_alerts(now)),
            failed_rule_deliveries=failed_rules,
            failed_message_deliveries=failed_messages,
            latency=LatencySummary(
                p50=hist.quantile(0.5),
                p99=hist.quantile(0.99),
                count=hist.count,
                objective=s.objective,
            ),
            certificate_status=str(cert.status.value),
            certificate_expires=cert.not_after,
            certificate_issuer="self-signed" if cert.is_self_signed else cert.issuer,
            versions=(
                ("Carewire", carewire.__version__),
                ("Python", platform.python_version()),
                ("Database", s.database_version),
            ),
            adapters=tuple(
                Health(
                    name=name,
                    is_up=h.state.value == "running",
                    state=h.state.value,
                    detail=h.last_error or h.note,
                )
                for name, h in a.adapters.health_all().items()
            ),
            listeners=tuple(
                Health(name=name, is_up=up, state="listening" if up else "down", detail=str(port))
                for name, port, up in self.listeners()
            ),
        )

    async def _failures(self, since: datetime) -> tuple[int, int]:
        """Rule firings in Error and undeliverable messages since ``since``."""
        datasets = self.sources.assembly.datasets
        rules = await datasets.query(
            "DELIVERIES",
            Query(
                filters=(
                    Filter(field="status", op=FilterOp.EQ, value="Error"),
                    Filter(field="triggered_at", op=FilterOp.GE, value=since),
                ),
                limit=1,
            ),
        )
        messages = await datasets.query(
            "MESSAGE_DELIVERIES",
            Query(filters=(Filter(field="failed_at", op=FilterOp.GE, value=since),), limit=1),
        )
        return rules.total, messages.total


def bind_listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``metrics.listen``.

    Raises:
        ConfigError: The address is taken or cannot be used; the message names the setting.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"metrics.listen: cannot listen on {host}:{port} ({exc.strerror}); choose another "
            "port with metrics.listen or CAREWIRE_METRICS_LISTEN"
        ) from None
    return sock


async def start_monitoring(
    cfg: Config,
    assembly: Assembly,
    *,
    net: NetContext,
    auditor: LoginAuditor,
    certificates: CertificateManager,
    s2s_connections: Callable[[], int],
    listeners: ListenerProbe,
) -> Monitoring:
    """Subscribe the record meter, build the exporter, open the loopback port if configured."""
    meter = RecordMeter()
    assembly.datasets.subscribe(meter, meter.DATASETS)
    sources = Sources(
        assembly=assembly,
        net=net,
        auditor=auditor,
        meter=meter,
        certificates=certificates,
        s2s_connections=s2s_connections,
        objective=cfg.metrics.alert_latency_objective_ms / 1000.0,
        database_version=await assembly.db.server_version(),
    )
    monitoring = Monitoring(cfg, sources, listeners=listeners)
    await monitoring.listen()
    return monitoring


def listener_health(
    ports: dict[str, int], servers: Sequence[asyncio.Server], *, https_up: bool
) -> list[tuple[str, int, bool]]:
    """(name, port, is serving) for each port in ``ports`` (``run/ports.json``'s names)."""
    serving: dict[int, bool] = {}
    for server in servers:
        for sock in server.sockets:
            serving[int(sock.getsockname()[1])] = server.is_serving()
    out: list[tuple[str, int, bool]] = []
    for name, port in sorted(ports.items()):
        if name == "pid":
            continue
        up = https_up if name == "https" else serving.get(port, name == "metrics")
        out.append((name, port, up))
    return out
