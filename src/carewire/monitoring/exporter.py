"""The server's metrics in the Prometheus text format, gathered when scraped.

One :class:`ServerCollector` per server, registered in a
:class:`~prometheus_client.CollectorRegistry` of its own (never the library's
global one: a process may run several servers, as the tests do). It reads
the plain counters the core keeps (:mod:`carewire.core.stats`), the
:class:`~carewire.monitoring.records.RecordMeter` and the queue lengths at
scrape time, so nothing on the routing path calls into this module.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

import carewire
from carewire.assembly import Assembly
from carewire.core.auth import LoginAuditor
from carewire.core.stats import LatencyBuckets
from carewire.features.offline import OfflineMessages
from carewire.features.tracking import MessageTracker
from carewire.monitoring.records import RecordMeter
from carewire.net.connection import XmppConnection
from carewire.net.context import NetContext
from carewire.security.cert_manager import CertificateManager

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_KINDS = {"message", "presence", "iq"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """What the collector reads: the running server's parts.

    Attributes:
        assembly: The services (kernel, database, engine, push, adapters).
        net: The client listeners' shared state (connections).
        auditor: The login audit (attempts by mechanism and outcome, its backlog).
        meter: Deliveries, rule firings and the alert latency.
        certificates: The XMPP certificate.
        s2s_connections: How many server-to-server streams are open.
        objective: The alert latency objective (seconds, p99).
        database_version: The database engine and its version.
    """

    assembly: Assembly
    net: NetContext
    auditor: LoginAuditor
    meter: RecordMeter
    certificates: CertificateManager
    s2s_connections: Callable[[], int]
    objective: float
    database_version: str


def connection_counts(net: NetContext, s2s: int) -> dict[str, int]:
    """Open connections by kind: c2s (TCP, both ports), websocket, s2s, component."""
    c2s = sum(1 for c in list(net.connections) if isinstance(c, XmppConnection))
    return {
        "c2s": c2s,
        "websocket": net.websockets,
        "s2s": s2s,
        "component": len(net.connections) - c2s,
    }


class ServerCollector(Collector):
    """Yields every Carewire metric family from :class:`Sources`."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        """Called by the registry for each scrape."""
        yield from self._connections()
        yield from self._logins()
        yield from self._stanzas()
        yield from self._deliveries()
        yield from self._queues()
        yield from self._latencies()
        yield from self._system()

    def _connections(self) -> Iterator[Metric]:
        s = self.sources
        conns = GaugeMetricFamily(
            "carewire_connections", "Open connections by kind.", labels=["kind"]
        )
        for kind, n in connection_counts(s.net, s.s2s_connections()).items():
            conns.add_metric([kind], n)
        yield conns
        sessions = s.assembly.kernel.sessions
        yield GaugeMetricFamily("carewire_sessions", "Bound XMPP sessions.", value=len(sessions))
        users = len({session.username for session in sessions})
        yield GaugeMetricFamily(
            "carewire_online_users", "Accounts with at least one session.", value=users
        )

    def _logins(self) -> Iterator[Metric]:
        ok = CounterMetricFamily(
            "carewire_logins", "Successful logins by mechanism.", labels=["mechanism"]
        )
        failed = CounterMetricFamily(
            "carewire_login_failures",
            "Refused logins by mechanism and reason.",
            labels=["mechanism", "reason"],
        )
        successes: dict[str, int] = {}
        failures: dict[tuple[str, str], int] = {}
        for (mechanism, outcome, reason), n in list(self.sources.auditor.outcomes.items()):
            mech = mechanism or "none"
            if outcome == "success":
                successes[mech] = successes.get(mech, 0) + n
            else:
                key = (mech, reason or outcome)
                failures[key] = failures.get(key, 0) + n
        for mech, n in successes.items():
            ok.add_metric([mech], n)
        for (mech, why), n in failures.items():
            failed.add_metric([mech, why], n)
        yield ok
        yield failed

    def _stanzas(self) -> Iterator[Metric]:
        stats = self.sources.assembly.kernel.router.stats
        received = CounterMetricFamily(
            "carewire_stanzas_in", "Stanzas received, by kind and side.", labels=["kind", "via"]
        )
        sent = CounterMetricFamily(
            "carewire_stanzas_out", "Stanzas sent, by kind and side.", labels=["kind", "via"]
        )
        for family, counts, via in (
            (received, stats.received, "c2s"),
            (received, stats.received_s2s, "s2s"),
            (sent, _by_kind(stats.sent), "c2s"),
            (sent, stats.sent_s2s, "s2s"),
        ):
            for kind, n in list(counts.items()):
                family.add_metric([kind, via], n)
        yield received
        yield sent

    def _deliveries(self) -> Iterator[Metric]:
        meter = self.sources.meter
        states = CounterMetricFamily(
            "carewire_message_deliveries",
            "Message delivery states recorded (per message and recipient).",
            labels=["state"],
        )
        for state in ("sent", "received", "displayed", "acknowledged", "failed"):
            states.add_metric([state], meter.delivery_states.get(state, 0))
        yield states
        for name, text, counts in (
            ("carewire_rule_firings", "Rule firings (DELIVERIES records), by rule.", meter.firings),
            ("carewire_rule_errors", "Rule firings that ended in Error, by rule.", meter.errors),
        ):
            family = CounterMetricFamily(name, text, labels=["rule"])
            for rule, n in list(counts.items()):
                family.add_metric([rule], n)
            yield family

    def _queues(self) -> Iterator[Metric]:
        a = self.sources.assembly
        depth = GaugeMetricFamily(
            "carewire_queue_depth", "Items waiting in a server queue.", labels=["queue"]
        )
        tracker = a.kernel.ctx.services.get(MessageTracker)
        if isinstance(tracker, MessageTracker):
            depth.add_metric(["tracking"], len(tracker.writer))
        offline = a.kernel.ctx.services.get(OfflineMessages)
        if isinstance(offline, OfflineMessages) and offline.owners is not None:
            depth.add_metric(["offline_users"], len(offline.owners))
        depth.add_metric(["rules"], a.engine.queue_depth)
        depth.add_metric(["login_audit"], self.sources.auditor.backlog)
        if a.push is not None:
            depth.add_metric(["push"], a.push.queue_depth)
        yield depth

    def _latencies(self) -> Iterator[Metric]:
        s = self.sources
        db = HistogramMetricFamily(
            "carewire_db_latency_seconds",
            "Database transactions and reads, by kind.",
            labels=["kind"],
        )
        for kind, buckets in s.assembly.db.latency.items():
            db.add_metric([kind], *_histogram(buckets))
        yield db
        alert = HistogramMetricFamily(
            "carewire_alert_latency_seconds",
            "Record write that raised an alert to the first client's receipt of it.",
        )
        alert.add_metric([], *_histogram(s.meter.alert_latency))
        yield alert
        yield GaugeMetricFamily(
            "carewire_alert_latency_objective_seconds",
            "The alert latency objective (p99).",
            value=s.objective,
        )
        now = s.assembly.clock.now()
        yield GaugeMetricFamily(
            "carewire_alerts_open",
            "Alerts raised in the last 24 h that nobody acknowledged yet.",
            value=len(s.meter.open_alerts(now)),
        )

    def _system(self) -> Iterator[Metric]:
        s = self.sources
        info = GaugeMetricFamily(
            "carewire_build_info",
            "Versions: Carewire, Python and the database.",
            labels=["version", "python", "database"],
        )
        info.add_metric([carewire.__version__, platform.python_version(), s.database_version], 1)
        yield info
        details = s.certificates.details()
        yield GaugeMetricFamily(
            "carewire_certificate_expiry_timestamp_seconds",
            "When the XMPP certificate expires (Unix time).",
            value=details.not_after.timestamp(),
        )
        up = GaugeMetricFamily(
            "carewire_adapter_up",
            "1 when the adapter instance runs, 0 otherwise (its state as a label).",
            labels=["adapter", "state"],
        )
        for name, health in s.assembly.adapters.health_all().items():
            up.add_metric([name, health.state.value], 1 if health.state.value == "running" else 0)
        yield up


def _by_kind(counts: dict[str, int]) -> dict[str, int]:
    """Counts keyed by element tag (``{jabber:client}message``) folded to stanza kinds."""
    out: dict[str, int] = {}
    for tag, n in list(counts.items()):
        kind = tag.rpartition("}")[2]
        if kind in _KINDS:
            out[kind] = out.get(kind, 0) + n
    return out


def _histogram(buckets: LatencyBuckets) -> tuple[list[tuple[str, float]], float]:
    pairs = [(_le(bound), float(n)) for bound, n in buckets.cumulative()]
    return pairs, buckets.total


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Exporter:
    """One server's registry and its rendering."""

    def __init__(self, sources: Sources, extra: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ServerCollector(sources)
        self.registry.register(self.collector)
        for collector in extra:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The text exposition of every metric now."""
        return generate_latest(self.registry)


def snapshot(exporter: Exporter) -> dict[str, Any]:
    """The metric families by name (for the dashboard and tests): name → list of samples."""
    out: dict[str, Any] = {}
    for family in exporter.registry.collect():
        out[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return out
