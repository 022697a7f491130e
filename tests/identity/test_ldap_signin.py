"""LDAP sign-in and sync end to end: a real server subprocess, a real slapd, slixmpp over TLS.

The organisation is configured and synced with the CLI (``carewire directory``),
as an operator would; its users then sign in to XMPP with their directory
password over SASL PLAIN inside TLS. SCRAM is refused with a text saying to use
PLAIN, wrong passwords count toward the lockout, and a user removed from the
directory loses their session once a sync disabled them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import slixmpp

from carewire.core.auth import EXTERNAL_SCRAM_TEXT, HARD_LIMIT_TEXT
from tests.identity.conftest import unit
from tests.interop.rawclient import HOST, client_tls_context
from tests.interop.slix import connect
from tests.ldapserver import BIND_DN, BIND_PW, SUFFIX, Slapd, password_of
from tests.serverproc import RunningServer, running_server

# One worker runs the module, so its server and slapd start once (not once per worker).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.xdist_group("identity/test_ldap_signin.py"),
]


@pytest.fixture(scope="module")
def site(
    slapd: Slapd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, list[str], str]]:
    """A server whose hospital syncs 8 people from slapd and signs them in by LDAP."""
    base, uids = unit(slapd, 8)
    data = tmp_path_factory.mktemp("ldap-site")
    env = {"CAREWIRE_XMPP_ACCOUNT_CHECK_INTERVAL": "1s"}
    with running_server(data / "data", accounts=0, env=env) as server:
        r = server.cli(
            "org", "create-hospital", "Ldap General", "--office", "(408) 882-5830",
            "--admin-email", "admin@ldapgeneral.org", "--admin-first", "Ada",
            "--admin-last", "Admin",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        secret = data / "bind-secret"
        secret.write_text(BIND_PW)
        r = server.cli(
            "directory", "configure", "1", "--url", slapd.url, "--bind-dn", BIND_DN,
            "--bind-secret-file", str(secret), "--base-dn", base, "--group-base-dn", base,
            "--ca-file", str(slapd.ca_file), "--sign-in", "--max-disable-percent", "50",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        r = server.cli("directory", "sync", "1")
        assert r.returncode == 0 and "created 8" in r.stdout, r.stdout + r.stderr
        yield server, uids, base


async def _failure_text(server: RunningServer, login: str, password: str, mech: str) -> str:
    """The <text/> of the SASL failure one attempt gets (slixmpp gives up after it)."""
    xmpp = slixmpp.ClientXMPP(f"{login}@{server.domain}", password, sasl_mech=mech)
    xmpp.ssl_context = client_tls_context()
    failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_failure(stanza: Any) -> None:
        if not failed.done():
            failed.set_result(str(stanza["text"]))

    xmpp.add_event_handler("failed_auth", on_failure)
    xmpp.add_event_handler("session_start", lambda _e: failed.set_result("signed in"))
    xmpp.connect(HOST, server.ports["c2s"])
    try:
        return await asyncio.wait_for(failed, 10)
    finally:
        xmpp.abort()
        await asyncio.sleep(0)


async def test_synced_users_sign_in_with_their_directory_password_over_plain(
    site: tuple[RunningServer, list[str], str],
) -> None:
    server, uids, _ = site
    client = await connect(server, uids[0], password_of(uids[0]), mechanism="PLAIN")
    try:
        assert client.jid.bare == f"{uids[0]}@{server.domain}"
    finally:
        await client.disconnect()


async def test_scram_is_refused_with_a_text_saying_to_use_plain(
    site: tuple[RunningServer, list[str], str],
) -> None:
    server, uids, _ = site
    text = await _failure_text(server, uids[1], password_of(uids[1]), "SCRAM-SHA-256")
    assert text == EXTERNAL_SCRAM_TEXT


async def test_wrong_directory_passwords_count_toward_the_lockout(
    site: tuple[RunningServer, list[str], str],
) -> None:
    server, uids, _ = site
    for _ in range(5):
        assert await _failure_text(server, uids[2], "not-the-password", "PLAIN") == ""
    # The sixth attempt, right password or not, waits out the delay.
    text = await _failure_text(server, uids[2], password_of(uids[2]), "PLAIN")
    assert text == HARD_LIMIT_TEXT


async def test_a_user_removed_from_the_directory_loses_their_session(
    site: tuple[RunningServer, list[str], str], slapd: Slapd
) -> None:
    server, uids, base = site
    client = await connect(server, uids[3], password_of(uids[3]), mechanism="PLAIN")
    try:
        slapd.modify(f"dn: uid={uids[3]},{base}\nchangetype: delete\n\n")
        r = server.cli("directory", "sync", "1", "--full")
        assert r.returncode == 0 and "disabled 1" in r.stdout, r.stdout + r.stderr
        # The server's account check ends the session of the user disabled by the CLI.
        await asyncio.wait_for(_disconnected(client.disconnects), 15)
    finally:
        await client.disconnect()
    assert await _failure_text(server, uids[3], password_of(uids[3]), "PLAIN") != "signed in"


async def _disconnected(events: list[Any]) -> None:
    while not events:
        await asyncio.sleep(0.05)


def test_status_says_connected(site: tuple[RunningServer, list[str], str]) -> None:
    server, _, _ = site
    r = server.cli("directory", "status", "1")
    assert r.returncode == 0 and "Connected" in r.stdout and "Not Connected" not in r.stdout
    assert SUFFIX in r.stdout


__all__ = ["Path"]
