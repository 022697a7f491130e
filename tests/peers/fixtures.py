"""Session fixtures of the federation tests: the test CA, one Prosody, one ejabberd.

Registered for the whole suite (``pytest_plugins`` in tests/conftest.py). Each
peer is started once per pytest worker, on first use, with its SRV records in
the session's DNS server (``session_dns_server``); tests take fresh accounts
with ``peer.account()``. A test that needs a peer configured differently (or
restarted with another certificate) starts its own with ``start_prosody`` /
``start_ejabberd`` and a domain of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dnsserver import DnsServer
from tests.peers.common import Peer
from tests.peers.ejabberd import require_ejabberd, start_ejabberd
from tests.peers.pki import FederationPki
from tests.peers.prosody import require_prosody, start_prosody


@pytest.fixture(scope="session")
def federation_pki() -> FederationPki:
    """The test CA every federating server of the session trusts."""
    return FederationPki()


@pytest.fixture(scope="session")
def prosody(federation_pki: FederationPki, session_dns_server: DnsServer) -> Iterator[Peer]:
    """Prosody for ``prosody.example`` (CA-signed certificate, dialback allowed)."""
    require_prosody()
    with start_prosody(federation_pki, session_dns_server) as peer:
        yield peer


@pytest.fixture(scope="session")
def ejabberd(federation_pki: FederationPki, session_dns_server: DnsServer) -> Iterator[Peer]:
    """ejabberd for ``ejabberd.example`` (CA-signed certificate, dialback enabled)."""
    require_ejabberd()
    with start_ejabberd(federation_pki, session_dns_server) as peer:
        yield peer
