"""Where a remote domain is served: static routes, SRV (RFC 6120 §3.2, XEP-0368), fallback.

Order of attempts for a domain: a static route from ``[s2s.tls_routes]``
(direct TLS) or ``[s2s.routes]`` (STARTTLS) when configured; else the SRV
records ``_xmpps-server._tcp`` (direct TLS) then ``_xmpp-server._tcp``, each
set sorted by RFC 2782 (priority, then a weighted random choice); a single
record with target ``.`` means the service is deliberately not offered;
without records, the domain itself on port 5269.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

log = logging.getLogger(__name__)

DEFAULT_PORT = 5269
DNS_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Target:
    """One place to connect to."""

    host: str
    port: int
    direct_tls: bool = False


@dataclass(frozen=True, slots=True)
class SrvRecord:
    """One SRV record (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


def order_srv(records: Sequence[SrvRecord], rng: random.Random | None = None) -> list[SrvRecord]:
    """RFC 2782 order: lowest priority first; within a priority, weighted random selection.

    Records of weight 0 are placed first in each priority so they keep a
    small chance of selection, as the RFC's algorithm does.
    """
    rng = rng or random.Random()
    out: list[SrvRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)
        while group:
            total = sum(r.weight for r in group)
            pick = rng.randint(0, total)
            running = 0
            for i, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    out.append(group.pop(i))
                    break
    return out


def parse_hostport(value: str, key: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) of a static route.

    Raises:
        ValueError: naming ``key`` when the value is malformed.
    """
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"{key}: expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


class Resolver:
    """Finds targets for a domain (static routes, SRV, fallback) and addresses for hosts."""

    def __init__(
        self,
        *,
        routes: dict[str, str] | None = None,
        tls_routes: dict[str, str] | None = None,
        dns_server: str = "",
    ) -> None:
        self.routes = {
            d.lower(): parse_hostport(v, f"s2s.routes.{d}") for d, v in (routes or {}).items()
        }
        self.tls_routes = {
            d.lower(): parse_hostport(v, f"s2s.tls_routes.{d}")
            for d, v in (tls_routes or {}).items()
        }
        self._dns: dns.asyncresolver.Resolver | None = None
        if dns_server:
            host, port = parse_hostport(dns_server, "s2s.dns_server")
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = [host]
            self._dns.port = port
        self._system_dns: dns.asyncresolver.Resolver | None = None

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self._dns is not None:
            return self._dns
        if self._system_dns is None:
            self._system_dns = dns.asyncresolver.Resolver()
        return self._system_dns

    async def targets(self, domain: str) -> list[Target]:
        """Where to try connecting for ``domain``, in order."""
        domain = domain.lower()
        out: list[Target] = []
        if domain in self.tls_routes:
            out.append(Target(*self.tls_routes[domain], direct_tls=True))
        if domain in self.routes:
            out.append(Target(*self.routes[domain]))
        if out:
            return out
        for service, direct in (("_xmpps-server._tcp", True), ("_xmpp-server._tcp", False)):
            records = await self.srv(f"{service}.{domain}")
            if len(records) == 1 and records[0].target in ("", "."):
                continue  # RFC 2782: "the service is decidedly not available"
            out += [Target(r.target, r.port, direct) for r in order_srv(records)]
        return out or [Target(domain, DEFAULT_PORT)]

    async def srv(self, name: str) -> list[SrvRecord]:
        """The SRV records of ``name`` (none when absent or DNS fails)."""
        try:
            answer = await self._resolver().resolve(name, "SRV", lifetime=DNS_TIMEOUT)
        except (dns.exception.DNSException, OSError) as exc:
            log.debug("s2s: no SRV records for %s: %s", name, exc)
            return []
        return [
            SrvRecord(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True))
            for r in answer
        ]

    async def address(self, host: str) -> str:
        """An address for ``host``: through the configured DNS server, else the system's."""
        if self._dns is None or _is_address(host):
            return host
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._dns.resolve(host, rdtype, lifetime=DNS_TIMEOUT)
            except (dns.exception.DNSException, OSError):
                continue
            for r in answer:
                return str(r.address)
        return host


def _is_address(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()
