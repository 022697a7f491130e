"""Federation with a real Prosody 0.12: messages, subscriptions, rooms, certificates, dialback.

Carewire (``cw-prosody.example``) and Prosody (``prosody.example``) find each other
through the tests' DNS server and authenticate with the test CA's certificates
(SASL EXTERNAL, XEP-0178). Further Prosody instances with self-signed certificates
show dialback (XEP-0220) where the policy allows it, and a pinned certificate that
the peer replaces. See docs/federation-testing.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slixmpp import JID

from tests.dnsserver import DnsServer
from tests.interop import s2s_cases as cases
from tests.peers.carewire import admin_api, start_carewire
from tests.peers.clients import Slix, online
from tests.peers.common import Peer
from tests.peers.pki import FederationPki
from tests.peers.prosody import restarted_with, start_prosody
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def cw(
    tmp_path_factory: pytest.TempPathFactory,
    federation_pki: FederationPki,
    session_dns_server: DnsServer,
    prosody: Peer,
) -> Iterator[RunningServer]:
    """Carewire with federation on and the default (open) policy."""
    data_dir = tmp_path_factory.mktemp("cw-prosody")
    with start_carewire(
        data_dir, federation_pki, session_dns_server, domain="cw-prosody.example"
    ) as server:
        yield server


async def test_messages_both_ways(cw: RunningServer, prosody: Peer, slix: Slix) -> None:
    await cases.message_both_ways(cw, prosody, slix)


async def test_subscriptions_both_ways(cw: RunningServer, prosody: Peer, slix: Slix) -> None:
    await cases.subscriptions_both_ways(cw, prosody, slix)


async def test_our_user_joins_a_prosody_room(cw: RunningServer, prosody: Peer, slix: Slix) -> None:
    await cases.our_user_in_their_room(cw, prosody, slix)


async def test_certificate_authentication_both_ways(
    cw: RunningServer, prosody: Peer, slix: Slix
) -> None:
    """Each side proves its domain with the CA-signed certificate (SASL EXTERNAL)."""
    await cases.message_both_ways(cw, prosody, slix)
    await cases.wait_log(prosody, f"Accepting SASL EXTERNAL identity from {cw.domain}")
    async with admin_api(cw) as api:
        entry = await cases.wait_status(api, prosody.domain)
    assert {s["auth"] for s in entry["streams"] if s["connected"]} == {"certificate"}
    assert all(s["fingerprint_sha256"] for s in entry["streams"] if s["connected"])


async def test_dialback_with_a_self_signed_peer(
    tmp_path: Path,
    cw: RunningServer,
    federation_pki: FederationPki,
    session_dns_server: DnsServer,
    slix: Slix,
) -> None:
    """The open default falls back to dialback for a peer whose certificate no CA signed."""
    domain = "selfsigned-prosody.example"
    with start_prosody(
        federation_pki,
        session_dns_server,
        domain=domain,
        cert=FederationPki.self_signed(domain),
        accounts=4,
    ) as peer:
        await cases.message_both_ways(cw, peer, slix)


async def test_certificates_only_refuses_dialback_and_follows_the_pin(
    tmp_path: Path, federation_pki: FederationPki, session_dns_server: DnsServer, slix: Slix
) -> None:
    """Certificates only: a self-signed peer is refused until its certificate is pinned;
    when the peer replaces its certificate the pin no longer matches and it is refused again."""
    domain = "pinned-prosody.example"
    first = FederationPki.self_signed(domain)
    with (
        start_carewire(
            tmp_path / "cw", federation_pki, session_dns_server, domain="cw-strict.example"
        ) as strict,
        start_prosody(
            federation_pki, session_dns_server, domain=domain, cert=first, accounts=6
        ) as peer,
    ):
        async with admin_api(strict) as api:
            r = await api.put("/federation/policy", json={"certificates_only": True})
            assert r.status_code == 200, r.text
            c_login, c_pw = strict.account()
            ours = await online(slix, strict, c_login, c_pw, mechanism="SCRAM-SHA-256")
            p_login, _ = peer.account()
            assert await cases.refused(ours, JID(peer.jid(p_login))) in {
                "remote-server-not-found",
                "not-authorized",
                "policy-violation",
            }
            r = await api.post(
                f"/federation/domains/{domain}/certificates",
                content=first.cert_pem(),
                headers={"Content-Type": "application/x-pem-file"},
            )
            assert r.status_code == 201, r.text
        # Pinned: authenticated by certificate now (once the refusal's back-off has passed).
        p_login, p_pw = peer.account()
        theirs = await online(slix, peer, p_login, p_pw)
        await cases.until_delivered(ours, theirs)
        await cases.message_both_ways(strict, peer, slix)
        with restarted_with(peer, FederationPki.self_signed(domain), federation_pki) as again:
            c_login, c_pw = strict.account()
            ours = await online(slix, strict, c_login, c_pw, mechanism="SCRAM-SHA-256")
            p_login, _ = again.account()
            assert await cases.refused(ours, JID(again.jid(p_login))) in {
                "remote-server-not-found",
                "not-authorized",
                "policy-violation",
            }


async def test_prosody_user_joins_our_room(cw: RunningServer, prosody: Peer, slix: Slix) -> None:
    await cases.their_user_in_our_room(cw, prosody, slix)
