"""A ward story: nurse Alice adds Dr Bob, who approves later; they see each other; she removes him.

Every step is what a client sends and what the clients receive (RFC 6121 §2-§4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.sessions import Session
from carewire.xmpp import ns
from tests.features.harness import Harness, RecordingSink, make_harness

ROSTER = f"{{{ns.ROSTER}}}"
CLIENT = f"{{{ns.CLIENT}}}"
ALICE = "alice@example.test"
BOB = "bob@example.test"


@dataclass
class Client:
    """One connected client: what it sends, what it saw."""

    h: Harness
    session: Session
    sink: RecordingSink

    @property
    def jid(self) -> str:
        return str(self.session.jid)

    async def send(self, xml: str) -> None:
        await self.h.send(self.session, xml)

    def received(self) -> list[Element]:
        return self.sink.take()

    async def roster(self) -> dict[str, dict[str, str]]:
        """Fetch the roster: item attributes by contact."""
        await self.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
        (result,) = [s for s in self.received() if s.get("id") == "roster"]
        return {i.get("jid", ""): dict(i.attrib) for i in result.iter(f"{ROSTER}item")}


def presence_from(stanzas: list[Element], sender: str) -> list[Element]:
    return [s for s in stanzas if s.tag == f"{CLIENT}presence" and s.get("from") == sender]


def pushes(stanzas: list[Element]) -> list[dict[str, str]]:
    return [
        dict(i.attrib) for s in stanzas if s.get("type") == "set" for i in s.iter(f"{ROSTER}item")
    ]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["message", "roster", "presence"])
    yield harness
    await harness.close()


async def connect(h: Harness, login: str, resource: str) -> Client:
    """A client that binds, fetches its roster, but has not sent presence yet."""
    session, sink = await h.bind(login, resource)
    client = Client(h, session, sink)
    await client.roster()
    return client


async def test_nurse_adds_doctor_who_approves_later(h: Harness) -> None:
    await h.account("bob")  # Dr Bob has an account but is not at work yet

    # Alice starts her shift on the ward workstation.
    alice = await connect(h, "alice", "ward4")
    await alice.send("<presence><show>chat</show><status>Ward 4</status></presence>")
    alice.received()

    # She adds Dr Bob to her "Doctors" group and asks to see his presence.
    await alice.send(
        "<iq type='set' id='add'><query xmlns='jabber:iq:roster'>"
        f"<item jid='{BOB}' name='Dr Bob'><group>Doctors</group></item></query></iq>"
    )
    await alice.send(f"<presence type='subscribe' to='{BOB}'/>")
    assert pushes(alice.received()) == [
        {"jid": BOB, "name": "Dr Bob", "subscription": "none"},
        {"jid": BOB, "name": "Dr Bob", "subscription": "none", "ask": "subscribe"},
    ]

    # Dr Bob arrives: the request waited for him and comes with his initial presence.
    bob = await connect(h, "bob", "pager")
    await bob.send("<presence/>")
    seen = bob.received()
    assert [s.get("type") for s in presence_from(seen, ALICE)] == ["subscribe"]

    # He approves, and asks for hers in return.
    await bob.send(f"<presence type='subscribed' to='{ALICE}'/>")
    await bob.send(f"<presence type='subscribe' to='{ALICE}'/>")
    seen = alice.received()
    assert [s.get("type") for s in presence_from(seen, BOB)] == ["subscribed", "subscribe"]
    assert [s.get("type") for s in presence_from(seen, bob.jid)] == [None]  # he is online
    assert pushes(seen) == [{"jid": BOB, "name": "Dr Bob", "subscription": "to"}]

    # Alice approves too: now they see each other.
    await alice.send(f"<presence type='subscribed' to='{BOB}'/>")
    seen = bob.received()
    assert presence_from(seen, alice.jid)[0].findtext(f"{CLIENT}status") == "Ward 4"
    assert (await alice.roster())[BOB]["subscription"] == "both"
    assert (await bob.roster())[ALICE]["subscription"] == "both"

    # Bob scrubs in; Alice's screen shows it.
    await bob.send("<presence><show>dnd</show><status>In theatre</status></presence>")
    (update,) = presence_from(alice.received(), bob.jid)
    assert update.findtext(f"{CLIENT}status") == "In theatre"

    # Bob's pager battery dies: Alice sees him go offline.
    await h.unbind(bob.session)
    assert [s.get("type") for s in presence_from(alice.received(), bob.jid)] == ["unavailable"]

    # He is back on a workstation; Alice's presence reaches him at login.
    bob = await connect(h, "bob", "theatre2")
    await bob.send("<presence/>")
    assert presence_from(bob.received(), alice.jid)
    alice.received()

    # End of the rotation: Alice removes Dr Bob from her roster.
    await alice.send(
        f"<iq type='set' id='rm'><query xmlns='jabber:iq:roster'>"
        f"<item jid='{BOB}' subscription='remove'/></query></iq>"
    )
    assert pushes(alice.received()) == [{"jid": BOB, "subscription": "remove"}]
    seen = bob.received()
    assert [s.get("type") for s in presence_from(seen, ALICE)] == ["unsubscribe", "unsubscribed"]
    assert [s.get("type") for s in presence_from(seen, alice.jid)] == ["unavailable"]
    assert await alice.roster() == {}
    assert (await bob.roster())[ALICE]["subscription"] == "none"

    # From now on, neither sees the other's presence.
    await bob.send("<presence><show>away</show></presence>")
    await alice.send("<presence><show>away</show></presence>")
    assert presence_from(alice.received(), bob.jid) == []
    assert presence_from(bob.received(), alice.jid) == []
