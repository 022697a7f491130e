"""Encryption at rest, end to end: no message text reaches any file of the data directory.

A real server with the demo hospital and real slixmpp clients over TLS: a
chat message to an online user, one to an offline user, a room message and
subject, and an alert whose text holds a marker. After the server stops,
every file under the data directory (database, WAL, logs, run/ files,
everything) is read as raw bytes and no marker may appear in it. After a
restart the data is still there: the offline message is delivered and the
archive returns the chat and room messages. Every file is 0600 and every
directory 0700.

The alert's marker is the rule's fixed text followed by the triggering
record's ``call_id``: only the rendered alert (stored as a message) holds the
whole marker. Dataset attributes marked PHI (patients' names, MRNs) are
encrypted by their own part; its marker check plugs in at
:func:`_phi_writes` (an ADT-style patient write).
"""

from __future__ import annotations

import asyncio
import stat
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import slixmpp
from slixmpp import JID

from carewire.demo_data import ALERT_RULE
from tests.interop.slix import SlixClient
from tests.serverproc import (
    DEMO_ACCOUNTS,
    RunningServer,
    cli,
    init_data_dir,
    server_env,
    serving,
)

pytestmark = pytest.mark.interop

Slix = Callable[..., Awaitable[SlixClient]]
TIMEOUT = 15.0
ALERT_NS = "urn:carewire:alert:0"
NURSE = "nurse.adams"  # level-1 nurse of ICU-101A in the demo hospital


def _marker(what: str) -> str:
    return f"MARK{what}{uuid.uuid4().hex.upper()}"


def _plugins(xmpp: slixmpp.ClientXMPP) -> None:
    for name in ("xep_0004", "xep_0045", "xep_0059", "xep_0313", "xep_0359"):
        xmpp.register_plugin(name)


async def _online(client: SlixClient) -> None:
    await client.xmpp.get_roster(timeout=TIMEOUT)
    client.xmpp.send_presence()


async def _token(server: RunningServer) -> str:
    r = server.cli("token", "create", f"enc-{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


async def _api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    token = await _token(server)
    async with httpx.AsyncClient(
        base_url=f"https://127.0.0.1:{server.ports['https']}/api/v1",
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


async def _alert(server: RunningServer, slix: Slix, prefix: str, suffix: str) -> None:
    """The demo's alert rule renders ``prefix`` + the call's id; the nurse receives it."""
    password = (server.data_dir / "demo-password.txt").read_text().strip()
    nurse = await slix(server, NURSE, password)
    nurse.xmpp.send_presence()
    async for api in _api(server):
        rules = (await api.get("/rules")).json()["rules"]
        [rule] = [r for r in rules if r["name"] == ALERT_RULE]
        rule["settings"]["message"] = prefix + "#{call_id}"
        rule_id = rule.pop("id")
        r = await api.put(f"/rules/{rule_id}", json=rule)
        assert r.status_code == 200, r.text
        bed = {
            "bed_number": "A",
            "room": {"room_number": "101", "facility": {"name": "Carewire General"}},
        }
        r = await api.post(
            "/datasets/NURSE_CALLS/records",
            json={"values": {"call_id": suffix, "status": "Open", "bed": bed}},
        )
        assert r.status_code == 201, r.text
    msg = await nurse.next_matching(
        nurse.messages, lambda m: m.xml.find(f"{{{ALERT_NS}}}alert") is not None, timeout=30
    )
    assert prefix + suffix in str(msg["body"])


async def _phi_writes(server: RunningServer) -> list[str]:
    """Markers written to dataset attributes marked PHI (an ADT-style patient write).

    None yet: patients' names, MRNs and the attributes a dataset marks PHI are
    encrypted by the dataset part, which adds its writes (and their markers) here.
    """
    return []


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _assert_no_marker(root: Path, markers: list[str]) -> int:
    """Every marker is absent from every file under ``root``; returns how many files."""
    files = _files(root)
    found = [
        (str(path.relative_to(root)), marker)
        for path in files
        for marker in markers
        if marker.encode() in path.read_bytes()
    ]
    assert found == [], f"plaintext found at rest: {found}"
    return len(files)


def _assert_private(root: Path) -> None:
    loose = [
        f"{p.relative_to(root)} {stat.S_IMODE(p.stat().st_mode):04o}"
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & (0o077 if p.is_dir() else 0o177)
    ]
    assert loose == []


async def test_no_marker_at_rest_and_everything_still_reads(tmp_path: Path, slix: Slix) -> None:
    data_dir = tmp_path / "data"
    env = server_env()
    init_data_dir(data_dir, accounts=DEMO_ACCOUNTS, env=env, demo=True)
    assert (tmp_path / "data-keys" / "kek").exists()  # the KEK is outside the data directory
    chat, offline, room_text, subject = (_marker(w) for w in ("CHAT", "OFFLINE", "ROOM", "SUBJ"))
    alert_prefix, alert_suffix = "MARKALERT", uuid.uuid4().hex.upper()
    room = JID(f"r{uuid.uuid4().hex[:10]}@chat.carewire.test")

    with serving(data_dir, accounts=3, env=env) as server:
        alice = await slix(server, "user0", "pw-user0", configure=_plugins)
        bob = await slix(server, "user1", "pw-user1", configure=_plugins)
        for c in (alice, bob):
            await _online(c)
        alice.xmpp.send_message(mto=JID(bob.jid.bare), mbody=chat, mtype="chat")
        await bob.next_matching(bob.messages, lambda m: m["body"] == chat)
        alice.xmpp.send_message(mto=JID(server.jid("user2")), mbody=offline, mtype="chat")

        muc = alice.plugin["xep_0045"]
        await muc.join_muc_wait(room, "Alice", timeout=TIMEOUT)
        form = alice.plugin["xep_0004"].make_form(ftype="submit")  # type: ignore[no-untyped-call]
        await muc.set_room_config(room, form, timeout=TIMEOUT)
        groupchat: asyncio.Queue[Any] = asyncio.Queue()
        alice.xmpp.add_event_handler("groupchat_message", groupchat.put_nowait)
        alice.xmpp.add_event_handler("groupchat_subject", groupchat.put_nowait)
        alice.xmpp.send_message(mto=room, mbody=room_text, mtype="groupchat")
        await alice.next_matching(groupchat, lambda m: m["body"] == room_text)
        alice.xmpp.send_message(mto=room, msubject=subject, mtype="groupchat")
        await alice.next_matching(groupchat, lambda m: m["subject"] == subject)

        await _alert(server, slix, alert_prefix, alert_suffix)
        phi = await _phi_writes(server)
        await alice.xmpp.plugin["xep_0199"].ping(timeout=TIMEOUT)  # everything before is stored
        for c in (alice, bob):
            await c.disconnect()

    markers = [chat, offline, room_text, subject, alert_prefix + alert_suffix, *phi]
    assert _assert_no_marker(data_dir, markers) >= 3  # the database, its log, serve.log …
    _assert_private(data_dir)

    with serving(data_dir, accounts=3, env=env) as server:
        carol = await slix(server, "user2", "pw-user2", configure=_plugins)
        await _online(carol)
        got = await carol.next_matching(carol.messages, lambda m: m["body"] == offline)
        assert got["delay"]["stamp"] is not None
        alice = await slix(server, "user0", "pw-user0", configure=_plugins)
        archive = [m async for m in alice.plugin["xep_0313"].iterate(with_jid=JID(bob.jid.bare))]
        bodies = [str(m["mam_result"]["forwarded"]["stanza"]["body"]) for m in archive]
        assert chat in bodies
        amuc = alice.plugin["xep_0045"]
        joined = await amuc.join_muc_wait(room, "Alice", timeout=TIMEOUT)
        assert joined is not None
        rooms = [m async for m in alice.plugin["xep_0313"].iterate(jid=room)]
        assert room_text in [str(m["mam_result"]["forwarded"]["stanza"]["body"]) for m in rooms]
        r = server.cli("keys", "status")
        assert r.returncode == 0, r.stderr
        assert "offline_messages.stanza" in r.stdout and "MESSAGES.message" in r.stdout


async def test_rotation_while_the_server_runs(tmp_path: Path, slix: Slix) -> None:
    """``keys rotate --new-data-key`` beside a running server: it follows, nothing is lost."""
    data_dir = tmp_path / "data"
    env = server_env({"CAREWIRE_ENCRYPTION_REFRESH_INTERVAL": "1s"})
    init_data_dir(data_dir, accounts=2, env=env)
    kek_file = tmp_path / "data-keys" / "kek"
    before_rotation = kek_file.read_text()
    with serving(data_dir, accounts=2, env=env) as server:
        alice = await slix(server, "user0", "pw-user0", configure=_plugins)
        await _online(alice)
        alice.xmpp.send_message(mto=JID(server.jid("user1")), mbody="before", mtype="chat")
        await alice.xmpp.plugin["xep_0199"].ping(timeout=TIMEOUT)

        where = ("--data-dir", str(data_dir))
        r = cli("keys", "rotate", "--new-data-key", *where, env=env)
        assert r.returncode == 0, r.stderr
        assert "re-wrapped 2 stored key(s)" in r.stdout and "new data key 3" in r.stdout
        assert kek_file.read_text() != before_rotation
        assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
        await asyncio.sleep(3)  # two refreshes: the server now encrypts with key 3
        alice.xmpp.send_message(mto=JID(server.jid("user1")), mbody="after", mtype="chat")
        await alice.xmpp.plugin["xep_0199"].ping(timeout=TIMEOUT)
        status = cli("keys", "status", *where, env=env)
        assert status.returncode == 0, status.stderr
        [active] = [line for line in status.stdout.splitlines() if "encrypts new values" in line]
        assert active.split()[0] == "3"
        assert "offline_messages.stanza" in status.stdout
        await alice.disconnect()

    assert "re-wrapped" not in (data_dir / "serve.log").read_text()  # the CLI did it
    with serving(data_dir, accounts=2, env=env) as server:
        bob = await slix(server, "user1", "pw-user1", configure=_plugins)
        await _online(bob)
        got = [await bob.next_matching(bob.messages, lambda m: bool(m["body"])) for _ in "ab"]
        assert [str(m["body"]) for m in got] == ["before", "after"]
    log = (data_dir / "serve.log").read_text()
    assert "data key 3 now encrypts new values" in log
