"""The peer fixtures work: a Prosody user and an ejabberd user talk through server-to-server.

Both servers find each other only through the tests' DNS server (SRV records),
authenticate each other with the test CA's certificates, and the messages and
subscription travel over real s2s streams between them; the clients are slixmpp.
"""

from __future__ import annotations

import pytest
from slixmpp import JID

from tests.dnsserver import DnsServer
from tests.peers.clients import Slix, online
from tests.peers.common import Peer

# With the interop modules that use the same peers (tests/conftest.py ``_SHARED_GROUPS``).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("interop/test_s2s_prosody.py")]


async def test_message_both_ways_over_s2s(
    prosody: Peer, ejabberd: Peer, slix: Slix, session_dns_server: DnsServer
) -> None:
    p_login, p_pw = prosody.account()
    e_login, e_pw = ejabberd.account()
    alice = await online(slix, prosody, p_login, p_pw)
    bob = await online(slix, ejabberd, e_login, e_pw)
    alice.xmpp.send_message(mto=JID(bob.jid.bare), mbody="hello from prosody", mtype="chat")
    got = await bob.next(bob.messages, timeout=20)
    assert got["body"] == "hello from prosody"
    assert got["from"].bare == alice.jid.bare
    bob.xmpp.send_message(mto=JID(alice.jid.bare), mbody="hello from ejabberd", mtype="chat")
    back = await alice.next(alice.messages, timeout=20)
    assert back["body"] == "hello from ejabberd"
    # Each server looked the other up in the tests' DNS server, not the machine's.
    asked = {name for name, rdtype in session_dns_server.queries if rdtype == "SRV"}
    # Prosody tries direct TLS (XEP-0368) first and stops there; ejabberd asks for both.
    assert "_xmpps-server._tcp.ejabberd.example" in asked
    assert "_xmpp-server._tcp.prosody.example" in asked


async def test_subscription_across_servers(prosody: Peer, ejabberd: Peer, slix: Slix) -> None:
    p_login, p_pw = prosody.account()
    e_login, e_pw = ejabberd.account()
    alice = await online(slix, prosody, p_login, p_pw)
    bob = await online(slix, ejabberd, e_login, e_pw)
    alice.xmpp.send_presence(pto=bob.jid.bare, ptype="subscribe")
    request = await bob.next(bob.subscribes, timeout=20)
    assert request["from"].bare == alice.jid.bare
    bob.xmpp.send_presence(pto=alice.jid.bare, ptype="subscribed")
    accepted = await alice.next(alice.subscribeds, timeout=20)
    assert accepted["from"].bare == bob.jid.bare
