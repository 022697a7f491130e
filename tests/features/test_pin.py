"""The PIN over XMPP, urn:carewire:pin:0 (carewire.features.pin)."""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element

from carewire.core.auth import HARD_LIMIT_TEXT, LOCKED_TEXT
from carewire.directory.model import SYSTEM_CALLER, Organisation
from carewire.features.pin import NS_PIN, WRONG_PIN
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition
from tests.features import directory_setup
from tests.features.directory_setup import Directory, error_text, iq_answer
from tests.features.harness import error_condition

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

PIN = f"{{{NS_PIN}}}"


def verify(pin: str, *, to: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return f"<iq type='set' id='v'{to_attr}><verify xmlns='{NS_PIN}' pin='{pin}'/></iq>"


def change(old: str, new: str) -> str:
    return f"<iq type='set' id='c'><change xmlns='{NS_PIN}' old='{old}' new='{new}'/></iq>"


async def hospital(d: Directory) -> Organisation:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Able", pin="2580")
    await d.user(org, "tom", "Tom", "Temp", pin="4826", temporary=True)
    return org


def must_change(answer: Element) -> str | None:
    assert answer.get("type") == "result", answer
    found = answer.find(f"{PIN}verify")
    assert found is not None
    return found.get("must-change")


async def failures(d: Directory, login: str) -> int:
    account = await d.h.kernel.stores.accounts.get(login)
    assert account is not None
    return account.failed_logins


async def test_a_correct_pin_is_verified(d: Directory) -> None:
    await hospital(d)
    assert must_change(await d.reply("alice", verify("2580"))) == "false"
    assert must_change(await d.reply("alice", verify("2580", to=d.jid("alice")))) == "false"
    assert must_change(await d.reply("alice", verify("2580", to=d.domain))) == "false"


async def test_a_temporary_pin_must_be_changed(d: Directory) -> None:
    await hospital(d)
    assert must_change(await d.reply("tom", verify("4826"))) == "true"
    done = await d.reply("tom", change("4826", "7391"))
    assert done.get("type") == "result"
    assert must_change(await d.reply("tom", verify("7391"))) == "false"
    wrong = await d.reply("tom", verify("4826"))
    assert error_condition(wrong) == "not-authorized"


async def test_a_wrong_pin_is_refused_and_counted(d: Directory) -> None:
    await hospital(d)
    answer = await d.reply("alice", verify("1357"))
    assert error_condition(answer) == "not-authorized"
    assert error_text(answer) == WRONG_PIN
    assert await failures(d, "alice") == 1
    assert must_change(await d.reply("alice", verify("2580"))) == "false"
    assert await failures(d, "alice") == 0  # a success resets the count


async def test_repeated_wrong_pins_delay_then_lock_and_end_the_sessions(d: Directory) -> None:
    await hospital(d)
    _, other = await d.h.login("alice", "tablet")
    session, sink = await d.h.login("alice", "phone")
    for _ in range(5):
        await d.h.send(session, verify("1357"))
        assert error_condition(iq_answer(sink, "v")) == "not-authorized"
    await d.h.send(session, verify("2580"))  # even the right PIN waits now
    delayed = iq_answer(sink, "v")
    assert error_condition(delayed) == "policy-violation"
    err = delayed.find(f"{{{ns.CLIENT}}}error")
    assert err is not None and err.get("type") == "wait"
    assert error_text(delayed) == HARD_LIMIT_TEXT
    for _ in range(5):
        d.h.clock.advance(181)
        await d.h.send(session, verify("1357"))
        assert error_condition(iq_answer(sink, "v")) == "not-authorized"
    await asyncio.sleep(0)
    account = await d.h.kernel.stores.accounts.get("alice")
    assert account is not None and account.is_locked
    assert sink.closed == (StreamCondition.NOT_AUTHORIZED, LOCKED_TEXT)
    assert other.closed == (StreamCondition.NOT_AUTHORIZED, LOCKED_TEXT)
    locked = await d.reply("alice", verify("2580"))
    assert error_condition(locked) == "not-allowed"
    # Unlocking (with a new PIN, the seed's procedure) lets the user in again.
    await d.svc.users.unlock(SYSTEM_CALLER, "alice", "6184")
    assert must_change(await d.reply("alice", verify("6184"))) == "false"


async def test_changing_the_pin_checks_the_old_one_and_the_policy(d: Directory) -> None:
    await hospital(d)
    wrong_old = await d.reply("alice", change("1357", "7391"))
    assert error_condition(wrong_old) == "not-authorized"
    weak = await d.reply("alice", change("2580", "1234"))
    assert error_condition(weak) == "not-acceptable"
    assert error_text(weak) == "The PIN must not be a run of consecutive digits."
    year = await d.reply("alice", change("2580", "1987"))
    assert error_condition(year) == "not-acceptable"
    assert must_change(await d.reply("alice", verify("2580"))) == "false"


async def test_disabled_users_are_refused(d: Directory) -> None:
    await hospital(d)
    await d.svc.users.set_can_login(SYSTEM_CALLER, "alice", False)
    answer = await d.reply("alice", verify("2580"))
    assert error_condition(answer) == "not-allowed"


async def test_bad_requests_and_accounts_without_a_pin(d: Directory) -> None:
    await hospital(d)
    missing = await d.reply("alice", f"<iq type='set' id='v'><verify xmlns='{NS_PIN}'/></iq>")
    assert error_condition(missing) == "bad-request"
    half = await d.reply(
        "alice", f"<iq type='set' id='c'><change xmlns='{NS_PIN}' old='2580'/></iq>"
    )
    assert error_condition(half) == "bad-request"
    legacy = await d.reply("legacy", verify("2580"))
    assert error_condition(legacy) == "item-not-found"
    other = await d.reply("alice", verify("2580", to=d.jid("tom")))
    assert error_condition(other) == "service-unavailable"  # only for one's own account


async def test_pin_is_advertised(d: Directory) -> None:
    answer = await d.reply(
        "someone", f"<iq type='get' id='d' to='{d.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    assert NS_PIN in {f.get("var") for f in answer.iter(f"{{{ns.DISCO_INFO}}}feature")}
