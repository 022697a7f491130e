"""Message archive management (XEP-0313) with RSM (XEP-0059), served from the tracking datasets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import IqRequest, RoomEvent
from carewire.core.feature import IqTarget
from carewire.core.sessions import Session
from carewire.features.mam import MAM
from carewire.xmpp.errors import StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.stanza import iq_result
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness
from tests.features.test_tracking import FEATURES, chat, records, tracker

D = "example.test"
ROOM = f"ward3@chat.{D}"
RSM = "http://jabber.org/protocol/rsm"
RESULT = f"{{{MAM}}}result"
FWD = "{urn:xmpp:forward:0}forwarded"
MSG = "{jabber:client}message"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=[*FEATURES, "mam"], with_platform=True)
    yield harness
    await harness.close()


def form(**fields: str | list[str]) -> str:
    out = [f"<field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>"]
    for var, value in fields.items():
        values = value if isinstance(value, list) else [value]
        inner = "".join(f"<value>{v}</value>" for v in values)
        out.append(f"<field var='{var.replace('_', '-')}'>{inner}</field>")
    return f"<x xmlns='jabber:x:data' type='submit'>{''.join(out)}</x>"


def rsm(**parts: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" if v != "" else f"<{k}/>" for k, v in parts.items())
    return f"<set xmlns='{RSM}'>{inner}</set>"


async def mam(
    h: Harness, session: Session, payload: str = "", *, to: str = "", queryid: str = "q1"
) -> tuple[list[Element], Element]:
    """Send a MAM query; the result messages and the IQ reply."""
    sink = session.sink
    assert isinstance(sink, RecordingSink)
    sink.take()
    to_attr = f" to='{to}'" if to else ""
    query = f"<query xmlns='{MAM}' queryid='{queryid}'>{payload}</query>"
    await h.send(session, f"<iq type='set' id='mq'{to_attr}>{query}</iq>")
    got = sink.take()
    return got[:-1], got[-1]


def bodies(results: list[Element]) -> list[str]:
    out = []
    for m in results:
        body = m.find(f"{RESULT}/{FWD}/{MSG}/{{jabber:client}}body")
        out.append(body.text or "" if body is not None else "")
    return out


def fin_set(reply: Element) -> Element:
    s = reply.find(f"{{{MAM}}}fin/{{{RSM}}}set")
    assert s is not None
    return s


@pytest.fixture
async def talk(h: Harness) -> tuple[Session, Session]:
    alice, _ = await h.login("alice")
    bob, _ = await h.login("bob")
    await h.login("carol")
    for i in range(5):
        await chat(h, "alice" if i % 2 == 0 else "bob", "bob" if i % 2 == 0 else "alice", f"m{i}")
        h.clock.advance(60)
    await chat(h, "carol", "alice", "from carol")
    return alice, bob


async def test_whole_archive_in_order(h: Harness, talk: tuple[Session, Session]) -> None:
    alice, _ = talk
    results, reply = await mam(h, alice)
    assert reply.get("type") == "result"
    assert bodies(results) == ["m0", "m1", "m2", "m3", "m4", "from carol"]
    first = results[0]
    assert first.get("to") == f"alice@{D}/res" and first.get("from") == f"alice@{D}"
    result = first.find(RESULT)
    assert result is not None and result.get("queryid") == "q1"
    inner = first.find(f"{RESULT}/{FWD}/{MSG}")
    assert inner is not None
    assert (inner.get("from"), inner.get("to"), inner.get("type")) == (
        f"alice@{D}",
        f"bob@{D}",
        "chat",
    )
    delay = first.find(f"{RESULT}/{FWD}/{{urn:xmpp:delay}}delay")
    assert delay is not None and delay.get("stamp", "").startswith("2026-01-01T00:00:00")
    fin = reply.find(f"{{{MAM}}}fin")
    assert fin is not None and fin.get("complete") == "true"
    s = fin_set(reply)
    assert s.findtext(f"{{{RSM}}}count") == "6"
    f = s.find(f"{{{RSM}}}first")
    assert f is not None and f.get("index") == "0" and f.text == result.get("id")


async def test_with_start_end(h: Harness, talk: tuple[Session, Session]) -> None:
    alice, bob = talk
    results, _ = await mam(h, alice, form(**{"with": f"carol@{D}/any"}))
    assert bodies(results) == ["from carol"]
    results, _ = await mam(h, bob, form(**{"with": f"carol@{D}"}))
    assert results == []
    results, _ = await mam(h, alice, form(start="2026-01-01T00:01:00Z", end="2026-01-01T00:03:00Z"))
    assert bodies(results) == ["m1", "m2", "m3"]
    results, _ = await mam(h, alice, form(start="2026-01-01T01:03:00+01:00"))
    assert bodies(results) == ["m3", "m4", "from carol"]


async def test_rsm_paging_forward_and_backward(h: Harness, talk: tuple[Session, Session]) -> None:
    alice, _ = talk
    results, reply = await mam(h, alice, rsm(max="2"))
    assert bodies(results) == ["m0", "m1"]
    fin = reply.find(f"{{{MAM}}}fin")
    assert fin is not None and fin.get("complete") is None
    last = fin_set(reply).findtext(f"{{{RSM}}}last")
    results, reply = await mam(h, alice, rsm(max="2", after=str(last)))
    assert bodies(results) == ["m2", "m3"]
    f = fin_set(reply).find(f"{{{RSM}}}first")
    assert f is not None and f.get("index") == "2"
    last = fin_set(reply).findtext(f"{{{RSM}}}last")
    results, reply = await mam(h, alice, rsm(max="2", after=str(last)))
    assert bodies(results) == ["m4", "from carol"]
    fin = reply.find(f"{{{MAM}}}fin")
    assert fin is not None and fin.get("complete") == "true"
    # The last page, then the one before it.
    results, reply = await mam(h, alice, rsm(max="4", before=""))
    assert bodies(results) == ["m2", "m3", "m4", "from carol"]
    first = fin_set(reply).findtext(f"{{{RSM}}}first")
    results, reply = await mam(h, alice, rsm(max="4", before=str(first)))
    assert bodies(results) == ["m0", "m1"]
    fin = reply.find(f"{{{MAM}}}fin")
    assert fin is not None and fin.get("complete") == "true"
    # Flipped page: same results, newest first.
    results, _ = await mam(h, alice, rsm(max="2", before="") + f"<flip-page xmlns='{MAM}'/>")
    assert bodies(results) == ["from carol", "m4"]
    # max 0: just the count.
    results, reply = await mam(h, alice, rsm(max="0"))
    assert results == [] and fin_set(reply).findtext(f"{{{RSM}}}count") == "6"


async def test_after_id_before_id_and_ids(h: Harness, talk: tuple[Session, Session]) -> None:
    alice, _ = talk
    everything, _ = await mam(h, alice)
    ids = [str(m.find(RESULT).get("id")) for m in everything]  # type: ignore[union-attr]
    results, _ = await mam(h, alice, form(after_id=ids[1], before_id=ids[4]))
    assert bodies(results) == ["m2", "m3"]
    results, _ = await mam(h, alice, form(ids=[ids[0], ids[5]]))
    assert bodies(results) == ["m0", "from carol"]


async def test_max_is_capped(h: Harness) -> None:
    alice, _ = await h.login("alice")
    await h.login("bob")
    t = tracker(h)
    for i in range(105):
        await chat(h, "alice", "bob", f"n{i}")
    await t.flush()
    results, reply = await mam(h, alice, rsm(max="500"))
    assert len(results) == 100
    fin = reply.find(f"{{{MAM}}}fin")
    assert fin is not None and fin.get("complete") is None
    results, _ = await mam(h, alice)
    assert len(results) == 50  # the default page


@pytest.mark.parametrize(
    ("payload", "condition"),
    [
        (form(**{"{urn:example}free-text": "x"}), "feature-not-implemented"),
        (form(start="yesterday"), "bad-request"),
        (form(start="2026-01-01T00:00:00"), "bad-request"),
        (form(end="2026-13-01T00:00:00Z"), "bad-request"),
        (form(**{"with": "@@bad"}), "jid-malformed"),
        (form(after_id="no-such-id"), "item-not-found"),
        (form(before_id="no-such-id"), "item-not-found"),
        (form(ids=["no-such-id"]), "item-not-found"),
        (rsm(after="no-such-id"), "item-not-found"),
        (rsm(before="no-such-id"), "item-not-found"),
        (rsm(max="many"), "bad-request"),
        (rsm(max="-1"), "bad-request"),
        (rsm(after="a", before="b"), "bad-request"),
        (rsm(index="3"), "feature-not-implemented"),
        (
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
            "<value>urn:xmpp:mam:1</value></field></x>",
            "bad-request",
        ),
        ("<x xmlns='jabber:x:data' type='form'/>", "bad-request"),
        (form(start=["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]), "bad-request"),
    ],
)
async def test_bad_queries(
    h: Harness, talk: tuple[Session, Session], payload: str, condition: str
) -> None:
    alice, _ = talk
    results, reply = await mam(h, alice, payload)
    assert results == []
    assert reply.get("type") == "error" and error_condition(reply) == condition


async def test_ids_of_someone_elses_archive_are_not_found(
    h: Harness, talk: tuple[Session, Session]
) -> None:
    alice, _ = talk
    carol = h.kernel.sessions.get(JID.parse(f"carol@{D}/res"))
    assert carol is not None
    everything, _ = await mam(h, alice)
    first = str(everything[0].find(RESULT).get("id"))  # type: ignore[union-attr]
    _, reply = await mam(h, carol, rsm(after=first))
    assert error_condition(reply) == "item-not-found"


async def test_expired_conversations_leave_the_archive(
    h: Harness, talk: tuple[Session, Session]
) -> None:
    alice, _ = talk
    assert await tracker(h).expire_conversation(f"alice@{D}|bob@{D}")
    results, _ = await mam(h, alice)
    assert bodies(results) == ["from carol"]


async def test_form_metadata_prefs_and_disco(h: Harness, talk: tuple[Session, Session]) -> None:
    alice, _ = talk
    reply = await h.ask("alice", f"<iq type='get' id='f'><query xmlns='{MAM}'/></iq>")
    vars_ = [f.get("var") for f in reply.iter("{jabber:x:data}field")]
    assert vars_ == ["FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"]
    reply = await h.ask("alice", f"<iq type='get' id='m'><metadata xmlns='{MAM}'/></iq>")
    start = reply.find(f"{{{MAM}}}metadata/{{{MAM}}}start")
    end = reply.find(f"{{{MAM}}}metadata/{{{MAM}}}end")
    assert start is not None and end is not None
    assert start.get("timestamp", "").startswith("2026-01-01T00:00:00")
    reply = await h.ask("dave", f"<iq type='get' id='m'><metadata xmlns='{MAM}'/></iq>")
    meta = reply.find(f"{{{MAM}}}metadata")
    assert meta is not None and len(meta) == 0
    reply = await h.ask("alice", f"<iq type='get' id='p'><prefs xmlns='{MAM}'/></iq>")
    prefs = reply.find(f"{{{MAM}}}prefs")
    assert prefs is not None and prefs.get("default") == "always"
    reply = await h.ask(
        "alice", f"<iq type='set' id='p'><prefs xmlns='{MAM}' default='never'/></iq>"
    )
    assert error_condition(reply) == "not-allowed"
    assert {MAM, f"{MAM}#extended"} <= h.kernel.disco.account_features
    assert alice is not None


def dispatch_room_iqs(h: Harness) -> None:
    """What the multi-user chat service does with IQs to a room (it is not loaded here)."""

    async def service(stanza: Element, from_jid: JID, to_jid: JID, origin: Session | None) -> None:
        payload = stanza[0]
        handler = h.kernel.iq.lookup(IqTarget.ROOM, stanza.get("type", ""), payload.tag)
        assert handler is not None
        req = IqRequest(
            stanza=stanza, payload=payload, from_jid=from_jid, to_jid=to_jid, origin=origin
        )
        try:
            result = await handler(req)
        except StanzaError as err:
            h.kernel.router.reply_error(stanza, err)
            return
        assert origin is not None
        origin.send(iq_result(stanza, result))

    h.kernel.router.add_service(f"chat.{D}", service)


async def test_room_archive(h: Harness) -> None:
    from tests.features.test_tracking_service import groupchat, room_event

    dispatch_room_iqs(h)
    alice, _ = await h.login("alice")
    carol, _ = await h.login("carol")
    await h.login("bob")
    await h.kernel.hooks.fire(H.MUC_ROOM_CHANGED, room_event())
    await groupchat(h, "rounds at 9")
    await groupchat(h, "bed 4 ok", sender="bob", nick="Bob")
    results, reply = await mam(h, alice, to=ROOM)
    assert reply.get("type") == "result"
    assert bodies(results) == ["rounds at 9", "bed 4 ok"]
    inner = results[1].find(f"{RESULT}/{FWD}/{MSG}")
    assert inner is not None
    assert inner.get("from") == f"{ROOM}/Bob" and inner.get("to") is None
    assert inner.get("type") == "groupchat"
    assert results[0].get("from") == ROOM
    results, _ = await mam(h, alice, form(**{"with": f"bob@{D}"}), to=ROOM)
    assert bodies(results) == ["bed 4 ok"]
    _, reply = await mam(h, carol, to=ROOM)
    assert error_condition(reply) == "forbidden"
    # Members known only from the datasets (as after a restart) may read it too.
    tracker(h).room_people.clear()
    results, _ = await mam(h, alice, to=ROOM)
    assert len(results) == 2
    _, reply = await mam(h, carol, to=ROOM)
    assert error_condition(reply) == "forbidden"


async def test_room_access_asks_the_muc_service(h: Harness) -> None:
    from tests.features.test_tracking_service import groupchat, room_event

    class Muc:
        def may_read_archive(self, room: JID, requester: JID) -> bool:
            return requester.localpart == "carol"

    dispatch_room_iqs(h)
    alice, _ = await h.login("alice")
    carol, _ = await h.login("carol")
    await h.kernel.hooks.fire(H.MUC_ROOM_CHANGED, room_event())
    await groupchat(h, "x")
    h.kernel.ctx.provide(Muc())
    results, _ = await mam(h, carol, to=ROOM)
    assert len(results) == 1
    _, reply = await mam(h, alice, to=ROOM)
    assert error_condition(reply) == "forbidden"
    assert isinstance(room_event(), RoomEvent)


async def test_archive_sees_messages_routed_just_before(h: Harness) -> None:
    alice, _ = await h.login("alice")
    await h.login("bob")
    await chat(h, "alice", "bob", "just now")
    results, _ = await mam(h, alice)
    assert bodies(results) == ["just now"]
    assert len(await records(h, "MESSAGES")) == 1


async def _page_back_one_by_one(
    h: Harness, session: Session, to: str = ""
) -> tuple[list[str], list[str | None]]:
    """Page backwards with max=1 from the end (``<before/>``) until ``complete='true'``.

    Returns the bodies, oldest first, and each page's ``<first index=''/>`` in request order.
    """
    got: list[str] = []
    indexes: list[str | None] = []
    before = ""
    for _ in range(20):
        results, reply = await mam(h, session, rsm(max="1", before=before), to=to)
        assert reply.get("type") == "result", reply
        assert len(results) == 1, bodies(results)
        got[:0] = bodies(results)
        s = fin_set(reply)
        result = results[0].find(RESULT)
        assert result is not None
        # A one-message page: <first/> and <last/> both name it.
        assert s.findtext(f"{{{RSM}}}first") == s.findtext(f"{{{RSM}}}last") == result.get("id")
        indexes.append(s.find(f"{{{RSM}}}first").get("index"))  # type: ignore[union-attr]
        assert s.findtext(f"{{{RSM}}}count") == "7"
        fin = reply.find(f"{{{MAM}}}fin")
        assert fin is not None
        if fin.get("complete") == "true":
            return got, indexes
        before = str(s.findtext(f"{{{RSM}}}first"))
    raise AssertionError(f"paging never completed: {got}")


@pytest.mark.parametrize("apart", [0, 1])
async def test_paging_backwards_one_message_at_a_time_returns_each_message(
    h: Harness, apart: int
) -> None:
    alice, _ = await h.login("alice")
    await h.login("bob")
    texts = [f"n{i}" for i in range(7)]
    for i, text in enumerate(texts):
        await chat(h, "alice" if i % 2 == 0 else "bob", "bob" if i % 2 == 0 else "alice", text)
        h.clock.advance(apart)  # 0: a burst, every message received in the same instant
    got, indexes = await _page_back_one_by_one(h, alice)
    assert got == texts
    # The last page has no index: slixmpp would take "6 + 1 == count" for the end (COMPAT #14).
    assert indexes == [None, "5", "4", "3", "2", "1", "0"]
