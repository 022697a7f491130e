"""Message archive management (XEP-0313) against slixmpp's xep_0313 and xep_0059 plugins."""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError

from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0
MAM = "urn:xmpp:mam:2"


def _plugins(xmpp: slixmpp.ClientXMPP) -> None:
    for name in ("xep_0004", "xep_0045", "xep_0059", "xep_0313", "xep_0359"):
        xmpp.register_plugin(name)


async def _online(client: SlixClient) -> None:
    await client.xmpp.get_roster(timeout=TIMEOUT)
    client.xmpp.send_presence()


async def _archive(client: SlixClient, **kwargs: Any) -> list[Any]:
    return [m async for m in client.plugin["xep_0313"].iterate(**kwargs)]


def _has_body(body: str) -> Callable[[Any], bool]:
    return lambda m: bool(m["body"] == body)


def _body(result: Any) -> str:
    return str(result["mam_result"]["forwarded"]["stanza"]["body"])


async def test_archive_paged_with_stanza_ids(server: RunningServer, slix: Slix) -> None:
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    c_login, c_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_plugins)
    bob = await slix(server, b_login, b_pw, configure=_plugins)
    carol = await slix(server, c_login, c_pw, configure=_plugins)
    for c in (alice, bob, carol):
        await _online(c)
    seen = []
    for i in range(5):
        body = f"note {i}"
        alice.xmpp.send_message(mto=JID(bob.jid.bare), mbody=body, mtype="chat")
        got = await bob.next_matching(bob.messages, _has_body(body))
        seen.append(got["stanza_id"]["id"])
    carol.xmpp.send_message(mto=JID(alice.jid.bare), mbody="from carol", mtype="chat")
    await alice.next_matching(alice.messages, lambda m: m["body"] == "from carol")

    results = await _archive(alice, rsm={"max": 2})
    assert [_body(r) for r in results] == [f"note {i}" for i in range(5)] + ["from carol"]
    assert [r["mam_result"]["id"] for r in results[:5]] == seen
    forwarded = results[0]["mam_result"]["forwarded"]
    assert forwarded["stanza"]["from"].bare == alice.jid.bare
    assert forwarded["stanza"]["to"].bare == bob.jid.bare
    assert forwarded["delay"]["stamp"] is not None

    with_bob = await _archive(alice, with_jid=JID(bob.jid.bare))
    assert len(with_bob) == 5
    in_future = datetime.now(UTC) + timedelta(hours=1)
    assert await _archive(alice, start=in_future) == []
    newest_first = await _archive(alice, reverse=True, rsm={"max": 4})
    assert [_body(r) for r in newest_first][:2] == ["from carol", "note 4"]
    # Bob's archive holds his conversation with alice only.
    assert len(await _archive(bob)) == 5


async def test_form_metadata_and_bad_queries(server: RunningServer, slix: Slix) -> None:
    login, password = server.account()
    client = await slix(server, login, password, configure=_plugins)
    form = await client.plugin["xep_0313"].get_fields(timeout=TIMEOUT)
    assert {"with", "start", "end", "before-id", "after-id", "ids"} <= set(form.get_fields())
    info = await client.plugin["xep_0030"].get_info(jid=client.jid.bare, timeout=TIMEOUT)
    assert {MAM, "urn:xmpp:sid:0"} <= set(info["disco_info"]["features"])

    async def query(payload: str) -> IqError:
        iq = client.xmpp.make_iq_set()
        iq.append(ET.fromstring(f"<query xmlns='{MAM}'>{payload}</query>"))
        with pytest.raises(IqError) as err:
            await iq.send(timeout=TIMEOUT)  # type: ignore[no-untyped-call]
        return err.value

    def x(field: str, value: str) -> str:
        return (
            "<x xmlns='jabber:x:data' type='submit'>"
            f"<field var='FORM_TYPE'><value>{MAM}</value></field>"
            f"<field var='{field}'><value>{value}</value></field></x>"
        )

    assert (await query(x("full-text", "pain"))).condition == "feature-not-implemented"
    assert (await query(x("start", "last tuesday"))).condition == "bad-request"
    assert (await query(x("after-id", str(uuid.uuid4())))).condition == "item-not-found"
    rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>lots</max></set>"
    assert (await query(rsm)).condition == "bad-request"


async def test_room_archive_for_members_only(server: RunningServer, slix: Slix) -> None:
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_plugins)
    bob = await slix(server, b_login, b_pw, configure=_plugins)
    await _online(alice)
    await _online(bob)
    room = JID(f"r{uuid.uuid4().hex[:10]}@chat.{server.domain}")
    muc = alice.plugin["xep_0045"]
    await muc.join_muc_wait(room, "Alice", timeout=TIMEOUT)
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    await muc.set_room_config(room, submit, timeout=TIMEOUT)
    groupchat = await _queue(alice, "groupchat_message")
    alice.xmpp.send_message(mto=room, mbody="round at 9", mtype="groupchat")
    echo = await alice.next_matching(groupchat, lambda m: m["body"] == "round at 9")
    assert echo["stanza_id"]["by"] == room.bare
    results = await _archive(alice, jid=room)
    assert [_body(r) for r in results] == ["round at 9"]
    assert results[0]["mam_result"]["id"] == echo["stanza_id"]["id"]
    assert results[0]["mam_result"]["forwarded"]["stanza"]["from"] == JID(f"{room}/Alice")
    info = await alice.plugin["xep_0030"].get_info(jid=room, timeout=TIMEOUT)
    assert MAM in info["disco_info"]["features"]
    with pytest.raises(IqError) as refused:
        await bob.plugin["xep_0313"].retrieve(jid=room, timeout=TIMEOUT)
    assert refused.value.condition == "forbidden"


async def _queue(client: SlixClient, event: str) -> Any:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.xmpp.add_event_handler(event, queue.put_nowait)
    return queue


async def test_paging_backwards_one_message_at_a_time(server: RunningServer, slix: Slix) -> None:
    """slixmpp's reverse iteration with max=1 (``<before/>``, then ``<before>FIRST</before>``)."""
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    alice = await slix(server, a_login, a_pw, configure=_plugins)
    bob = await slix(server, b_login, b_pw, configure=_plugins)
    for c in (alice, bob):
        await _online(c)
    texts = [f"back {i}" for i in range(7)]
    for text in texts:
        alice.xmpp.send_message(mto=JID(bob.jid.bare), mbody=text, mtype="chat")
    await bob.next_matching(bob.messages, _has_body(texts[-1]))
    newest_first = await _archive(alice, reverse=True, rsm={"max": 1})
    assert [_body(r) for r in newest_first] == texts[::-1]
