"""The federation resolver against a real DNS server (tests/dnsserver.py on loopback UDP).

``[s2s] dns_server`` points the resolver at the test's server, so nothing here
touches the machine's resolver: SRV for direct TLS first, then STARTTLS, each in
RFC 2782 order; the "." target that says the service is not offered; the
domain itself on 5269 without records; addresses of SRV targets.
"""

from __future__ import annotations

from carewire.net.s2s_resolve import Resolver, Target
from tests.dnsserver import DnsServer, Srv


async def test_direct_tls_records_come_before_starttls_ones(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("peer.test", s2s_port=40001, s2s_tls_port=40002)
    resolver = Resolver(dns_server=dns_server.address)
    assert await resolver.targets("peer.test") == [
        Target("xmpp.peer.test", 40002, direct_tls=True),
        Target("xmpp.peer.test", 40001),
    ]
    assert await resolver.address("xmpp.peer.test") == "127.0.0.1"
    assert ("_xmpps-server._tcp.peer.test", "SRV") in dns_server.queries


async def test_priorities_order_the_targets(dns_server: DnsServer) -> None:
    dns_server.srv["_xmpp-server._tcp.multi.test"] = [
        Srv("backup.multi.test", 5300, priority=20, weight=5),
        Srv("main-b.multi.test", 5290, priority=10, weight=0),
        Srv("main-a.multi.test", 5280, priority=10, weight=50),
    ]
    resolver = Resolver(dns_server=dns_server.address)
    for _ in range(5):
        targets = await resolver.targets("multi.test")
        assert {t.host for t in targets[:2]} == {"main-a.multi.test", "main-b.multi.test"}
        assert targets[2] == Target("backup.multi.test", 5300)


async def test_no_records_fall_back_to_the_domain(dns_server: DnsServer) -> None:
    dns_server.add_a("plain.test", "127.0.0.2")
    resolver = Resolver(dns_server=dns_server.address)
    assert await resolver.targets("plain.test") == [Target("plain.test", 5269)]
    assert await resolver.address("plain.test") == "127.0.0.2"
    assert await resolver.targets("nxdomain.test") == [Target("nxdomain.test", 5269)]
    assert await resolver.address("nxdomain.test") == "nxdomain.test"  # left to connect()


async def test_a_dot_target_means_not_offered(dns_server: DnsServer) -> None:
    dns_server.srv["_xmpps-server._tcp.dot.test"] = [Srv("", 0)]  # rendered as the "." target
    dns_server.add_srv("xmpp-server", "dot.test", "xmpp.dot.test", 40010)
    resolver = Resolver(dns_server=dns_server.address)
    assert await resolver.targets("dot.test") == [Target("xmpp.dot.test", 40010)]


async def test_a_static_route_wins_over_dns(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("routed.test", s2s_port=40020)
    resolver = Resolver(routes={"routed.test": "127.0.0.1:40030"}, dns_server=dns_server.address)
    assert await resolver.targets("routed.test") == [Target("127.0.0.1", 40030)]
    assert not any(name.endswith("routed.test") for name, _ in dns_server.queries)
