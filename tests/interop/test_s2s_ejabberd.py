"""Federation with a real ejabberd 23.01: messages, subscriptions, rooms, certificates, allow-list.

Carewire (``cw-ejabberd.example``) and ejabberd (``ejabberd.example``) find each
other through the tests' DNS server and authenticate with the test CA's
certificates (SASL EXTERNAL). A second Carewire whose allow-list names another
partner refuses ejabberd. See docs/federation-testing.md.
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
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def cw(
    tmp_path_factory: pytest.TempPathFactory,
    federation_pki: FederationPki,
    session_dns_server: DnsServer,
    ejabberd: Peer,
) -> Iterator[RunningServer]:
    """Carewire with federation on and the default (open) policy."""
    data_dir = tmp_path_factory.mktemp("cw-ejabberd")
    with start_carewire(
        data_dir, federation_pki, session_dns_server, domain="cw-ejabberd.example"
    ) as server:
        yield server


async def test_messages_both_ways(cw: RunningServer, ejabberd: Peer, slix: Slix) -> None:
    await cases.message_both_ways(cw, ejabberd, slix)


async def test_subscriptions_both_ways(cw: RunningServer, ejabberd: Peer, slix: Slix) -> None:
    await cases.subscriptions_both_ways(cw, ejabberd, slix)


async def test_our_user_joins_an_ejabberd_room(
    cw: RunningServer, ejabberd: Peer, slix: Slix
) -> None:
    await cases.our_user_in_their_room(cw, ejabberd, slix)


async def test_certificate_authentication_both_ways(
    cw: RunningServer, ejabberd: Peer, slix: Slix
) -> None:
    """ejabberd accepts our CA-signed certificate (SASL EXTERNAL) on its inbound stream."""
    await cases.message_both_ways(cw, ejabberd, slix)
    await cases.wait_log(
        ejabberd, f"Accepted inbound s2s EXTERNAL authentication {cw.domain} -> {ejabberd.domain}"
    )


async def test_domain_not_on_the_allow_list_is_refused(
    tmp_path: Path,
    federation_pki: FederationPki,
    session_dns_server: DnsServer,
    ejabberd: Peer,
    slix: Slix,
) -> None:
    """Only prosody.example may federate: ejabberd is refused both ways; clients carry on."""
    with start_carewire(
        tmp_path / "cw", federation_pki, session_dns_server, domain="cw-allowlist.example"
    ) as strict:
        async with admin_api(strict) as api:
            r = await api.post("/federation/allowed-domains", json={"domain": "prosody.example"})
            assert r.status_code == 201, r.text
        c_login, c_pw = strict.account()
        ours = await online(slix, strict, c_login, c_pw, mechanism="SCRAM-SHA-256")
        e_login, e_pw = ejabberd.account()
        theirs = await online(slix, ejabberd, e_login, e_pw)
        assert await cases.refused(ours, JID(theirs.jid.bare)) in {
            "remote-server-not-found",
            "not-allowed",
            "policy-violation",
        }
        # ejabberd's stream in is refused: its user's message comes back as an error.
        assert await cases.refused(theirs, JID(ours.jid.bare))
        # Local traffic is untouched.
        other_login, other_pw = strict.account()
        other = await online(slix, strict, other_login, other_pw, mechanism="SCRAM-SHA-256")
        ours.xmpp.send_message(mto=JID(other.jid.bare), mbody="still here", mtype="chat")
        got = await other.next(other.messages, cases.S2S_TIMEOUT)
        assert got["body"] == "still here"


async def test_ejabberd_user_joins_our_room(cw: RunningServer, ejabberd: Peer, slix: Slix) -> None:
    await cases.their_user_in_our_room(cw, ejabberd, slix)
