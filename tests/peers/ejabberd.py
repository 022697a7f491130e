"""A real ejabberd 23.01 for the federation tests, started by the fixture, never as a service.

:func:`start_ejabberd` runs Debian's ejabberd release directly on ``erl`` (what
``ejabberdctl foreground`` does, minus the Erlang distribution: no node name, no
epmd, no cookie in the ejabberd user's home, nothing listening but the XMPP
ports) with a private ``ejabberd.yml``, Mnesia spool, log and certificates in a
fresh directory. One host (``ejabberd.example`` by default) with MUC on
``conference.<domain>``; c2s with STARTTLS required; s2s on a STARTTLS port and
a direct-TLS port; dialback (``mod_s2s_dialback``) unless ``dialback=False``.

Accounts ``user0 …`` (``pw-userN``) come from an external authentication
script (``auth_method: external``) so none has to be registered through a
second VM (``ejabberdctl register`` starts one per call).

Name resolution: Erlang's own resolver (``inet_res``) reads ``ERL_INETRC``;
ours names the tests' DNS server as the only nameserver
(``{nameserver, {127,0,0,1}, PORT}``), no resolv.conf, no hosts file but
``localhost``, so SRV and A lookups for ``carewire.example`` reach
:mod:`tests.dnsserver` and nothing else. (``ejabberdctl`` would take the same
file from ``CONFIG_DIR/inetrc``.)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.dnsserver import LOCALHOST, DnsServer
from tests.peers.common import (
    ACCOUNTS,
    Peer,
    free_ports,
    hand_over,
    missing,
    private_dir,
    require,
    stop,
    wait_listening,
)
from tests.peers.pki import FederationPki, Issued

ERL = "/usr/bin/erl"
EJABBERD_LIB = "/usr/lib/x86_64-linux-gnu"
EJABBERDCTL = "/usr/sbin/ejabberdctl"
DOMAIN = "ejabberd.example"

#: ejabberd's external auth protocol (2-byte length-prefixed requests, 2-byte answers):
#: ``userN`` exists for N < accounts, its password is ``pw-userN``.
EXTAUTH = """\
import struct, sys

ACCOUNTS = {accounts}


def known(user):
    return user.startswith("user") and user[4:].isdigit() and int(user[4:]) < ACCOUNTS


def answer(request):
    op, _, rest = request.partition(":")
    if op == "auth":
        user, server, password = rest.split(":", 2)
        return known(user) and password == "pw-" + user
    if op == "isuser":
        return known(rest.split(":", 1)[0])
    return False


stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = stdin.read(2)
    if len(head) < 2:
        break
    (size,) = struct.unpack(">H", head)
    ok = answer(stdin.read(size).decode())
    stdout.write(struct.pack(">HH", 2, 1 if ok else 0))
    stdout.flush()
"""


def missing_reason() -> str | None:
    """Why ejabberd cannot run here (``None``: it can)."""
    return missing((EJABBERDCTL, ERL, f"{EJABBERD_LIB}/ejabberd-*/ebin"), "ejabberd")


def require_ejabberd() -> None:
    """Skip loudly without ejabberd (or fail under ``CAREWIRE_TEST_REQUIRE_EJABBERD=1``)."""
    require("ejabberd", missing_reason())


def inetrc(dns: DnsServer) -> str:
    """Erlang resolver configuration: only the tests' DNS server, localhost from the file."""
    a, b, c, d = dns.host.split(".")
    return (
        "{lookup, [file, dns]}.\n"
        '{resolv_conf, ""}.\n'
        '{hosts_file, ""}.\n'
        '{host, {127,0,0,1}, ["localhost"]}.\n'
        f"{{nameserver, {{{a},{b},{c},{d}}}, {dns.port}}}.\n"
        "{timeout, 2000}.\n"
        "{retry, 2}.\n"
    )


def config_text(peer: Peer, *, dialback: bool, extra: str) -> str:
    """ejabberd.yml of one instance."""
    d = peer.directory
    modules = [
        "  mod_roster: {}",
        "  mod_disco: {}",
        "  mod_ping: {}",
        "  mod_vcard: {}",
        "  mod_caps: {}",
        "  mod_muc:",
        f'    host: "{peer.muc}"',
        "    access_create: all",
        "    access_persistent: all",
        "    default_room_options:",
        "      mam: false",
    ]
    if dialback:
        modules.append("  mod_s2s_dialback: {}")
    p = peer.ports
    return f"""\
hosts:
  - "{peer.domain}"
loglevel: info
log_rotate_count: 0
acme:
  auto: false
certfiles:
  - "{d / "certs" / f"{peer.domain}.pem"}"
ca_file: "{d / "certs" / "ca.crt"}"
s2s_use_starttls: required
s2s_timeout: 10000
s2s_dns_timeout: 3
s2s_dns_retries: 1
outgoing_s2s_families: [ipv4]
auth_method: external
extauth_program: "/usr/bin/python3 {d / "extauth.py"}"
auth_use_cache: false
shaper:
  normal: 1000000
listen:
  - port: {p["c2s"]}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
  - port: {p["s2s"]}
    ip: "127.0.0.1"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
  - port: {p["s2s_tls"]}
    ip: "127.0.0.1"
    module: ejabberd_s2s_in
    tls: true
    max_stanza_size: 524288
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  s2s:
    allow: all
modules:
{chr(10).join(modules)}
{extra}
"""


def install_certificate(peer: Peer, cert: Issued, pki: FederationPki) -> None:
    """The certificate and key in one PEM (``certfiles``) and the trusted CA."""
    certs = peer.directory / "certs"
    cert.write(certs, peer.domain)
    pem = certs / f"{peer.domain}.pem"
    pem.write_text(cert.cert_pem() + cert.key_pem())
    pki.write_ca(certs)


@contextmanager
def start_ejabberd(
    pki: FederationPki,
    dns: DnsServer,
    *,
    domain: str = DOMAIN,
    cert: Issued | None = None,
    dialback: bool = True,
    extra: str = "",
    accounts: int = ACCOUNTS,
) -> Iterator[Peer]:
    """Run ejabberd for ``domain`` until the block ends; its SRV records go into ``dns``."""
    c2s, s2s, s2s_tls = free_ports(3)
    peer = Peer(
        name="ejabberd",
        domain=domain,
        ports={"c2s": c2s, "s2s": s2s, "s2s_tls": s2s_tls},
        directory=private_dir("ejabberd"),
        accounts=accounts,
    )
    for sub in ("log", "spool"):
        (peer.directory / sub).mkdir()
    install_certificate(peer, cert or pki.server(domain), pki)
    (peer.directory / "extauth.py").write_text(EXTAUTH.format(accounts=accounts))
    (peer.directory / "inetrc").write_text(inetrc(dns))
    (peer.directory / "ejabberd.yml").write_text(config_text(peer, dialback=dialback, extra=extra))
    for host in (domain, peer.muc):
        dns.xmpp_domain(host, s2s_port=s2s, s2s_tls_port=s2s_tls, c2s_port=c2s, target=LOCALHOST)
    try:
        with run(peer) as running:
            yield running
    finally:
        for host in (domain, peer.muc):
            dns.remove(host)
        peer.remove()


@contextmanager
def run(peer: Peer) -> Iterator[Peer]:
    """Start ejabberd on an already written directory; stop it at the end (directory kept)."""
    d = peer.directory
    popen_user = hand_over(d, "ejabberd")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(d),
        "ERL_LIBS": EJABBERD_LIB,
        "ERL_INETRC": str(d / "inetrc"),
        "ERL_CRASH_DUMP_BYTES": "0",
        "EJABBERD_CONFIG_PATH": str(d / "ejabberd.yml"),
        "EJABBERD_LOG_PATH": str(d / "log" / "ejabberd.log"),
        "EJABBERD_PID_PATH": str(d / "ejabberd.pid"),
    }
    argv = [ERL, "-noshell", "-noinput", "+K", "true", "-mnesia", "dir", f'"{d / "spool"}"']
    argv += ["-s", "ejabberd"]
    with (d / "log" / "stdout.log").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=d,
            env=env,
            **popen_user,  # type: ignore[call-overload]
        )
    peer.proc = proc
    try:
        wait_listening(peer.ports["c2s"], proc, d / "log" / "ejabberd.log", timeout=30)
        yield peer
    finally:
        stop(proc, timeout=15)
        peer.proc = None


@contextmanager
def restarted_with(peer: Peer, cert: Issued, pki: FederationPki) -> Iterator[Peer]:
    """Stop ``peer``, give it ``cert``, start it again on the same ports and data."""
    assert peer.proc is not None
    stop(peer.proc, timeout=15)
    install_certificate(peer, cert, pki)
    with run(peer) as again:
        yield again


def log_path(peer: Peer) -> Path:
    return peer.directory / "log" / "ejabberd.log"
