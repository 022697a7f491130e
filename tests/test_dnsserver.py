"""The tests' DNS server (tests/dnsserver.py), queried with dnspython over UDP and TCP."""

from __future__ import annotations

import socket
import struct

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from tests.dnsserver import DnsServer


def ask(server: DnsServer, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, use_edns=0)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, server.host, port=server.port, timeout=2)


def test_srv_records_with_their_targets_addresses(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("prosody.test", s2s_port=40001, s2s_tls_port=40002, c2s_port=40003)
    for tcp in (False, True):
        reply = ask(dns_server, "_xmpp-server._tcp.prosody.test", "SRV", tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.flags & dns.flags.AA
        [srv] = list(reply.answer[0])
        assert (srv.port, srv.target.to_text()) == (40001, "xmpp.prosody.test.")
        [extra] = reply.additional
        assert [r.address for r in extra] == ["127.0.0.1"]
    tls = ask(dns_server, "_xmpps-server._tcp.prosody.test", "SRV")
    assert next(iter(tls.answer[0])).port == 40002
    client = ask(dns_server, "_xmpp-client._tcp.prosody.test", "SRV")
    assert next(iter(client.answer[0])).port == 40003


def test_a_record_case_insensitive_and_no_aaaa(dns_server: DnsServer) -> None:
    dns_server.add_a("Ejabberd.Test", "127.0.0.1")
    reply = ask(dns_server, "ejabberd.TEST.", "A")
    assert [r.address for r in reply.answer[0]] == ["127.0.0.1"]
    nodata = ask(dns_server, "ejabberd.test", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR
    assert not nodata.answer
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA


def test_unknown_names_are_nxdomain(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("known.test", s2s_port=40001)
    for name, rdtype in (("unknown.test", "A"), ("_xmpp-server._tcp.unknown.test", "SRV")):
        reply = ask(dns_server, name, rdtype)
        assert reply.rcode() == dns.rcode.NXDOMAIN
    # A domain with an address but no SRV: resolvers fall back to the domain itself.
    assert ask(dns_server, "_xmpps-server._tcp.known.test", "SRV").rcode() == dns.rcode.NXDOMAIN


def test_remove_forgets_domain_and_its_srv(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("gone.test", s2s_port=40001)
    dns_server.remove("gone.test")
    assert ask(dns_server, "_xmpp-server._tcp.gone.test", "SRV").rcode() == dns.rcode.NXDOMAIN
    assert ask(dns_server, "gone.test", "A").rcode() == dns.rcode.NXDOMAIN


def test_a_stub_resolver_pointed_at_it(dns_server: DnsServer) -> None:
    dns_server.xmpp_domain("peer.test", s2s_port=45269)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_server.host]
    resolver.port = dns_server.port
    answer = resolver.resolve("_xmpp-server._tcp.peer.test", "SRV")
    assert [r.port for r in answer] == [45269]
    assert ("_xmpp-server._tcp.peer.test", "SRV") in dns_server.queries


def test_garbage_is_dropped_and_the_server_keeps_serving(dns_server: DnsServer) -> None:
    dns_server.add_a("still.test")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x00\x01not dns at all", (dns_server.host, dns_server.port))
    with socket.create_connection((dns_server.host, dns_server.port), timeout=2) as tcp:
        tcp.sendall(struct.pack("!H", 5) + b"junk!")
        assert tcp.recv(10) == b""  # closed, no answer
    # A response (QR set) sent as a query is ignored too.
    response = dns.message.make_response(dns.message.make_query("still.test", "A"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(response.to_wire(), (dns_server.host, dns_server.port))
    assert ask(dns_server, "still.test", "A").answer
    assert ask(dns_server, "still.test", "A", tcp=True).answer
