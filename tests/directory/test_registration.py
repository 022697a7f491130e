"""Registration through an invitation link: one transaction, nothing half-created on failure."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    EmailTakenError,
    InvalidFieldError,
    InvitationStatus,
    InviteRequest,
    LinkGoneError,
    LoginTakenError,
    PinPolicyError,
    RegistrationForm,
    StaffType,
)
from carewire.security.console_auth import Role
from carewire.storage.tables import accounts, console_users
from carewire.storage.tables_directory import directory_pins, directory_users
from tests.directory.world import PASSWORD, SYSADMIN, World

CSV = "Email,First Name,Last Name,Department\njdoe@example.org,Jane,Doe,Cardiology\n"


def form(login: str = "jdoe", **changes: str) -> RegistrationForm:
    values = {
        "login": login,
        "first_name": "Jane",
        "last_name": "Doe",
        "cell_number": "(555) 669-2750",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "pin": "2580",
        "pin_confirm": "2580",
    }
    return RegistrationForm(**(values | changes))  # type: ignore[arg-type]


async def counts(world: World) -> dict[str, int]:
    async with world.db.read("counts") as conn:
        return {
            t.name: int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
            for t in (accounts, directory_users, directory_pins, console_users)
        }


async def users_record(world: World, login: str) -> dict[str, object] | None:
    page = await world.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),))
    )
    return dict(page.records[0].values) if page.records else None


async def test_registration_creates_account_profile_pin_record_and_membership(world: World) -> None:
    org = await world.hospital()
    result = await world.directory.invitations.invite(SYSADMIN, org.id, InviteRequest(csv_text=CSV))
    assert result.groups_created == ("Cardiology",)
    assert result.invited[0].status is InvitationStatus.EMAIL_SENT
    token = world.link_token("jdoe@example.org")

    info = await world.directory.registration.info(token)
    assert (info.organisation, info.email, info.login) == (org.name, "jdoe@example.org", "jdoe")
    assert (info.first_name, info.last_name, info.pin_length) == ("Jane", "Doe", 4)
    page = await world.directory.invitations.find(SYSADMIN, org.id)
    assert page.items[0].status is InvitationStatus.USER_CLICKED

    user = await world.directory.registration.register(
        token, form(staff_type=StaffType.NON_PHYSICIAN)
    )
    assert user.login == "jdoe" and user.organisation_id == org.id and user.is_registered
    assert user.has_pin and not user.pin_is_temporary and user.staff_id >= 100_001
    assert user.profile.staff_type is StaffType.NON_PHYSICIAN
    assert user.profile.time_zone == org.settings.default_time_zone
    creds = await world.accounts.stores.accounts.get_credential("jdoe", "SCRAM-SHA-256")
    assert creds is not None
    record = await users_record(world, "jdoe")
    assert record is not None
    assert (record["email"], record["reference_name"]) == ("jdoe@example.org", "Jane Doe")
    (group,) = await world.directory.users.groups_of(SYSADMIN, "jdoe")
    assert group.name == "Cardiology"
    assert world.directory.index.organisation_of("jdoe") == org.id
    assert world.directory.index.groups_of("jdoe") == {group.id}
    page = await world.directory.invitations.find(SYSADMIN, org.id)
    assert page.items[0].status is InvitationStatus.REGISTERED
    assert (await world.directory.pins.verify("jdoe", "2580")).must_change is False

    with pytest.raises(LinkGoneError) as gone:  # used
        await world.directory.registration.register(token, form(login="jdoe2"))
    assert gone.value.reason == "used"


async def test_admin_invitation_makes_a_console_account(world: World) -> None:
    org = await world.hospital(admin="chief@abelard.org")
    user = await world.register("chief@abelard.org", login="chief")
    assert user.is_org_admin
    session, _ = await world.console.sign_in("chief@abelard.org", PASSWORD)
    assert session.user.organisation_id == org.id
    assert [a.login for a in await world.directory.organisations.admins(SYSADMIN, org.id)] == [
        "chief"
    ]


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"pin": "1234", "pin_confirm": "1234"}, PinPolicyError, "pin"),
        ({"pin": "1999", "pin_confirm": "1999"}, PinPolicyError, "pin"),
        ({"pin_confirm": "2581"}, InvalidFieldError, "pin_confirm"),
        ({"password_confirm": "something else"}, InvalidFieldError, "password_confirm"),
        ({"password": "short", "password_confirm": "short"}, Exception, None),
        ({"login": "Bad Login!"}, InvalidFieldError, "login"),
        ({"first_name": ""}, InvalidFieldError, "first_name"),
        ({"cell_number": "call me"}, InvalidFieldError, "cell_number"),
        ({"time_zone": "Mars/Olympus"}, InvalidFieldError, "time_zone"),
    ],
)
async def test_bad_input_creates_nothing_and_keeps_the_link(
    world: World, changes: dict[str, str], error: type[Exception], field: str | None
) -> None:
    org = await world.hospital()
    await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="jdoe@example.org")
    )
    token = world.link_token("jdoe@example.org")
    before = await counts(world)
    with pytest.raises(error) as raised:
        await world.directory.registration.register(token, form(**changes))
    if field is not None:
        assert getattr(raised.value, "field", None) == field
    assert await counts(world) == before
    assert await users_record(world, "jdoe") is None
    user = await world.directory.registration.register(token, form())  # the link still works
    assert user.login == "jdoe"


async def test_taken_login_and_address(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "first@example.org", login="jdoe")
    await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="jdoe@example.org")
    )
    token = world.link_token("jdoe@example.org")
    assert (await world.directory.registration.info(token)).login == "jdoe2"
    with pytest.raises(LoginTakenError):
        await world.directory.registration.register(token, form(login="JDoe"))
    # A second invitation to the same address, registered first elsewhere: the address is taken.
    other = await world.hospital("Other Hospital")
    await world.directory.invitations.invite(
        SYSADMIN, other.id, InviteRequest(emails="jdoe@example.org")
    )
    token2 = world.link_token("jdoe@example.org")
    await world.directory.registration.register(token2, form(login="jdoe2"))
    with pytest.raises(EmailTakenError):
        await world.directory.registration.register(token, form(login="jdoe3"))


async def test_a_failure_late_in_the_transaction_rolls_everything_back(world: World) -> None:
    org = await world.hospital(admin="boss@abelard.org")
    # A console user already has the address: the console account (written last) fails.
    await world.console.create_user(
        "boss", Role.AUDITOR, email="boss@abelard.org", password=PASSWORD
    )
    token = world.link_token("boss@abelard.org")
    before = await counts(world)
    with pytest.raises(Exception, match="already in use"):
        await world.directory.registration.register(token, form(login="boss2"))
    assert await counts(world) == before
    assert await users_record(world, "boss2") is None
    assert world.directory.index.organisation_of("boss2") is None
    page = await world.directory.invitations.find(SYSADMIN, org.id)
    assert page.items[0].status is InvitationStatus.EMAIL_SENT  # unchanged: it rolled back


async def test_expired_deleted_and_unknown_links(world: World) -> None:
    org = await world.hospital()
    result = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="a@example.org b@example.org")
    )
    a_token = world.link_token("a@example.org")
    b_token = world.link_token("b@example.org")
    await world.directory.invitations.delete(SYSADMIN, org.id, [result.invited[1].id])
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.registration.info(b_token)
    assert gone.value.reason == "deleted"
    with pytest.raises(LinkGoneError):
        await world.directory.registration.info("not-a-token")
    world.clock.advance(14 * 86400 + 1)
    before = await counts(world)
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.registration.register(a_token, form(login="a"))
    assert gone.value.reason == "expired"
    assert await counts(world) == before


async def test_created_user_completes_the_profile_by_registering(world: World) -> None:
    from carewire.directory.model import NewUser, Profile

    org = await world.hospital()
    created = await world.directory.users.create(
        SYSADMIN,
        org.id,
        NewUser(
            profile=Profile(
                first_name="Sam", last_name="Lee", email="sam@example.org", job_title="RN"
            ),
            pin="8520",
        ),
    )
    assert not created.is_registered and created.login == "sam"
    info = await world.directory.registration.info(world.link_token("sam@example.org"))
    assert info.is_login_fixed and info.login == "sam"
    user = await world.register("sam@example.org", pin="9630", first_name="Samuel")
    assert user.login == "sam" and user.is_registered and user.staff_id == created.staff_id
    assert user.profile.first_name == "Samuel" and user.profile.job_title == "RN"
    assert (await world.directory.pins.verify("sam", "9630")).must_change is False
    assert replace(user.profile, first_name="Sam") != user.profile
