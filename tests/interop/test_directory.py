"""The organisation directory with a real client (slixmpp) over TLS against a real server.

The directory is filled before the server starts, as the console would:
hospitals, a group, users invited by e-mail who registered with their own
password. A change made while the server runs is written by another process
(the test, on the same database), as the command line does; the server picks
it up at its periodic reload (every second here).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from carewire.directory.model import SYSTEM_CALLER, Group
from tests.directory.world import PASSWORD, World, open_world
from tests.interop.helpers import log_tail
from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer, init_data_dir, server_env, serving

pytestmark = [pytest.mark.interop]

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 10.0
ADDRESS = "{http://jabber.org/protocol/address}"
NICK = "{http://jabber.org/protocol/nick}nick"
ENV = {"CAREWIRE_XMPP_ACCOUNT_CHECK_INTERVAL": "1s"}


def db_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'carewire.db'}"


async def populate(url: str) -> None:
    """Abelard: Cardiology (alice, bob), carl; Bellwood: bea. All registered by invitation."""
    world = await open_world(url)
    try:
        abelard = await world.hospital("Abelard Medical Center")
        bellwood = await world.hospital("Bellwood Hospital")
        await world.user(abelard, "alice@abelard.org", first_name="Alice", last_name="Able")
        await world.user(abelard, "bob@abelard.org", first_name="Bob", last_name="Brown")
        await world.user(abelard, "carl@abelard.org", first_name="Carl", last_name="Cole")
        await world.user(bellwood, "bea@bellwood.org", first_name="Bea", last_name="Bell")
        cardiology = await world.directory.groups.create(SYSTEM_CALLER, abelard.id, "Cardiology")
        await world.directory.groups.add_members(SYSTEM_CALLER, cardiology.id, ["alice", "bob"])
    finally:
        await close(world)


async def close(world: World) -> None:
    await world.directory.close()
    await world.db.close()


async def group_of(world: World, name: str) -> Group:
    org = await world.directory.organisations.search(SYSTEM_CALLER, "Abelard")
    (found,) = [
        g for g in await world.directory.groups.list_for(SYSTEM_CALLER, org[0].id) if g.name == name
    ]
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("directory")
    env = server_env(ENV)
    init_data_dir(data_dir, accounts=0, env=env)
    asyncio.run(populate(db_url(data_dir)))
    with serving(data_dir, accounts=0, env=env) as running:
        yield running


async def login(slix: Slix, server: RunningServer, user: str, **kwargs: Any) -> SlixClient:
    def configure(xmpp: slixmpp.ClientXMPP) -> None:
        xmpp.register_plugin("xep_0004")
        xmpp.register_plugin("xep_0055", {"provide_search": False})

    client = await slix(server, user, PASSWORD, configure=configure, **kwargs)
    await client.xmpp.get_roster(timeout=TIMEOUT)
    client.xmpp.send_presence()
    return client


def records(server: RunningServer, dataset: str, *filters: str) -> list[dict[str, Any]]:
    args = [a for f in filters for a in ("--filter", f)]
    r = server.cli("records", "list", dataset, *args, "--json")
    assert r.returncode == 0, r.stderr
    return [rec["values"] | {"id": rec["id"]} for rec in json.loads(r.stdout)["records"]]


async def test_a_registered_user_sees_the_groups_colleagues(
    server: RunningServer, slix: Slix
) -> None:
    alice = await login(slix, server, "alice")
    roster = alice.xmpp.client_roster
    bob = server.jid("bob")
    assert bob in roster
    assert roster[bob]["subscription"] == "both"
    assert roster[bob]["name"] == "Bob Brown"
    assert roster[bob]["groups"] == ["Cardiology"]
    assert server.jid("carl") not in roster and server.jid("bea") not in roster


async def test_a_colleague_is_found_with_jabber_search(server: RunningServer, slix: Slix) -> None:
    alice = await login(slix, server, "alice")
    search = alice.plugin["xep_0055"]
    iq = search.make_search_iq(ito=server.domain)
    iq["search"]["form"].add_field("last", value="cole")
    reply = await iq.send(timeout=TIMEOUT)
    items = reply["search"]["form"]["items"]
    assert [i["jid"] for i in items] == [server.jid("carl")]
    assert items[0]["first"] == "Carl"
    # Bea is of another hospital: not a result.
    iq = search.make_search_iq(ito=server.domain)
    iq["search"]["form"].add_field("last", value="bell")
    assert (await iq.send(timeout=TIMEOUT))["search"]["form"]["items"] == []


async def test_another_hospitals_user_may_not_be_messaged(
    server: RunningServer, slix: Slix
) -> None:
    alice = await login(slix, server, "alice", resource="refused")
    bea = await login(slix, server, "bea")
    alice.xmpp.send_message(mto=slixmpp.JID(server.jid("bea")), mbody="hello", mtype="chat")
    error = await alice.next(alice.errors)
    assert error["error"]["condition"] == "forbidden"
    assert error["error"]["type"] == "auth"
    assert error["error"]["text"] == "You may not message users of Bellwood Hospital"
    with pytest.raises(TimeoutError):
        await bea.next(bea.messages, timeout=1.0)


async def test_a_group_message_reaches_every_member_and_is_tracked(
    server: RunningServer, slix: Slix
) -> None:
    bob = await login(slix, server, "bob", resource="ward")
    alice = await login(slix, server, "alice", resource="group")
    group = f"cardiology@groups.{server.domain}"
    alice.xmpp.send_message(mto=slixmpp.JID(group), mbody="rounds at nine", mtype="chat")
    got = await bob.next_matching(bob.messages, lambda m: m["body"] == "rounds at nine")
    assert got["from"].bare == group
    assert got["type"] == "chat"
    ofrom = got.xml.find(f"{ADDRESS}addresses/{ADDRESS}address")
    assert ofrom is not None and ofrom.get("type") == "ofrom"
    assert ofrom.get("jid") == server.jid("alice")
    assert got.xml.findtext(NICK) == "Alice Able"
    uid = got.xml.find("{urn:xmpp:sid:0}stanza-id").get("id")
    deadline = time.monotonic() + 15
    while True:
        msgs = await asyncio.to_thread(records, server, "MESSAGES", f"uuid:eq:{uid}")
        deliveries = (
            await asyncio.to_thread(
                records, server, "MESSAGE_DELIVERIES", f"message:eq:{msgs[0]['id']}"
            )
            if msgs
            else []
        )
        if deliveries or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert msgs, log_tail(server)
    assert msgs[0]["message"] == "rounds at nine"
    assert len(deliveries) == 1  # bob: the only member but the sender
    (conv,) = await asyncio.to_thread(
        records, server, "CONVERSATIONS", f"jid1:eq:{group}", "jid2:eq:GROUP"
    )
    assert msgs[0]["conversation"] == conv["id"]


async def test_joining_a_group_pushes_the_new_colleagues(server: RunningServer, slix: Slix) -> None:
    carl = await login(slix, server, "carl")
    assert server.jid("alice") not in carl.xmpp.client_roster
    # Another process (like the command line) adds carl to Cardiology.
    world = await open_world(db_url(server.data_dir))
    try:
        cardiology = await group_of(world, "Cardiology")
        await world.directory.groups.add_members(SYSTEM_CALLER, cardiology.id, ["carl"])
    finally:
        await close(world)
    pushed: set[str] = set()
    while pushed != {server.jid("alice"), server.jid("bob")}:
        push = await carl.next(carl.roster_pushes)
        pushed |= {str(jid) for jid in push["roster"]["items"]}
    item = carl.xmpp.client_roster[server.jid("alice")]
    assert item["subscription"] == "both" and item["groups"] == ["Cardiology"]
