"""Three federating Carewire servers (a.test, b.test, c.test), shared by the federation modules.

a.test and b.test hold certificates from a test CA naming the domain and its
``chat.`` rooms' domain (SASL EXTERNAL, XEP-0178, for both); c.test keeps its
self-signed certificate and authenticates with dialback (XEP-0220). Static
routes (``[s2s] routes``) make them find each other, and each other's
``chat.`` domains, on ephemeral ports; ``silent.test`` accepts connections and
never answers, nothing listens for ``nowhere.test``.

The fixture that uses :func:`federated_servers` is session-scoped (in
tests/interop/conftest.py) and the modules that use it share one xdist group
(tests/conftest.py ``_SHARED_GROUPS``), so the three servers start once.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.security.pki import Pki
from tests.serverproc import ServeSpec, init_data_dir, server_env, serving_together

DOMAINS = ("a.test", "b.test", "c.test")
ACCOUNTS = 30  # per server, for the tests of every module sharing the servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def federated_servers(mktemp: Any) -> Iterator[dict[str, Any]]:
    """Start the three servers; yields ``{"pki": Pki, "a.test": RunningServer, …}``.

    ``mktemp`` is ``tmp_path_factory.mktemp``.
    """
    pki = Pki()
    root: Path = mktemp("ca") / "root.pem"
    root.write_text(pki.root.cert_pem())
    silent = socket.socket()  # accepts connections (backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead = _free_port()  # nothing listens here
    ports = {d: _free_port() for d in DOMAINS}
    routes = {d: f"127.0.0.1:{p}" for d, p in ports.items()}
    routes |= {f"chat.{d}": f"127.0.0.1:{p}" for d, p in ports.items()}  # the rooms' domains
    routes["silent.test"] = f"127.0.0.1:{silent.getsockname()[1]}"
    routes["nowhere.test"] = f"127.0.0.1:{dead}"

    def prepare(domain: str) -> ServeSpec:
        data_dir = mktemp(domain)
        env = server_env(
            {
                "CAREWIRE_S2S_ENABLED": "true",
                "CAREWIRE_S2S_TLS_PORT": "0",
                "CAREWIRE_S2S_CA_FILE": str(root),
                "CAREWIRE_S2S_CONNECT_TIMEOUT": "3s",
                "CAREWIRE_S2S_ROUTES": ",".join(
                    f"{d}={r}" for d, r in routes.items() if d not in (domain, f"chat.{domain}")
                ),
            }
        )
        init_data_dir(data_dir, accounts=ACCOUNTS, env=env, domain=domain)
        if domain != "c.test":  # c.test keeps its self-signed certificate: dialback
            leaf = pki.leaf([domain, f"chat.{domain}"], subject=domain)
            (data_dir / "certs" / "xmpp.pem").write_text(pki.chain_pem(leaf, with_key=False))
            (data_dir / "certs" / "xmpp.key").write_text(leaf.key_pem())
        return ServeSpec(data_dir, env, accounts=ACCOUNTS, domain=domain, s2s_port=ports[domain])

    try:
        with ThreadPoolExecutor(len(DOMAINS)) as pool:  # the inits overlap, as do the start-ups
            specs = list(pool.map(prepare, DOMAINS))
        with serving_together(specs) as running:
            yield {"pki": pki, **{s.domain: s for s in running}}
    finally:
        silent.close()
