"""XEP-0352 client state indication: holding and flushing traffic of inactive clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.feature import FeatureConfig
from carewire.core.sessions import Session
from carewire.features.csi import hold_key
from carewire.xmpp import ns
from tests.features.harness import Harness, make_harness, x
from tests.features.test_smacks import CSI, FEATURES, SM, Conn, elements

ALICE = "alice@example.test/phone"
CHATSTATE = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES, config=FeatureConfig(csi_max_held=3))
    yield harness
    await harness.close()


async def alice(h: Harness, *, sm: bool = False) -> tuple[Conn, Session]:
    c = Conn(h)
    await c.login("alice", "phone", sm=sm)
    c.take()
    (session,) = h.kernel.sessions.of_user("alice")
    return c, session


def summary(els: list[Element]) -> list[str]:
    """kind:from[:body] of each stanza written (nonzas left out)."""
    out = []
    for e in els:
        if not e.tag.startswith(f"{{{ns.CLIENT}}}"):
            continue
        kind = e.tag.rpartition("}")[2]
        body = e.find(f"{{{ns.CLIENT}}}body")
        sender = (e.get("from") or "").split("@")[0]
        out.append(f"{kind}:{sender}" + (f":{body.text}" if body is not None else ""))
    return out


async def test_state_changes_are_recorded_and_announced(h: Harness) -> None:
    changes: list[str] = []

    def on_change(event: SessionEvent) -> None:
        changes.append(event.session.data["csi"])

    h.kernel.hooks.on(H.SESSION_CLIENT_STATE, on_change)
    c, session = await alice(h)
    assert "csi" not in session.data  # XEP-0352: active until the client says otherwise
    assert await c.feed(f"<active xmlns='{CSI}'/>") == ""  # no reply, and no change
    h.clock.advance(5)
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    assert session.data["csi"] == "inactive" and session.data["csi_since"] == h.clock.now()
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await c.feed(f"<active xmlns='{CSI}'/>")
    assert changes == ["inactive", "active"]


async def test_inactive_client_gets_presence_and_chat_states_later(h: Harness) -> None:
    c, _ = await alice(h)
    bob, _ = await h.login("bob")
    carol, _ = await h.login("carol")
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await h.send(bob, f"<presence to='{ALICE}'><show>away</show></presence>")
    await h.send(carol, f"<presence to='{ALICE}'/>")
    await h.send(bob, f"<message to='{ALICE}' type='chat'>{CHATSTATE}</message>")
    await h.send(bob, f"<presence to='{ALICE}'><show>dnd</show></presence>")  # replaces the first
    assert c.take() == ""
    got = elements(await c.feed(f"<active xmlns='{CSI}'/>"))
    assert summary(got) == ["presence:carol", "message:bob", "presence:bob"]
    assert got[2].findtext(f"{{{ns.CLIENT}}}show") == "dnd"  # only the latest of a sender
    await h.send(bob, f"<presence to='{ALICE}'/>")
    assert summary(elements(c.take())) == ["presence:bob"]  # active again: at once


@pytest.mark.parametrize(
    "urgent",
    [
        "<message to='{to}' type='chat'><body>hello</body></message>",
        "<message to='{to}'><alert xmlns='urn:example:alert'/></message>",
        "<iq to='{to}' type='get' id='v'><query xmlns='jabber:iq:version'/></iq>",
        "<presence to='{to}' type='subscribe'/>",
    ],
)
async def test_urgent_stanzas_flush_what_was_held_first(h: Harness, urgent: str) -> None:
    c, _ = await alice(h)
    bob, _ = await h.login("bob")
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await h.send(bob, f"<presence to='{ALICE}'/>")
    await h.send(
        bob, urgent.format(to=ALICE if "subscribe" not in urgent else "alice@example.test")
    )
    got = summary(elements(c.take()))
    assert got[0] == "presence:bob" and len(got) == 2


async def test_held_stanzas_are_bounded(h: Harness) -> None:
    c, _ = await alice(h)
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    senders = [(await h.login(f"user{i}"))[0] for i in range(4)]
    for s in senders[:3]:
        await h.send(s, f"<presence to='{ALICE}'/>")
    assert c.take() == ""
    await h.send(senders[3], f"<presence to='{ALICE}'/>")  # the fourth is past the bound
    assert len(summary(elements(c.take()))) == 4


async def test_held_stanzas_are_dropped_with_the_session(h: Harness) -> None:
    c, session = await alice(h)
    bob, _ = await h.login("bob")
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await h.send(bob, f"<presence to='{ALICE}'/>")
    assert "csi.held" in session.data
    await c.feed("</stream:stream>")
    assert "csi.held" not in session.data


async def test_held_stanzas_are_not_unacked_until_sent(h: Harness) -> None:
    c, session = await alice(h, sm=True)
    bob, _ = await h.login("bob")
    await c.feed(f"<inactive xmlns='{CSI}'/>")
    await h.send(bob, f"<message to='{ALICE}' type='chat'>{CHATSTATE}</message>")
    assert session.sm is not None and not session.sm.unacked
    text = await c.feed(f"<active xmlns='{CSI}'/>")
    assert len(session.sm.unacked) == 1
    assert "composing" in text and f'<r xmlns="{SM}"/>' in text


def test_hold_keys() -> None:
    assert hold_key(x("<presence from='a@b/c' type='unavailable'/>")) == ("presence", "a@b/c")
    assert hold_key(x("<presence from='a@b/c' type='error'/>")) is None
    assert hold_key(x("<message from='a@b/c'/>")) is None  # empty: nothing to judge, deliver
    assert hold_key(x(f"<message from='a@b/c' type='error'>{CHATSTATE}</message>")) is None
    assert hold_key(x(f"<message from='a@b/c'>{CHATSTATE}<body>x</body></message>")) is None
    assert hold_key(x(f"<message from='a@b/c'>{CHATSTATE}</message>")) == ("chatstate", "a@b/c")
    assert hold_key(x("<iq from='a@b/c' type='get' id='1'><q xmlns='urn:x'/></iq>")) is None
