"""The restore drill: an online backup of a serving installation, restored and served again.

A server runs with two users, a persistent room a user made over XMPP, a
patient whose name (PHI) is encrypted at rest, and its audit trail;
``carewire backup`` runs while it serves. After it stops, the archive is
restored into a new data directory (and, on PostgreSQL, a new empty
database); the restored installation serves the same users (slixmpp over
TLS), the room, the patient's name decrypted, and an audit trail that verifies.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import slixmpp
from slixmpp import JID
from sqlalchemy.engine import make_url

from tests.conftest import pg_base_url
from tests.interop.slix import SlixClient
from tests.serverproc import cli, init_data_dir, server_env, serving

#: Two server start-ups, an init and a dozen CLI processes: minutes on a loaded machine.
pytestmark = [pytest.mark.interop, pytest.mark.timeout(400)]

Slix = Callable[..., Awaitable[SlixClient]]
MARKER = "Qwertzuiop"
TIMEOUT = 15.0


def _muc(xmpp: slixmpp.ClientXMPP) -> None:
    xmpp.register_plugin("xep_0004")
    xmpp.register_plugin("xep_0045")


@asynccontextmanager
async def fresh_databases(count: int) -> AsyncIterator[list[str]]:
    """``count`` new, empty PostgreSQL databases, dropped afterwards."""
    base = pg_base_url()
    if base is None:
        pytest.skip("CAREWIRE_TEST_PG_URL not set")
    server = make_url(base).set(drivername="postgresql")
    dsn = server.render_as_string(hide_password=False)
    names = [f"carewire_b_{secrets.token_hex(6)}" for _ in range(count)]
    conn = await asyncpg.connect(dsn)
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield [server.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def _ok(*args: str, env: dict[str, str]) -> str:
    r = cli(*args, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


async def _populate(slix: Slix, data: Path, env: dict[str, str], room: JID) -> None:
    with serving(data, accounts=2, env=env) as server:
        alice = await slix(server, "user0", "pw-user0", configure=_muc)
        muc: Any = alice.plugin["xep_0045"]
        await muc.join_muc_wait(room, "Alice", timeout=TIMEOUT)
        form = muc.xmpp.plugin["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", value="http://jabber.org/protocol/muc#roomconfig")
        form.add_field(var="muc#roomconfig_roomname", value="Ward 7")
        form.add_field(var="muc#roomconfig_persistentroom", value=True, ftype="boolean")
        await muc.set_room_config(room, form, timeout=TIMEOUT)
        await alice.disconnect()
        _ok(
            "records",
            "create",
            "PATIENTS",
            "--set",
            "mrn=MRN-4242",
            "--set",
            f"last_name={MARKER}",
            "--data-dir",
            str(data),
            env=env,
        )
        yield_point = data.parent / "b.cwbak"
        extra = ["--include-keys"] if "CAREWIRE_STORAGE_URL" in env else []
        out = _ok(
            "backup",
            "--data-dir",
            str(data),
            "--output",
            str(yield_point),
            "--key-file",
            str(data.parent / "backup.key"),
            *extra,
            env=env,
        )
        assert "backup written to" in out


async def _check_restored(slix: Slix, restored: Path, env: dict[str, str], room: JID) -> None:
    with serving(restored, accounts=2, env=env) as server:
        for n in range(2):
            client = await slix(server, f"user{n}", f"pw-user{n}", configure=_muc)
            await client.disconnect()
        alice = await slix(server, "user0", "pw-user0", configure=_muc)
        items = await alice.plugin["xep_0030"].get_items(
            jid=f"chat.{server.domain}", timeout=TIMEOUT
        )
        assert str(room) in {str(i[0]) for i in items["disco_items"]["items"]}
        form = await alice.plugin["xep_0045"].get_room_config(room, timeout=TIMEOUT)
        assert form.get_fields()["muc#roomconfig_roomname"]["value"] == "Ward 7"
        await alice.disconnect()
        out = _ok("records", "list", "PATIENTS", "--json", "--data-dir", str(restored), env=env)
        names = {r["values"]["last_name"] for r in json.loads(out)["records"]}
        assert names == {MARKER}
        out = _ok("audit", "verify", "--data-dir", str(restored), env=env)
        assert "chain intact" in out


def _key_file(where: Path) -> None:
    key = where / "backup.key"
    key.write_text(base64.b64encode(os.urandom(32)).decode())
    key.chmod(0o600)


async def test_sqlite_drill(tmp_path: Path, slix: Slix) -> None:
    env = server_env()
    data = tmp_path / "data"
    init_data_dir(data, accounts=2, env=env)
    _key_file(tmp_path)
    room = JID(f"ward7@chat.{'carewire.test'}")
    await _populate(slix, data, env, room)
    restored = tmp_path / "restored"
    # The keys are kept apart from the backups: the operator puts them in place first.
    shutil.copytree(tmp_path / "data-keys", tmp_path / "restored-keys")
    _ok(
        "restore",
        str(tmp_path / "b.cwbak"),
        "--key-file",
        str(tmp_path / "backup.key"),
        "--data-dir",
        str(restored),
        env=env,
    )
    await _check_restored(slix, restored, env, room)


@pytest.mark.postgres
async def test_postgresql_drill(tmp_path: Path, slix: Slix) -> None:
    async with fresh_databases(2) as (source, target):
        env = server_env({"CAREWIRE_STORAGE_URL": source})
        data = tmp_path / "data"
        init_data_dir(data, accounts=2, env=env)
        _key_file(tmp_path)
        room = JID("ward7@chat.carewire.test")
        await _populate(slix, data, env, room)
        restored = tmp_path / "elsewhere" / "restored"
        plain = server_env()  # the restored carewire.toml names the new database itself
        _ok(
            "restore",
            str(tmp_path / "b.cwbak"),
            "--key-file",
            str(tmp_path / "backup.key"),
            "--data-dir",
            str(restored),
            "--database-url",
            target,
            env=plain,
        )
        assert target.split("/")[-1] in (restored / "carewire.toml").read_text()
        await _check_restored(slix, restored, plain, room)
