"""Multi-user chat (XEP-0045) against real clients: slixmpp's xep_0045 plugin and aioxmpp.muc."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import slixmpp
from slixmpp import JID
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from tests.interop.rawclient import HOST
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = [
    pytest.mark.interop,
    pytest.mark.filterwarnings(
        "ignore:using an available presence state for UseConnected is deprecated:DeprecationWarning"
    ),
]

Factory = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0


def _muc_plugins(xmpp: slixmpp.ClientXMPP) -> None:
    xmpp.register_plugin("xep_0004")
    xmpp.register_plugin("xep_0045")


def _room(server: RunningServer) -> JID:
    return JID(f"r{uuid.uuid4().hex[:10]}@chat.{server.domain}")


async def _events(client: SlixClient, name: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.xmpp.add_event_handler(name, queue.put_nowait)
    return queue


async def test_slixmpp_create_configure_invite_chat_subject(
    server: RunningServer, slix: Factory
) -> None:
    """Create and configure a members-only room, invite, join, talk and set the subject."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_muc_plugins)
    bob = await slix(server, b_login, b_pw, configure=_muc_plugins)
    alice.xmpp.send_presence()
    bob.xmpp.send_presence()
    b_messages = await _events(bob, "groupchat_message")
    b_subjects = await _events(bob, "groupchat_subject")
    room = _room(server)
    muc_a = alice.plugin["xep_0045"]
    muc_b = bob.plugin["xep_0045"]

    own, _subject, _occupants, _history = await muc_a.join_muc_wait(room, "Alice", timeout=TIMEOUT)
    assert {201, 110} <= set(own["muc"]["status_codes"])
    form = await muc_a.get_room_config(room, timeout=TIMEOUT)
    fields = form.get_fields()
    assert "muc#roomconfig_membersonly" in fields
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    submit.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
    submit.add_field(var="muc#roomconfig_roomname", value="Ward 7")
    submit.add_field(var="muc#roomconfig_membersonly", value=True, ftype="boolean")
    submit.add_field(var="muc#roomconfig_persistentroom", value=True, ftype="boolean")
    await muc_a.set_room_config(room, submit, timeout=TIMEOUT)

    # A non-member is refused; a mediated invitation makes bob a member.
    with pytest.raises(slixmpp.exceptions.PresenceError) as refused:
        await muc_b.join_muc_wait(room, "Bob", timeout=TIMEOUT)
    assert refused.value.condition == "registration-required"
    muc_a.invite(room, bob.jid.bare, reason="handover")
    # (slixmpp hides invitations to rooms it tried to join, so read the plain messages.)
    invite = await bob.next_matching(bob.messages, lambda m: m["muc"]["invite"]["reason"] != "")
    assert invite["from"] == room and invite["muc"]["invite"]["reason"] == "handover"
    await muc_b.join_muc_wait(room, "Bob", maxstanzas=5, timeout=TIMEOUT)

    alice.xmpp.send_message(mto=room, mbody="hello ward", mtype="groupchat")
    msg = await bob.next_matching(b_messages, lambda m: m["body"] == "hello ward")
    assert msg["from"] == JID(f"{room}/Alice")
    muc_a.set_subject(room, "Night shift")
    subject = await bob.next_matching(b_subjects, lambda m: m["subject"] == "Night shift")
    assert subject["from"].bare == room.bare

    members = await muc_a.get_affiliation_list(room, "member", timeout=TIMEOUT)
    assert JID(bob.jid.bare) in [JID(j) for j in members]
    await muc_a.destroy(room, reason="done", timeout=TIMEOUT)


async def test_slixmpp_nick_conflict_and_non_occupant_message(
    server: RunningServer, slix: Factory
) -> None:
    """A taken nickname gets conflict; a groupchat message from outside gets not-acceptable."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_muc_plugins)
    bob = await slix(server, b_login, b_pw, configure=_muc_plugins)
    room = _room(server)
    await alice.plugin["xep_0045"].join_muc_wait(room, "Same", timeout=TIMEOUT)
    # An instant room (the default configuration).
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    await alice.plugin["xep_0045"].set_room_config(room, submit, timeout=TIMEOUT)
    with pytest.raises(slixmpp.exceptions.PresenceError) as conflict:
        await bob.plugin["xep_0045"].join_muc_wait(room, "Same", timeout=TIMEOUT)
    assert conflict.value.condition == "conflict"
    bob.xmpp.send_message(mto=room, mbody="let me in", mtype="groupchat")
    error = await bob.next(bob.errors)
    assert error["error"]["condition"] == "not-acceptable"


@pytest.fixture
async def aio_client(server: RunningServer) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    aioxmpp = importlib.import_module("aioxmpp")
    connector = importlib.import_module("aioxmpp.connector")
    async with AsyncExitStack() as stack:

        async def login(name: str, password: str) -> Any:
            client = aioxmpp.PresenceManagedClient(
                aioxmpp.JID.fromstr(f"{name}@{server.domain}"),
                aioxmpp.make_security_layer(password, no_verify=True),
                override_peer=[(HOST, server.ports["c2s"], connector.STARTTLSConnector())],
            )
            client.summon(aioxmpp.MUCClient)
            await asyncio.wait_for(stack.enter_async_context(client.connected()), TIMEOUT)
            return client

        yield login


async def test_aioxmpp_join_and_message(
    server: RunningServer, aio_client: Callable[..., Awaitable[Any]]
) -> None:
    """aioxmpp.MUCClient joins (creating the room), a second client joins, messages flow."""
    aioxmpp = importlib.import_module("aioxmpp")
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await aio_client(a_login, a_pw)
    bob = await aio_client(b_login, b_pw)
    room_jid = aioxmpp.JID.fromstr(str(_room(server)))
    a_room, a_joined = alice.summon(aioxmpp.MUCClient).join(room_jid, "Alice")
    await asyncio.wait_for(a_joined, TIMEOUT)
    # aioxmpp does not configure new rooms itself: accept the defaults (an instant room).
    form = await asyncio.wait_for(
        alice.summon(aioxmpp.MUCClient).get_room_config(room_jid), TIMEOUT
    )
    form.type_ = aioxmpp.forms.DataType.SUBMIT
    await asyncio.wait_for(alice.summon(aioxmpp.MUCClient).set_room_config(room_jid, form), TIMEOUT)
    b_room, b_joined = bob.summon(aioxmpp.MUCClient).join(room_jid, "Bob")
    await asyncio.wait_for(b_joined, TIMEOUT)
    assert {m.nick for m in b_room.members} == {"Alice", "Bob"}

    received: asyncio.Queue[Any] = asyncio.Queue()
    b_room.on_message.connect(lambda msg, member, source, **_: received.put_nowait((msg, member)))
    msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
    msg.body[None] = "from aioxmpp"
    await asyncio.wait_for(a_room.send_message(msg), TIMEOUT)

    async def wait_body() -> Any:
        while True:
            got, member = await received.get()
            if got.body.any() == "from aioxmpp":
                return member

    member = await asyncio.wait_for(wait_body(), TIMEOUT)
    assert member.nick == "Alice"
    await asyncio.wait_for(b_room.leave(), TIMEOUT)
    await asyncio.wait_for(a_room.leave(), TIMEOUT)


async def test_slixmpp_moderation_and_exit_status(server: RunningServer, slix: Factory) -> None:
    """XEP-0425: the owner retracts bob's message for everyone; bob's exit status reaches her."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_muc_plugins)
    bob = await slix(server, b_login, b_pw, configure=_muc_plugins)
    room = _room(server)
    muc_a, muc_b = alice.plugin["xep_0045"], bob.plugin["xep_0045"]
    await muc_a.join_muc_wait(room, "Alice", timeout=TIMEOUT)
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    await muc_a.set_room_config(room, submit, timeout=TIMEOUT)
    a_messages = await _events(alice, "groupchat_message")
    # slixmpp's message events need a body: catch retractions with a handler of our own.
    retractions: asyncio.Queue[Any] = asyncio.Queue()
    bob.xmpp.register_handler(
        Callback(
            "retractions",
            MatchXPath("{jabber:client}message/{urn:xmpp:message-retract:1}retract"),
            retractions.put_nowait,
        )
    )
    await muc_b.join_muc_wait(room, "Bob", timeout=TIMEOUT)
    bob.xmpp.send_message(mto=room, mbody="bed 4: wrong chart", mtype="groupchat")
    said = await alice.next_matching(a_messages, lambda m: m["body"] == "bed 4: wrong chart")
    sid = said.xml.find("{urn:xmpp:sid:0}stanza-id")
    assert sid is not None and sid.get("by") == str(room)

    iq = alice.xmpp.Iq(stype="set", sto=room)
    moderate = ET.SubElement(iq.xml, "{urn:xmpp:message-moderate:1}moderate", {"id": sid.get("id")})
    ET.SubElement(moderate, "{urn:xmpp:message-retract:1}retract")
    ET.SubElement(moderate, "{urn:xmpp:message-moderate:1}reason").text = "wrong patient"
    assert (await iq.send(timeout=TIMEOUT))["type"] == "result"  # type: ignore[no-untyped-call]
    retraction = await bob.next(retractions)
    retract = retraction.xml.find("{urn:xmpp:message-retract:1}retract")
    assert retract.get("id") == sid.get("id")
    moderated = retract.find("{urn:xmpp:message-moderate:1}moderated")
    assert moderated is not None and moderated.get("by") == f"{room}/Alice"

    presences = await _events(alice, f"muc::{room}::presence")
    muc_b.leave_muc(room, "Bob", msg="off to theatre")
    gone = await alice.next_matching(presences, lambda p: p["type"] == "unavailable")
    assert gone["status"] == "off to theatre"
