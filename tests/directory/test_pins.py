"""PINs: verification under the account lockout, temporary PINs, changes and reset links."""

from __future__ import annotations

import pytest

from carewire.directory.model import (
    AccountRefusedError,
    InvalidFieldError,
    LinkGoneError,
    OrganisationSettings,
    OrganisationUpdate,
    PinPolicyError,
    ReadOnlyError,
    UnknownUserError,
    UserUpdate,
    WrongPinError,
)
from carewire.mail import MailError
from tests.directory.world import AUDITOR, SYSADMIN, World


async def test_wrong_pins_delay_then_lock_the_account(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a", pin="2580")
    for _ in range(4):
        with pytest.raises(WrongPinError):
            await world.directory.pins.verify("a", "0852")
    assert (await world.directory.pins.verify("a", "2580")).must_change is False
    account = await world.accounts.stores.accounts.get("a")
    assert account is not None and account.failed_logins == 0  # a success resets the count
    for _ in range(5):
        with pytest.raises(WrongPinError):
            await world.directory.pins.verify("a", "0852")
    with pytest.raises(AccountRefusedError) as refused:
        await world.directory.pins.verify("a", "2580")  # even the right PIN waits
    assert refused.value.reason == "delayed"
    for _ in range(5):
        world.clock.advance(181)
        with pytest.raises(WrongPinError):
            await world.directory.pins.verify("a", "0852")
    with pytest.raises(AccountRefusedError) as refused:
        await world.directory.pins.verify("a", "2580")
    assert refused.value.reason == "locked"
    entries, _ = await world.audit.store.entries(action="directory.pin.verify")
    assert entries[0].event.details["reason"] == "locked"
    assert all("2580" not in str(e.event.details) for e in entries)
    await world.directory.users.update(SYSADMIN, "a", UserUpdate(can_login=False))
    await world.directory.users.unlock(SYSADMIN, "a", "7410")
    assert (await world.directory.pins.verify("a", "7410")).must_change is False


async def test_disabled_users_cannot_use_their_pin(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await world.directory.users.set_can_login(SYSADMIN, "a", False)
    with pytest.raises(AccountRefusedError) as refused:
        await world.directory.pins.verify("a", "2580")
    assert refused.value.reason == "disabled"


async def test_temporary_pin_must_be_changed(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await world.directory.pins.set(world.admin_of(org), "a", "3691", is_temporary=True)
    assert (await world.directory.pins.verify("a", "3691")).must_change
    with pytest.raises(WrongPinError):
        await world.directory.pins.change_own("a", "0000", "1593")
    with pytest.raises(PinPolicyError):
        await world.directory.pins.change_own("a", "3691", "3691")
    with pytest.raises(PinPolicyError):
        await world.directory.pins.change_own("a", "3691", "5555")
    await world.directory.pins.change_own("a", "3691", "1593")
    assert (await world.directory.pins.verify("a", "1593")).must_change is False
    with pytest.raises(ReadOnlyError):
        await world.directory.pins.set(AUDITOR, "a", "1593")
    with pytest.raises(UnknownUserError):
        await world.directory.pins.verify("nobody", "1593")


async def test_six_digit_policy(world: World) -> None:
    org = await world.hospital()
    await world.directory.organisations.update(
        SYSADMIN, org.id, OrganisationUpdate(settings=OrganisationSettings(pin_length=6))
    )
    await world.user(org, "a@example.org", login="a", pin="258013")
    with pytest.raises(PinPolicyError, match="6 digits"):
        await world.directory.pins.set(SYSADMIN, "a", "2580")


async def test_reset_link(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    await world.directory.pins.request_reset(world.admin_of(org), "a")
    mail = world.last_mail("a@example.org")
    assert mail.subject == "Reset your Carewire PIN"
    token = world.link_token("a@example.org", "/pin-reset/")
    info = await world.directory.pins.reset_info(token)
    assert (info.login, info.pin_length) == ("a", 4)
    with pytest.raises(PinPolicyError):
        await world.directory.pins.complete_reset(token, "4321", "4321")
    with pytest.raises(InvalidFieldError) as differ:
        await world.directory.pins.complete_reset(token, "1593", "1594")
    assert differ.value.field == "pin_confirm"
    await world.directory.pins.complete_reset(token, "1593", "1593")  # still usable until here
    assert world.last_mail("a@example.org").subject == "Your Carewire PIN was changed"
    assert (await world.directory.pins.verify("a", "1593")).must_change is False
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.pins.complete_reset(token, "7539", "7539")
    assert gone.value.reason == "used"
    await world.directory.pins.request_reset(SYSADMIN, "a")
    late = world.link_token("a@example.org", "/pin-reset/")
    world.clock.advance(24 * 3600 + 1)
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.pins.reset_info(late)
    assert gone.value.reason == "expired"
    with pytest.raises(LinkGoneError):
        await world.directory.pins.reset_info("x" * 500)


async def test_an_unsent_reset_link_is_withdrawn(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "a@example.org", login="a")
    world.mailer.refuse.add("a@example.org")
    with pytest.raises(MailError):
        await world.directory.pins.request_reset(SYSADMIN, "a")
