"""Nothing accepted is lost across a restart: offline messages, rosters and credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.rawclient import RawClient
from tests.serverproc import init_data_dir, server_env, serving

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("hard_stop", [False, True], ids=["sigterm", "sigkill"])
async def test_state_survives_a_restart(tmp_path: Path, hard_stop: bool) -> None:
    """Stop the server (cleanly, or killed outright) and start it again on the same data."""
    env = server_env()
    init_data_dir(tmp_path, accounts=2, env=env)
    with serving(tmp_path, accounts=2, env=env, hard_stop=hard_stop) as server:
        alice = await RawClient.login(
            server.ports["c2s"], "user0", "pw-user0", domain=server.domain, resource="a"
        )
        reply = await alice.iq(
            "set",
            f"<query xmlns='jabber:iq:roster'><item jid='user1@{server.domain}' name='Bob'>"
            "<group>Ward 7</group></item></query>",
        )
        assert 'type="result"' in reply or "type='result'" in reply, reply
        for n in range(3):
            await alice.message(f"user1@{server.domain}", f"stored {n}")
        # Stanzas of one connection are handled in order: the ping's answer means all
        # three messages were accepted, i.e. committed to storage.
        await alice.ping()
        await alice.aclose()
    with serving(tmp_path, accounts=2, env=env) as server:
        bob = await RawClient.login(
            server.ports["c2s"], "user1", "pw-user1", domain=server.domain, resource="b"
        )
        await bob.send("<presence/>")
        for n in range(3):
            await bob.read_message(f"stored {n}")  # in the order they were sent
            rest = await bob.read_until("</message>")
            assert "urn:xmpp:delay" in rest  # XEP-0203 stamp of offline storage
        alice = await RawClient.login(
            server.ports["c2s"], "user0", "pw-user0", domain=server.domain, resource="a"
        )
        roster = await alice.iq("get", "<query xmlns='jabber:iq:roster'/>")
        assert f"user1@{server.domain}" in roster and "Ward 7" in roster and "Bob" in roster
        await bob.aclose()
        await alice.aclose()
