"""The server against slixmpp, a third-party client library: login, roster, presence, chat."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slixmpp import JID

from tests.interop.helpers import wait_audit_rows
from tests.interop.rawclient import RawClient
from tests.interop.slix import SlixClient, connect
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

Factory = Callable[..., Awaitable[SlixClient]]

EXPECTED_SERVER_FEATURES = {
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "urn:xmpp:ping",
    "vcard-temp",
    "jabber:iq:private",
    "urn:xmpp:blocking",
    "urn:xmpp:time",
    "msgoffline",
}


async def end(*clients: SlixClient) -> None:
    """Disconnect every client and check each connection is really gone."""
    for client in clients:
        await client.disconnect()
        assert client.xmpp.transport is None, f"{client.jid} is still connected"


async def server_roster(
    server: RunningServer, login: str, password: str
) -> dict[str, dict[str, str]]:
    """The roster as the server has it: a full get (no version) on a separate raw session."""
    client = await RawClient.login(server.ports["c2s"], login, password, domain=server.domain)
    reply = await client.iq("get", "<query xmlns='jabber:iq:roster'/>")
    await client.end_stream()
    query = ET.fromstring(reply).find("{jabber:iq:roster}query")
    assert query is not None, reply
    return {item.get("jid", ""): dict(item.attrib) for item in query.iter("{jabber:iq:roster}item")}


async def online(client: SlixClient, priority: int | None = None) -> None:
    """Initial presence and roster retrieval, as a real client does after login."""
    await client.xmpp.get_roster(timeout=10)
    client.xmpp.send_presence(ppriority=priority)


@pytest.mark.parametrize(
    ("mechanism", "direct_tls"),
    [("SCRAM-SHA-256", False), ("PLAIN", False), ("SCRAM-SHA-1", False), ("SCRAM-SHA-256", True)],
    ids=["scram-sha-256", "plain", "scram-sha-1", "scram-sha-256-direct-tls"],
)
async def test_login_and_bind(
    server: RunningServer, slix: Factory, mechanism: str, direct_tls: bool
) -> None:
    """slixmpp logs in with the forced SASL mechanism and gets its resource bound."""
    login, password = server.account()
    client = await slix(
        server, login, password, mechanism=mechanism, resource="laptop", direct_tls=direct_tls
    )
    assert str(client.jid) == f"{login}@{server.domain}/laptop"
    rows = await wait_audit_rows(server, login, 1)
    assert rows and rows[-1]["outcome"] == "success", rows
    assert rows[-1]["mechanism"] == mechanism, rows
    assert rows[-1]["transport"] == ("c2s-tls" if direct_tls else "c2s"), rows
    await end(client)


async def test_server_generates_a_resource(server: RunningServer, slix: Factory) -> None:
    """Without a requested resource the server picks one."""
    login, password = server.account()
    client = await slix(server, login, password)
    assert client.jid.bare == f"{login}@{server.domain}"
    assert client.jid.resource, client.jid
    await end(client)


async def test_wrong_password_fails(server: RunningServer) -> None:
    """slixmpp reports the failed authentication (SASL not-authorized)."""
    login, password = server.account()
    with pytest.raises(AssertionError, match="authentication failed"):
        await connect(server, login, password + "-wrong", mechanism="SCRAM-SHA-256")


async def test_roster_add_gets_a_push(server: RunningServer, slix: Factory) -> None:
    """A roster set is answered and pushed to the user's interested resources (RFC 6121 §2.3)."""
    login, password = server.account()
    contact, _ = server.account()
    desk = await slix(server, login, password, resource="desk")
    phone = await slix(server, login, password, resource="phone")
    await online(desk)
    await online(phone)
    contact_jid = f"{contact}@{server.domain}"
    roster_set = desk.xmpp.update_roster(
        JID(contact_jid), name="Dr. Contact", groups=["Ward 7"], timeout=10
    )
    assert roster_set is not None
    await roster_set
    for client in (desk, phone):
        push = await client.next(client.roster_pushes)
        items = push["roster"]["items"]
        assert contact_jid in {str(j) for j in items}, push
        item = items[JID(contact_jid)]
        assert item["name"] == "Dr. Contact", push
        assert "Ward 7" in item["groups"], push
        assert item["subscription"] == "none", push
    assert phone.xmpp.client_roster.has_jid(contact_jid)
    assert phone.xmpp.client_roster[contact_jid]["name"] == "Dr. Contact"
    stored = await server_roster(server, login, password)
    assert stored.get(contact_jid, {}).get("name") == "Dr. Contact", stored
    # Remove it again: another push, and it is gone.
    await desk.xmpp.del_roster_item(contact_jid)  # type: ignore[no-untyped-call]
    push = await desk.next_matching(
        desk.roster_pushes,
        lambda iq: any(i["subscription"] == "remove" for i in iq["roster"]["items"].values()),
    )
    assert push is not None
    assert not desk.xmpp.client_roster.has_jid(contact_jid)
    assert contact_jid not in await server_roster(server, login, password)
    await end(desk, phone)


async def test_subscription_handshake(server: RunningServer, slix: Factory) -> None:
    """subscribe/subscribed both ways: both end with 'both' and see each other online."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    a = await slix(server, a_login, a_pw, resource="a")
    b = await slix(server, b_login, b_pw, resource="b")
    await online(a)
    await online(b)
    a_bare, b_bare = a.jid.bare, b.jid.bare

    a.xmpp.send_presence(pto=b_bare, ptype="subscribe")
    request = await b.next(b.subscribes)
    assert request["from"].bare == a_bare
    b.xmpp.send_presence(pto=a_bare, ptype="subscribed")
    await a.next_matching(a.subscribeds, lambda p: p["from"].bare == b_bare)
    # After the approval the server sends B's current presence to A (RFC 6121 §3.1.5).
    await a.next_matching(a.presences, lambda p: p["from"].bare == b_bare)

    b.xmpp.send_presence(pto=a_bare, ptype="subscribe")
    request = await a.next(a.subscribes)
    assert request["from"].bare == b_bare
    a.xmpp.send_presence(pto=b_bare, ptype="subscribed")
    await b.next_matching(b.subscribeds, lambda p: p["from"].bare == a_bare)
    await b.next_matching(b.presences, lambda p: p["from"].bare == a_bare)

    for me, other, login, password in ((a, b_bare, a_login, a_pw), (b, a_bare, b_login, b_pw)):
        # The client's view (built from the pushes) and the server's stored roster agree.
        def is_both(iq: Any, other: str = other) -> bool:
            return any(
                str(j) == other and i["subscription"] == "both"
                for j, i in iq["roster"]["items"].items()
            )

        await me.next_matching(me.roster_pushes, is_both)
        assert me.xmpp.client_roster[other]["subscription"] == "both"
        stored = await server_roster(server, login, password)
        assert stored.get(other, {}).get("subscription") == "both", stored
        assert "ask" not in stored[other], stored

    # Going offline is broadcast as unavailable presence to the subscriber.
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    a.xmpp.add_event_handler(
        "presence_unavailable",
        lambda p: None if gone.done() or p["from"].bare != b_bare else gone.set_result(None),
    )
    await end(b)
    await asyncio.wait_for(gone, 10)
    await end(a)


async def test_chat_both_ways_full_and_bare(server: RunningServer, slix: Factory) -> None:
    """Messages to full JIDs reach that resource; to the bare JID the highest-priority resource."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    a = await slix(server, a_login, a_pw, resource="a")
    b_high = await slix(server, b_login, b_pw, resource="high")
    b_low = await slix(server, b_login, b_pw, resource="low", mechanism="PLAIN")
    await online(a)
    await online(b_high, priority=5)
    await online(b_low, priority=1)
    # The low resource hears the high one's presence once the server holds it available
    # (before that a message to the bare JID could only go to the low resource).
    await b_low.next_matching(b_low.presences, lambda p: p["from"] == b_high.jid)

    a.xmpp.send_message(mto=JID(b_low.jid), mbody="to-low-full", mtype="chat")
    msg = await b_low.next(b_low.messages)
    assert msg["body"] == "to-low-full" and msg["from"] == a.jid, msg

    b_low.xmpp.send_message(mto=JID(a.jid), mbody="reply-full", mtype="chat")
    msg = await a.next(a.messages)
    assert msg["body"] == "reply-full" and msg["from"] == b_low.jid, msg

    a.xmpp.send_message(mto=JID(b_high.jid.bare), mbody="to-bare", mtype="chat")
    msg = await b_high.next(b_high.messages)
    assert msg["body"] == "to-bare", msg
    # A marker sent afterwards to the low resource arrives first: the bare message skipped it.
    a.xmpp.send_message(mto=JID(b_low.jid), mbody="marker", mtype="chat")
    msg = await b_low.next(b_low.messages)
    assert msg["body"] == "marker", f"low-priority resource got {msg['body']!r} first"

    b_high.xmpp.send_message(mto=JID(a.jid.bare), mbody="reply-bare", mtype="chat")
    msg = await a.next(a.messages)
    assert msg["body"] == "reply-bare" and msg["from"] == b_high.jid, msg
    await end(a, b_high, b_low)


async def test_message_to_unknown_user_bounces(server: RunningServer, slix: Factory) -> None:
    """A message to an account that does not exist comes back as error service-unavailable."""
    login, password = server.account()
    a = await slix(server, login, password)
    await online(a)
    a.xmpp.send_message(
        mto=JID(f"nobody-{uuid.uuid4().hex[:8]}@{server.domain}"), mbody="hello?", mtype="chat"
    )
    err = await a.next(a.errors)
    assert err["error"]["condition"] == "service-unavailable", err
    await end(a)


async def test_offline_message_delivered_with_delay(server: RunningServer, slix: Factory) -> None:
    """A message to an offline user is stored, then delivered on initial presence with <delay/>."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    a = await slix(server, a_login, a_pw)
    await online(a)
    body = f"while you were out {uuid.uuid4().hex[:8]}"
    sent_at = datetime.now(UTC)
    a.xmpp.send_message(mto=JID(f"{b_login}@{server.domain}"), mbody=body, mtype="chat")
    # The sender is still connected and healthy afterwards; the ping also orders the store.
    assert await a.plugin["xep_0199"].ping(server.domain, timeout=10) is not None
    assert a.errors.empty(), "the message to an offline user must not bounce"
    b = await slix(server, b_login, b_pw)
    await asyncio.sleep(0.3)
    assert b.messages.empty(), "offline messages wait for the initial presence"
    await online(b)
    msg = await b.next(b.messages)
    assert msg["body"] == body, msg
    assert msg["from"].bare == a.jid.bare, msg
    stamp = msg["delay"]["stamp"]
    assert stamp is not None, f"no XEP-0203 delay: {msg}"
    assert abs(stamp - sent_at) < timedelta(minutes=1), (stamp, sent_at)
    await end(a, b)


async def test_ping_server(server: RunningServer, slix: Factory) -> None:
    """XEP-0199: the server answers a ping."""
    login, password = server.account()
    a = await slix(server, login, password)
    rtt = await a.plugin["xep_0199"].ping(server.domain, timeout=10)
    assert rtt is not None and rtt < 10
    await end(a)


async def test_disco_info_lists_features(server: RunningServer, slix: Factory) -> None:
    """XEP-0030: the server identity and the features it implements."""
    login, password = server.account()
    a = await slix(server, login, password)
    info = await a.plugin["xep_0030"].get_info(jid=server.domain, timeout=10)
    features = set(info["disco_info"]["features"])
    missing = EXPECTED_SERVER_FEATURES - features
    assert not missing, f"missing {missing} in {features}"
    assert "jabber:iq:version" not in features, "version is hidden by default"
    assert "jabber:iq:register" not in features, "registration is disabled by default"
    identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
    assert ("server", "im") in identities, identities
    items = await a.plugin["xep_0030"].get_items(jid=server.domain, timeout=10)
    assert items["type"] == "result"
    await end(a)
