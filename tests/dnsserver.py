"""A small authoritative DNS server for the federation tests, on loopback UDP and TCP.

Federation resolves a peer with SRV records (``_xmpp-server._tcp.D``,
``_xmpps-server._tcp.D``) and falls back to the domain's address. The tests
must not touch the machine's resolver, so Carewire (``[s2s] dns_server``),
Prosody (lua-unbound forwarding) and ejabberd (Erlang's ``inet_res`` with an
``ERL_INETRC`` nameserver) all ask this server instead.

:class:`DnsServer` answers from a table the test fills (:meth:`DnsServer.add_a`,
:meth:`DnsServer.add_srv`, or :meth:`DnsServer.xmpp_domain` for the usual set):

- a name with records of the asked type: those records, authoritative, with the
  A records of SRV targets in the additional section;
- a known name without records of that type (no AAAA is ever served): NOERROR,
  empty answer and the zone's SOA (NODATA), so resolvers fall back to IPv4 at once;
- any other name: NXDOMAIN with the SOA.

Names are case-insensitive; a packet that does not parse is dropped (UDP) or
closes the connection (TCP) and the server keeps serving. Messages are built
with dnspython's message classes; sockets are plain blocking ones served by two
daemon threads, so synchronous and asyncio tests (and child processes) can all
use it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

TTL = 0  # peers come and go on new ports within a run: nothing may be cached
#: The SRV target every resolver knows without asking (served here too, as 127.0.0.1).
LOCALHOST = "localhost"
#: The SOA every negative answer carries (one made-up zone for every name).
_SOA = "ns.dns.test. hostmaster.dns.test. 1 3600 600 86400 0"


@dataclass(frozen=True, slots=True)
class Srv:
    """One SRV record's data."""

    target: str
    port: int
    priority: int = 0
    weight: int = 0


@dataclass(slots=True)
class DnsServer:
    """An authoritative server answering from :attr:`a` and :attr:`srv` (see the module)."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Name (lower case, no trailing dot) → IPv4 addresses.
    a: dict[str, list[str]] = field(default_factory=lambda: {LOCALHOST: ["127.0.0.1"]})
    #: Full SRV owner name (``_xmpp-server._tcp.d``) → records.
    srv: dict[str, list[Srv]] = field(default_factory=dict)
    #: Every question received, (name, type), in order: tests can check what was asked.
    queries: list[tuple[str, str]] = field(default_factory=list)
    _udp: socket.socket | None = None
    _tcp: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the table -----------------------------------------------------------------

    def add_a(self, name: str, address: str = "127.0.0.1") -> None:
        """Serve ``address`` as an A record of ``name``."""
        with self._lock:
            self.a.setdefault(_key(name), []).append(address)

    def add_srv(
        self, service: str, domain: str, target: str, port: int, *, priority: int = 0
    ) -> None:
        """Serve ``_service._tcp.domain SRV priority 0 port target``."""
        with self._lock:
            owner = _key(f"_{service.lstrip('_')}._tcp.{domain}")
            self.srv.setdefault(owner, []).append(Srv(_key(target), port, priority))

    def xmpp_domain(
        self,
        domain: str,
        *,
        s2s_port: int | None = None,
        s2s_tls_port: int | None = None,
        c2s_port: int | None = None,
        address: str = "127.0.0.1",
        target: str | None = None,
    ) -> None:
        """The records of one XMPP domain: its address and the SRV records of the ports given.

        ``target`` (default ``xmpp.<domain>``) is the host the SRV records name, with
        an A record of its own, as real deployments have. Pass ``LOCALHOST`` when
        ejabberd must reach the domain: it looks SRV targets up with the system's
        ``getaddrinfo``, which never asks this server, and ``localhost`` is the one
        name every resolver answers by itself.
        """
        host = target or f"xmpp.{domain}"
        self.add_a(domain, address)
        if host != LOCALHOST:
            self.add_a(host, address)
        if s2s_port is not None:
            self.add_srv("xmpp-server", domain, host, s2s_port)
        if s2s_tls_port is not None:
            self.add_srv("xmpps-server", domain, host, s2s_tls_port)
        if c2s_port is not None:
            self.add_srv("xmpp-client", domain, host, c2s_port)

    def remove(self, domain: str) -> None:
        """Forget every record at or under ``domain`` (its SRV owners included)."""
        key = _key(domain)
        with self._lock:
            for table in (self.a, self.srv):
                for name in [n for n in table if n == key or n.endswith("." + key)]:
                    del table[name]

    @property
    def address(self) -> str:
        """``host:port``, the form ``[s2s] dns_server`` takes."""
        return f"{self.host}:{self.port}"

    # -- answering -----------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query in wire format (``None``: not a query we can answer)."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError, struct.error):
            return None
        if query.flags & dns.flags.QR:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = _key(question.name.to_text())
        rdtype = question.rdtype
        self.queries.append((name, dns.rdatatype.to_text(rdtype)))
        with self._lock:
            known = name in self.a or name in self.srv
            if rdtype == dns.rdatatype.A and name in self.a:
                response.answer.append(_rrset(name, "A", self.a[name]))
            elif rdtype == dns.rdatatype.SRV and name in self.srv:
                records = self.srv[name]
                texts = [f"{r.priority} {r.weight} {r.port} {r.target}." for r in records]
                response.answer.append(_rrset(name, "SRV", texts))
                for target in dict.fromkeys(r.target for r in records):
                    if target in self.a:
                        response.additional.append(_rrset(target, "A", self.a[target]))
            else:
                response.authority.append(_rrset(".", "SOA", [_SOA]))
                if not known:
                    response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    # -- serving -------------------------------------------------------------------

    def start(self) -> DnsServer:
        """Bind UDP and TCP on one free loopback port and serve in daemon threads."""
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.port:
                    raise
                continue
            tcp.listen(16)
            self._udp, self._tcp, self.port = udp, tcp, port
            break
        else:
            raise OSError("no loopback port free for both UDP and TCP")
        for target in (self._serve_udp, self._serve_tcp):
            thread = threading.Thread(target=target, name=f"dns-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Close the sockets; the threads end on their own."""
        for sock in (self._udp, self._tcp):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _serve_udp(self) -> None:
        assert self._udp is not None
        sock = self._udp
        while True:
            try:
                wire, peer = sock.recvfrom(65535)
            except OSError:
                return
            reply = self.answer(wire)
            if reply is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while True:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn, contextlib.suppress(OSError):
            while True:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                reply = self.answer(wire) if wire is not None else None
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)


def _key(name: str) -> str:
    return name.lower().rstrip(".") or "."


def _rrset(name: str, rdtype: str, texts: list[str]) -> dns.rrset.RRset:
    owner = dns.name.from_text(name)
    return dns.rrset.from_text_list(owner, TTL, dns.rdataclass.IN, rdtype, texts)


def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


@contextlib.contextmanager
def running() -> Iterator[DnsServer]:
    """A started :class:`DnsServer`, stopped on exit."""
    server = DnsServer().start()
    try:
        yield server
    finally:
        server.stop()
