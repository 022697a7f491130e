"""A real Prosody 0.12 for the federation tests, started by the fixture, never as a service.

:func:`start_prosody` writes a private configuration (Lua) into a fresh directory:
one VirtualHost (``prosody.example`` by default) with a MUC component on
``conference.<domain>``, internal storage with ``user0 …`` accounts written
straight into it (``pw-userN``, no ``prosodyctl`` run), c2s with STARTTLS
required, s2s on a STARTTLS port and a direct-TLS port, TLS from
:mod:`tests.peers.pki` (the test CA as ``cafile``). Name resolution goes
through lua-unbound (Prosody uses it when installed) forwarding every query to
the tests' DNS server (``unbound = { forward = "127.0.0.1@PORT" }``), so SRV
records in :mod:`tests.dnsserver` say where ``carewire.example`` listens, and the
machine's resolver is never asked. The fixture publishes Prosody's own SRV
records there too.

``secure_auth=True`` is Prosody's ``s2s_secure_auth`` (certificates only, no
dialback); ``insecure_domains`` lists peers allowed dialback anyway.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
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

PROSODY = "/usr/bin/prosody"
DOMAIN = "prosody.example"
#: Prosody's log level; ``CAREWIRE_TEST_PEER_LOG=debug`` shows its s2s and DNS steps.
LOG_LEVEL = os.environ.get("CAREWIRE_TEST_PEER_LOG", "info")


#: Without lua-unbound Prosody falls back to a resolver that cannot be pointed at a port.
NEEDS = (PROSODY, "/usr/lib/*/lua/5.4/lunbound.so")


def missing_reason() -> str | None:
    """Why Prosody cannot run here (``None``: it can)."""
    return missing(NEEDS, "prosody lua-unbound")


def require_prosody() -> None:
    """Skip loudly without Prosody (or fail under ``CAREWIRE_TEST_REQUIRE_PROSODY=1``)."""
    require("prosody", missing_reason())


def _lua(value: object) -> str:
    """A Python value as a Lua literal (strings, bools, ints, lists, dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{ " + "; ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "{ " + ", ".join(_lua(v) for v in value) + " }"
    raise TypeError(value)


def config_text(
    peer: Peer,
    *,
    dns: DnsServer,
    secure_auth: bool,
    insecure_domains: Sequence[str],
    extra: str,
) -> str:
    """The Lua configuration of one Prosody instance."""
    d = peer.directory
    ssl = {
        "certificate": str(d / "certs" / f"{peer.domain}.crt"),
        "key": str(d / "certs" / f"{peer.domain}.key"),
        "cafile": str(d / "certs" / "ca.crt"),
    }
    settings: dict[str, object] = {
        "pidfile": str(d / "prosody.pid"),
        "data_path": str(d / "data"),
        "interfaces": ["127.0.0.1"],
        "local_interfaces": ["127.0.0.1"],
        "c2s_ports": [peer.ports["c2s"]],
        "c2s_direct_tls_ports": [],
        "s2s_ports": [peer.ports["s2s"]],
        "s2s_direct_tls_ports": [peer.ports["s2s_tls"]],
        "http_ports": [],
        "https_ports": [],
        "network_backend": "epoll",
        "modules_enabled": [
            "roster",
            "saslauth",
            "tls",
            "dialback",
            "disco",
            "ping",
            "presence",
            "vcard",
            "private",
            "time",
            "version",
            "s2s_bidi",
        ],
        "modules_disabled": ["posix"],
        "authentication": "internal_plain",
        "storage": "internal",
        "allow_registration": False,
        "c2s_require_encryption": True,
        "s2s_require_encryption": True,
        "s2s_secure_auth": secure_auth,
        "s2s_insecure_domains": list(insecure_domains),
        "s2s_timeout": 10,
        "ssl": ssl,
        # Only the tests' server: lua-unbound also reads /etc/resolv.conf by default and
        # spreads queries over every forwarder it knows, so a slow answer from ours sent
        # the next one to the machine's resolver (NXDOMAIN for these names, cached).
        "unbound": {"forward": f"{dns.host}@{dns.port}", "hoststxt": False, "resolvconf": False},
        # Every server here listens on 127.0.0.1 only; unbound answers AAAA for the SRV
        # target "localhost" itself (::1), which nothing listens on.
        "use_ipv6": False,
    }
    lines = [f"{key} = {_lua(value)}" for key, value in settings.items()]
    lines.append(
        f'log = {{ {{ levels = {{ min = {_lua(LOG_LEVEL)} }}, to = "file", '
        f"filename = {_lua(str(d / 'log' / 'prosody.log'))} }} }}"
    )
    lines.append(extra)
    lines.append(f"VirtualHost {_lua(peer.domain)}")
    lines.append(f'Component {_lua(peer.muc)} "muc"')
    lines.append("  restrict_room_creation = false")
    return "\n".join(lines) + "\n"


def write_accounts(peer: Peer) -> None:
    """``user0 …`` in internal storage (``internal_plain``: the password as stored)."""
    host = "".join(c if c.isalnum() else f"%{ord(c):02x}" for c in peer.domain)
    accounts = peer.directory / "data" / host / "accounts"
    accounts.mkdir(parents=True)
    for n in range(peer.accounts):
        (accounts / f"user{n}.dat").write_text(f'return {{\n\t["password"] = "pw-user{n}";\n}};\n')


def install_certificate(peer: Peer, cert: Issued, ca: FederationPki) -> None:
    """Put the peer's certificate, key and the trusted CA where its config points."""
    certs = peer.directory / "certs"
    cert.write(certs, peer.domain)
    ca.write_ca(certs)


@contextmanager
def start_prosody(
    pki: FederationPki,
    dns: DnsServer,
    *,
    domain: str = DOMAIN,
    cert: Issued | None = None,
    secure_auth: bool = False,
    insecure_domains: Sequence[str] = (),
    extra: str = "",
    accounts: int = ACCOUNTS,
) -> Iterator[Peer]:
    """Run Prosody for ``domain`` until the block ends; its SRV records go into ``dns``."""
    c2s, s2s, s2s_tls = free_ports(3)
    peer = Peer(
        name="prosody",
        domain=domain,
        ports={"c2s": c2s, "s2s": s2s, "s2s_tls": s2s_tls},
        directory=private_dir("prosody"),
        accounts=accounts,
    )
    (peer.directory / "log").mkdir()
    install_certificate(peer, cert or pki.server(domain), pki)
    write_accounts(peer)
    config = peer.directory / "prosody.cfg.lua"
    config.write_text(
        config_text(
            peer, dns=dns, secure_auth=secure_auth, insecure_domains=insecure_domains, extra=extra
        )
    )
    for host in (domain, peer.muc):
        dns.xmpp_domain(host, s2s_port=s2s, s2s_tls_port=s2s_tls, c2s_port=c2s, target=LOCALHOST)
    try:
        with run(peer, config) as running:
            yield running
    finally:
        for host in (domain, peer.muc):
            dns.remove(host)
        peer.remove()


@contextmanager
def run(peer: Peer, config: Path) -> Iterator[Peer]:
    """Start Prosody on an already written directory; stop it at the end (directory kept)."""
    popen_user = hand_over(peer.directory, "prosody")
    log = peer.directory / "log" / "prosody.log"
    with (peer.directory / "log" / "stdout.log").open("ab") as out:
        proc = subprocess.Popen(
            [PROSODY, "--config", str(config), "-F"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=peer.directory,
            **popen_user,  # type: ignore[call-overload]
        )
    peer.proc = proc
    try:
        wait_listening(peer.ports["s2s"], proc, log, timeout=20)
        wait_listening(peer.ports["c2s"], proc, log, timeout=5)
        yield peer
    finally:
        stop(proc)
        peer.proc = None


@contextmanager
def restarted_with(peer: Peer, cert: Issued, pki: FederationPki) -> Iterator[Peer]:
    """Stop ``peer``, give it ``cert``, start it again on the same ports and data."""
    assert peer.proc is not None
    stop(peer.proc)
    install_certificate(peer, cert, pki)
    with run(peer, peer.directory / "prosody.cfg.lua") as again:
        yield again
