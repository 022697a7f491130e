"""Message expiration and the retention purge end to end: slixmpp clients, a real server, the CLI.

A whole server runs in the test's process (``Server`` on free loopback ports,
STARTTLS, the self-signed certificate it makes) on a data directory laid out
as ``carewire init`` lays it out, so that ``carewire purge`` (a real
subprocess) finds it. The server's clock is a fake one, started two days
before the real time: moving it past the 30-minute expiration is the only
way time passes for the server, and the messages it records are then two
days old for the CLI, which reads the system clock and purges content older
than the one-day retention period.

Abelard Medical Center (alice, carol) expires messages after 30 minutes and
keeps their content for one day; Bellwood Practice (bob, dave) has the
defaults (7 days, never purged). What each step checks is what seed 001 and
docs/retention.md promise: the retraction at the online recipient, the
retraction instead of the body from offline storage, the archive and room
history without the expired messages, then the purge's counts, bodies gone
and metadata kept.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import slixmpp
from slixmpp import JID
from slixmpp.xmlstream import ET

from carewire.clock import FakeClock
from carewire.config import CONFIG_FILE, load, render_default
from carewire.datasets.query import Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    MessageExpiration,
    NewHospital,
    NewPractice,
    NewUser,
    Organisation,
    OrganisationUpdate,
    Profile,
    RetentionUnit,
)
from carewire.features.expiry import Expirer, OrganisationLifetimes
from carewire.features.tracking import MessageTracker
from carewire.server import Server
from tests.interop.slix import SlixClient, clients
from tests.templates import prefill

DOMAIN = "carewire.test"
ROOM = JID(f"ward3@chat.{DOMAIN}")
PASSWORD = "correct horse battery"
TIMEOUT = 10.0
RETRACT = "urn:xmpp:message-retract:1"
MODERATE = "urn:xmpp:message-moderate:1"
EXPIRY = "urn:carewire:expiry:0"
SID = "urn:xmpp:sid:0"

Slix = Callable[..., Awaitable[SlixClient]]


@dataclass(frozen=True)
class Reached:
    """Where the slixmpp clients find the in-process server."""

    domain: str
    ports: dict[str, int] = field(default_factory=dict)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A started server (fake clock two days behind) on an initialised data directory."""
    (tmp_path / CONFIG_FILE).write_text(render_default(DOMAIN), encoding="utf-8")
    await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    config = load(
        tmp_path,
        env={},
        overrides={"server": {"c2s_port": 0, "c2s_tls_port": 0, "websocket": False}},
    )
    s = Server(config, clock=FakeClock(datetime.now(UTC) - timedelta(days=2)))
    try:
        await s.start()
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def slix() -> AsyncIterator[Slix]:
    async with clients() as make:
        yield make


# --- the directory --------------------------------------------------------------------------


async def _organisations(s: Server) -> tuple[Organisation, Organisation]:
    """Abelard (30 minutes, content kept one day) with alice and carol; Bellwood with bob, dave."""
    assert s.assembly is not None
    orgs = s.assembly.directory.organisations
    abelard = await orgs.create_hospital(
        SYSTEM_CALLER,
        NewHospital(
            name="Abelard Medical Center",
            office_number="(408) 882-5830",
            admin=AdminInvitee(email="admin@abelard.org", first_name="Ada", last_name="Admin"),
        ),
    )
    bellwood = (
        await orgs.create_practice(
            SYSTEM_CALLER,
            NewPractice(
                hospital_id=abelard.id,
                name="Bellwood Practice",
                office_number="555-669-2750",
                admin=AdminInvitee(email="admin@bellwood.org", first_name="Pat", last_name="Ad"),
            ),
        )
    ).practice
    settings = replace(
        abelard.settings,
        message_expiration=MessageExpiration.MINUTES_30,
        retention_value=1,
        retention_unit=RetentionUnit.DAYS,
    )
    abelard = await orgs.update(SYSTEM_CALLER, abelard.id, OrganisationUpdate(settings=settings))
    for org, login in (
        (abelard, "alice"),
        (abelard, "carol"),
        (bellwood, "bob"),
        (bellwood, "dave"),
    ):
        await s.assembly.directory.users.create(
            SYSTEM_CALLER,
            org.id,
            NewUser(
                profile=Profile(
                    first_name=login.title(), last_name="Test", email=f"{login}@{org.id}.org"
                ),
                login=login,
                pin="2580",
                password=PASSWORD,
                send_invitation=False,
            ),
        )
    await s.assembly.kernel.ctx.require(OrganisationLifetimes).refresh()
    return abelard, bellwood


# --- the clients ----------------------------------------------------------------------------


def _plugins(xmpp: slixmpp.ClientXMPP) -> None:
    for name in ("xep_0004", "xep_0045", "xep_0059", "xep_0313", "xep_0359", "xep_0424"):
        xmpp.register_plugin(name)


async def _login(slix: Slix, s: Server, login: str) -> SlixClient:
    """``login`` online: logged in, roster fetched, available presence sent."""
    client = await slix(Reached(DOMAIN, s.ports), login, PASSWORD, configure=_plugins)
    await client.xmpp.get_roster(timeout=TIMEOUT)
    client.xmpp.send_presence()
    return client


def _queue(client: SlixClient, event: str) -> asyncio.Queue[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    client.xmpp.add_event_handler(event, queue.put_nowait)
    return queue


def _retracted(msg: Any) -> str:
    """The id an XEP-0424 retraction names."""
    return str(msg["retract"]["id"])


def _chat(client: SlixClient, to: str, body: str, origin: str) -> None:
    """A chat message with an XEP-0359 origin-id (what the retraction must name)."""
    msg = client.xmpp.make_message(mto=JID(to), mbody=body, mtype="chat")
    msg["id"] = f"id-{origin}"
    msg.append(ET.Element(f"{{{SID}}}origin-id", {"id": origin}))
    msg.send()


def _has_body(body: str) -> Callable[[Any], bool]:
    return lambda m: bool(m["body"] == body)


async def _archive(client: SlixClient, **kwargs: Any) -> list[str]:
    """The bodies of the client's archive (XEP-0313), oldest first."""
    return [
        str(r["mam_result"]["forwarded"]["stanza"]["body"])
        async for r in client.plugin["xep_0313"].iterate(**kwargs)
    ]


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- the CLI --------------------------------------------------------------------------------


async def _carewire(data_dir: Path, *args: str) -> tuple[str, str]:
    """Run ``carewire ARGS --data-dir DIR`` in a subprocess; (stdout, stderr) of a success."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREWIRE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "carewire",
        *args,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    return out.decode(), err.decode()


def _row_counts(table: str, organisation: str) -> tuple[int, int]:
    """(message bodies, offline copies) of an organisation's row of ``carewire purge``'s table."""
    (line,) = [ln for ln in table.splitlines() if ln.startswith(organisation)]
    *_, bodies, offline = line.split()
    return int(bodies), int(offline)


async def _messages(s: Server) -> dict[str, dict[str, object]]:
    """Each MESSAGES record's values, by uuid (read from the database)."""
    assert s.assembly is not None
    await s.assembly.kernel.ctx.require(MessageTracker).flush()
    page = await s.assembly.datasets.query("MESSAGES", Query(limit=100))
    return {str(r.get("uuid")): dict(r.values) for r in page.records}


# --- the scenario ---------------------------------------------------------------------------


async def test_messages_expire_at_clients_archive_and_rooms_then_the_purge_empties_bodies(
    server: Server, slix: Slix
) -> None:
    s = server
    assert s.assembly is not None and isinstance(s.clock, FakeClock)
    abelard, _ = await _organisations(s)
    alice = await _login(slix, s, "alice")
    bob = await _login(slix, s, "bob")
    room_messages = _queue(bob, "groupchat_message")
    retractions = _queue(bob, "message_retract")  # slixmpp's XEP-0424 plugin

    # A room: alice creates it (instant room), bob joins.
    muc = alice.plugin["xep_0045"]
    await muc.join_muc_wait(ROOM, "alice", timeout=TIMEOUT)
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
    await muc.set_room_config(ROOM, submit, timeout=TIMEOUT)
    await bob.plugin["xep_0045"].join_muc_wait(ROOM, "bob", maxstanzas=0, timeout=TIMEOUT)

    # alice (30 minutes): to bob, online; to carol, offline; to the room.
    _chat(alice, f"bob@{DOMAIN}", "bed 12 needs fluids", "exp-bob")
    got = await bob.next_matching(bob.messages, _has_body("bed 12 needs fluids"))
    hint = got.xml.find(f"{{{EXPIRY}}}expires")
    assert hint is not None  # the expiry hint, 30 minutes after the server received it
    at = datetime.fromisoformat(hint.get("at").replace("Z", "+00:00"))
    assert timedelta(minutes=29) < at - s.clock.now() <= timedelta(minutes=30)
    _chat(alice, f"carol@{DOMAIN}", "carol: call the lab", "exp-carol")
    alice.xmpp.send_message(mto=ROOM, mbody="rounds at 10", mtype="groupchat")
    rounds = await bob.next_matching(room_messages, _has_body("rounds at 10"))
    rounds_id = rounds["stanza_id"]["id"]
    assert rounds["stanza_id"]["by"] == ROOM.bare and rounds_id
    # bob (Bellwood, 7 days): a reply, a room message and a conversation of his own with dave.
    bob.xmpp.send_message(mto=JID(f"alice@{DOMAIN}"), mbody="fluids started", mtype="chat")
    await alice.next_matching(alice.messages, _has_body("fluids started"))
    bob.xmpp.send_message(mto=ROOM, mbody="bed 4 is free", mtype="groupchat")
    await bob.next_matching(room_messages, _has_body("bed 4 is free"))
    bob.xmpp.send_message(mto=JID(f"dave@{DOMAIN}"), mbody="see you at 3", mtype="chat")
    offline = s.assembly.kernel.ctx.stores.offline

    async def stored_for_dave() -> bool:
        return await offline.count("dave") == 1

    await _until(stored_for_dave, "bob's message to dave in offline storage")
    assert await offline.count("carol") == 1
    before = await _messages(s)
    assert len(before) == 6

    # 31 minutes later the server's expiry timer (woken, not waited for) expires alice's three.
    s.clock.advance(31 * 60)
    s.assembly.kernel.ctx.require(Expirer).poke()
    told = {str(m["from"]): m for m in [await bob.next(retractions) for _ in range(2)]}
    chat = told[f"alice@{DOMAIN}"]  # in the sender's name, by the id she gave it
    assert (chat["type"], _retracted(chat)) == ("chat", "exp-bob")
    in_room = told[ROOM.bare]  # moderated by the room, by the room's stanza id
    assert (in_room["type"], _retracted(in_room)) == ("groupchat", rounds_id)
    assert in_room.xml.find(f"{{{RETRACT}}}retract/{{{MODERATE}}}moderated") is not None
    expiry = s.assembly.kernel.ctx.stores.expiry

    async def expired() -> bool:
        return not await expiry.due(s.clock.now(), limit=1)

    await _until(expired, "the expiry batch to finish")
    after = await _messages(s)
    assert sorted(str(m["state"]) for m in after.values()) == ["expired"] * 3 + ["valid"] * 3

    # carol logs in: offline storage gives her the retraction, not the message.
    carol = await slix(Reached(DOMAIN, s.ports), "carol", PASSWORD, configure=_plugins)
    carol_retractions = _queue(carol, "message_retract")
    carol.xmpp.send_presence()
    from_store = await carol.next(carol_retractions)
    assert from_store["from"] == JID(f"alice@{DOMAIN}") and _retracted(from_store) == "exp-carol"
    await carol.xmpp.plugin["xep_0199"].ping(jid=JID(DOMAIN), timeout=TIMEOUT)
    assert carol.messages.empty()  # no message with a body: not alice's

    # The archive keeps only what has not expired, for people and the room alike.
    assert await _archive(bob) == ["fluids started", "see you at 3"]
    assert await _archive(alice) == ["fluids started"]
    assert await _archive(alice, jid=ROOM) == ["bed 4 is free"]
    # A new occupant's history lacks the expired room message.
    dave = await _login(slix, s, "dave")
    *_, history = await dave.plugin["xep_0045"].join_muc_wait(ROOM, "dave", timeout=TIMEOUT)
    assert [str(m["body"]) for m in history] == ["bed 4 is free"]

    # The retention purge: Abelard's conversations (alice's two, the room) lose their bodies.
    data_dir = s.config.data_dir
    deliveries = (await s.assembly.datasets.query("MESSAGE_DELIVERIES", Query(limit=1))).total
    assert deliveries >= 6
    dry, _ = await _carewire(data_dir, "purge", "--dry-run")
    assert _row_counts(dry, abelard.name) == (5, 0), dry
    assert await _messages(s) == after  # a dry run changes nothing
    table, summary = await _carewire(data_dir, "purge")
    assert _row_counts(table, abelard.name) == (5, 0), table
    assert re.search(r"purged: 5 message bodies, 0 offline copies", summary), summary
    purged = await _messages(s)
    kept_bodies = {"see you at 3"}  # bob started that conversation: Bellwood never purges
    for uuid, was in after.items():
        now = purged[uuid]
        for key in ("from", "conversation", "received_at", "sent_at", "state", "expires_at"):
            assert now[key] == was[key], key
        if was["message"] in kept_bodies:
            assert now["message"] == was["message"]
        else:
            assert now["message"] is None and now["elements"] is None
    kept = await s.assembly.datasets.query("MESSAGE_DELIVERIES", Query(limit=1))
    assert kept.total == deliveries  # every delivery record stays
    entries, _ = await s.assembly.audit.store.entries(action="retention.purge", limit=5)
    assert [e.event.actor.startswith("cli:") for e in entries] == [True]
