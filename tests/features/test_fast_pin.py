"""The directory PIN unlocks a device's FAST token (carewire.core.sasl2, features.pin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewire.core.auth import HARD_LIMIT_TEXT, LOCKED_TEXT, Authenticator, LoginAuditor
from carewire.core.sasl2 import PIN_REQUIRED, WRONG_PIN
from carewire.core.stores import LoginOutcome
from carewire.xmpp.sasl2 import HT_NONE, PIN
from tests.core.sasl2_client import AGENT_XML, REQUEST_TOKEN, Client, failure_of, token_of
from tests.features import directory_setup
from tests.features.directory_setup import PASSWORD, Directory

directory_fixture = directory_setup.directory_fixture


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the PIN and lockout stores run on both databases in tests/storage."""
    return f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"


def pin(value: str) -> str:
    return f"<pin xmlns='{PIN}'>{value}</pin>"


@pytest.fixture
def auth(d: Directory) -> Authenticator:
    return Authenticator(d.h.kernel.stores, d.h.clock, LoginAuditor(d.h.kernel.stores))


async def token(d: Directory, auth: Authenticator) -> str:
    c = Client(d.h, auth)
    await c.open()
    plain = f"\0alice\0{PASSWORD}".encode()
    return token_of(await c.authenticate("PLAIN", plain, AGENT_XML + REQUEST_TOKEN))


async def failures(d: Directory) -> int:
    account = await d.h.kernel.stores.accounts.get("alice")
    assert account is not None
    return account.failed_logins


async def test_fast_needs_the_pin_and_a_wrong_pin_counts(d: Directory, auth: Authenticator) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able", pin="2580")
    _, other = await d.h.bind("alice", "desk")  # another session of the user
    t = await token(d, auth)
    assert failure_of(await Client(d.h, auth).fast("alice", t)) == ("not-authorized", PIN_REQUIRED)
    assert await failures(d) == 0
    assert failure_of(await Client(d.h, auth).fast("alice", t, pin("1397"))) == (
        "not-authorized",
        WRONG_PIN,
    )
    assert await failures(d) == 1
    # The token survived the wrong PIN; with the right one the device is in.
    c = Client(d.h, auth)
    assert "<success" in await c.fast("alice", t, pin("2580"))
    assert await failures(d) == 0 and other.closed is None
    await auth.auditor.flush()
    rows = await d.h.kernel.stores.login_audit.query(login="alice")
    assert [(r.outcome, r.mechanism, r.reason, r.transport) for r in rows[:3]] == [
        (LoginOutcome.SUCCESS, HT_NONE, "", "c2s-tls"),
        (LoginOutcome.FAILURE, HT_NONE, "wrong-pin", "c2s-tls"),
        (LoginOutcome.FAILURE, HT_NONE, "no pin", "c2s-tls"),
    ]
    # The directory's own record of PIN checks has it too.
    assert d.h.platform is not None
    entries, _ = await d.h.platform.audit.store.entries(action="directory.pin.verify")
    assert [(e.event.details.get("reason"), e.event.details.get("via")) for e in entries] == [
        ("wrong-pin", "fast")
    ]
    assert all("1397" not in str(e.event.details) for e in entries)  # no PIN in the trail


async def test_a_pin_alone_is_never_a_credential(d: Directory, auth: Authenticator) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able", pin="2580")
    # No token issued for this device: the right PIN does not help.
    assert failure_of(await Client(d.h, auth).fast("alice", "x" * 43, pin("2580"))) == (
        "not-authorized",
        "",
    )
    t = await token(d, auth)
    # A wrong token with the right PIN: refused before the PIN is looked at.
    assert failure_of(await Client(d.h, auth).fast("alice", t[::-1], pin("2580")))[1] == ""
    # With a password mechanism the PIN is no substitute for the password.
    c = Client(d.h, auth)
    await c.open()
    text = await c.authenticate("PLAIN", b"\0alice\0wrong", pin("2580"))
    assert failure_of(text) == ("not-authorized", "")
    c = Client(d.h, auth)
    await c.open()
    assert failure_of(
        await c.feed(
            f"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PIN'>{pin('2580')}</authenticate>"
        )
    ) == ("invalid-mechanism", "")


async def test_wrong_pins_reach_the_lockout_delay(d: Directory, auth: Authenticator) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able", pin="2580")
    t = await token(d, auth)
    for _ in range(5):
        text = await Client(d.h, auth).fast("alice", t, pin("1397"))
        assert failure_of(text) == ("not-authorized", WRONG_PIN)
    # Inside the delay even the right PIN and token wait, like a password would.
    text = await Client(d.h, auth).fast("alice", t, pin("2580"))
    assert failure_of(text) == ("temporary-auth-failure", HARD_LIMIT_TEXT)
    # The XMPP PIN check of the directory sees the same count.
    answer = await d.reply(
        "alice", f"<iq type='set' id='v'><verify xmlns='{PIN}' pin='2580'/></iq>"
    )
    assert answer.get("type") == "error"
    d.h.clock.advance(181)
    assert "<success" in await Client(d.h, auth).fast("alice", t, pin("2580"))


async def test_ten_wrong_pins_lock_and_end_the_sessions(d: Directory, auth: Authenticator) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able", pin="2580")
    await d.user(org, "bob", "Bob", "Baker", pin="4826")
    _, alice_desk = await d.h.bind("alice", "desk")
    _, bob_desk = await d.h.bind("bob", "desk")
    t = await token(d, auth)
    for i in range(10):
        if i >= 5:
            d.h.clock.advance(181)  # past each delay, as a patient attacker would wait
        text = await Client(d.h, auth).fast("alice", t, pin("1397"))
        assert failure_of(text) == ("not-authorized", WRONG_PIN)
    assert await failures(d) == 10
    assert alice_desk.closed is not None and alice_desk.closed[1] == LOCKED_TEXT
    assert bob_desk.closed is None  # other users are untouched
    text = await Client(d.h, auth).fast("alice", t, pin("2580"))
    assert failure_of(text) == ("account-disabled", LOCKED_TEXT)
