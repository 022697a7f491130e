"""Users: create, find, update, roles, Can Login, unlock, delete; scoping by caller."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select

from carewire.core.auth import Admission, LockoutPolicy, admission
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.model import (
    EmailTakenError,
    InvalidEmailError,
    InvalidFieldError,
    InvitationStatus,
    InviteRequest,
    LastAdminError,
    LoginState,
    LoginTakenError,
    NewUser,
    PageRequest,
    PinPolicyError,
    Profile,
    ReadOnlyError,
    StaffType,
    UnknownGroupError,
    UnknownUserError,
    UserDeleted,
    UserDisabled,
    UserFilter,
    UserSortKey,
    UserUpdate,
)
from carewire.errors import ConflictError
from carewire.storage.tables import accounts
from carewire.storage.tables_directory import directory_group_members, directory_users
from tests.directory.world import AUDITOR, PASSWORD, SYSADMIN, World


def new_user(email: str, first: str = "Jane", last: str = "Doe", **kw: object) -> NewUser:
    profile = Profile(first_name=first, last_name=last, email=email)
    return NewUser(profile=profile, pin="2580", password=PASSWORD, **kw)  # type: ignore[arg-type]


async def test_create_user_with_password_is_complete(world: World) -> None:
    org = await world.hospital()
    icu = await world.directory.groups.create(SYSADMIN, org.id, "ICU")
    user = await world.directory.users.create(
        world.admin_of(org),
        org.id,
        replace(
            new_user("Nurse.Joy@Example.org", "Joy", "Nurse"),
            groups=(icu.id,),
            pin_is_temporary=True,
        ),
    )
    assert (user.login, user.profile.email, user.is_registered) == (
        "nurse.joy",
        "nurse.joy@example.org",
        True,
    )
    assert user.pin_is_temporary and user.login_state is LoginState.ENABLED
    assert world.mailer.to("nurse.joy@example.org") == []  # registered: no invitation
    assert [m.login for m in await world.directory.groups.members(SYSADMIN, icu.id)] == [
        "nurse.joy"
    ]
    assert (await world.directory.pins.verify("nurse.joy", "2580")).must_change
    second = await world.directory.users.create(SYSADMIN, org.id, new_user("nurse.joy@other.org"))
    assert second.login == "nurse.joy2" and second.staff_id == user.staff_id + 1


@pytest.mark.parametrize(
    ("user", "error"),
    [
        (new_user("not an address"), InvalidEmailError),
        (new_user("a@example.org", first=""), InvalidFieldError),
        (new_user("a@example.org", last="x" * 65), InvalidFieldError),
        (replace(new_user("a@example.org"), pin="1111"), PinPolicyError),
        (replace(new_user("a@example.org"), password="short"), Exception),
        (replace(new_user("a@example.org"), login="Not Valid"), InvalidFieldError),
        (replace(new_user("a@example.org"), groups=(999,)), UnknownGroupError),  # type: ignore[arg-type]
        (
            replace(
                new_user("a@example.org"),
                profile=Profile(
                    first_name="A", last_name="B", email="a@example.org", office_phone="12"
                ),
            ),
            InvalidFieldError,
        ),
        (
            replace(
                new_user("a@example.org"),
                profile=Profile(
                    first_name="A", last_name="B", email="a@example.org", home_page_url="ftp://x"
                ),
            ),
            InvalidFieldError,
        ),
        (
            replace(
                new_user("a@example.org"),
                profile=Profile(
                    first_name="A", last_name="B", email="a@example.org", photo="not base64!"
                ),
            ),
            InvalidFieldError,
        ),
    ],
)
async def test_bad_input_creates_nothing(
    world: World, user: NewUser, error: type[Exception]
) -> None:
    org = await world.hospital()
    async with world.db.read("count") as conn:
        before = (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
    with pytest.raises(error):
        await world.directory.users.create(SYSADMIN, org.id, user)
    async with world.db.read("count") as conn:
        assert (
            await conn.execute(select(func.count()).select_from(accounts))
        ).scalar_one() == before


async def test_duplicates(world: World) -> None:
    org = await world.hospital()
    await world.directory.users.create(SYSADMIN, org.id, new_user("a@example.org"))
    with pytest.raises(EmailTakenError):
        await world.directory.users.create(SYSADMIN, org.id, new_user("A@EXAMPLE.ORG"))
    with pytest.raises(LoginTakenError):
        await world.directory.users.create(
            SYSADMIN, org.id, replace(new_user("b@example.org"), login="a")
        )


async def test_created_without_password_is_invited(world: World) -> None:
    org = await world.hospital()
    user = await world.directory.users.create(
        SYSADMIN, org.id, replace(new_user("c@example.org"), password=None)
    )
    assert not user.is_registered
    (mail,) = world.mailer.to("c@example.org")
    assert "/register/" in mail.body
    page = await world.directory.invitations.find(SYSADMIN, org.id)
    assert any(i.login == "c" and i.status is InvitationStatus.EMAIL_SENT for i in page.items)


async def test_find_users(world: World) -> None:
    org = await world.hospital()
    people = [
        ("Ann", "Zimmer", StaffType.PHYSICIAN),
        ("bob", "adams", StaffType.NON_PHYSICIAN),
        ("Cleo", "Adams", StaffType.PHYSICIAN),
        ("Dan", "Mast", StaffType.NON_PHYSICIAN),
    ]
    for first, last, kind in people:
        nu = new_user(f"{first.lower()}@example.org", first, last)
        await world.directory.users.create(
            SYSADMIN, org.id, replace(nu, profile=replace(nu.profile, staff_type=kind))
        )
    find = world.directory.users.find
    page = await find(SYSADMIN, org.id)
    assert [u.profile.sort_name for u in page.items] == [
        "adams, bob",
        "Adams, Cleo",
        "Mast, Dan",
        "Zimmer, Ann",
    ]
    page = await find(SYSADMIN, org.id, is_descending=True, page=PageRequest(offset=1, limit=2))
    assert [u.login for u in page.items] == ["dan", "cleo"] and page.total == 4
    page = await find(SYSADMIN, org.id, UserFilter(last_name="ADA", staff_type=StaffType.PHYSICIAN))
    assert [u.login for u in page.items] == ["cleo"]
    page = await find(SYSADMIN, org.id, UserFilter(email="N@"))
    assert [u.login for u in page.items] == ["dan", "ann"]  # Mast before Zimmer
    page = await find(SYSADMIN, org.id, UserFilter(first_name="%"))  # wildcards are literal
    assert page.total == 0
    page = await find(SYSADMIN, org.id, sort=UserSortKey.STAFF_TYPE)
    assert page.items[0].profile.staff_type is StaffType.NON_PHYSICIAN
    assert all(u.profile.photo == "" for u in page.items)


async def test_update_profile_roles_and_console_account(world: World) -> None:
    org = await world.hospital(admin="chief@example.org")
    await world.register("chief@example.org", login="chief")
    user = await world.directory.users.create(SYSADMIN, org.id, new_user("a@example.org"))
    made = await world.directory.users.update(
        world.admin_of(org), user.login, UserUpdate(is_org_admin=True)
    )
    assert made.is_org_admin
    reset_mail = world.last_mail("a@example.org")
    assert reset_mail.subject == "You are now a Carewire administrator of Abelard Medical Center"
    assert "/reset/" in reset_mail.body
    renamed = await world.directory.users.update(
        SYSADMIN,
        user.login,
        UserUpdate(
            profile=replace(made.profile, email="ann@example.org", title="Dr"),
            password=PASSWORD + "!",
        ),
    )
    assert renamed.profile.email == "ann@example.org" and renamed.profile.title == "Dr"
    session, _ = await world.console.sign_in("ann@example.org", PASSWORD + "!")
    assert session.user.organisation_id == org.id
    record = await world.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value="a"),))
    )
    assert record.records[0].values["email"] == "ann@example.org"
    assert record.records[0].values["title"] == "Dr"
    with pytest.raises(EmailTakenError):
        await world.directory.users.update(
            SYSADMIN, "a", UserUpdate(profile=replace(renamed.profile, email="chief@example.org"))
        )
    await world.directory.users.update(SYSADMIN, "a", UserUpdate(is_org_admin=False))
    assert await world.console._store.find("ann@example.org") is None
    with pytest.raises(LastAdminError):
        await world.directory.users.update(SYSADMIN, "chief", UserUpdate(is_org_admin=False))
    with pytest.raises(LastAdminError):
        await world.directory.users.delete(SYSADMIN, "chief")
    entries, _ = await world.audit.store.entries(action="directory.user.update")
    assert any(e.event.details.get("password_changed") for e in entries)
    assert all("PASSWORD" not in str(e.event.details) for e in entries)


async def test_can_login_and_unlock(world: World) -> None:
    org = await world.hospital()
    user = await world.directory.users.create(SYSADMIN, org.id, new_user("a@example.org"))
    off = await world.directory.users.set_can_login(SYSADMIN, user.login, False)
    assert off.login_state is LoginState.DISABLED
    assert UserDisabled(login="a") in world.events
    account = await world.accounts.stores.accounts.get("a")
    assert account is not None and account.is_disabled
    assert admission(account, world.clock.now(), LockoutPolicy()) is Admission.DISABLED
    for _ in range(10):
        await world.accounts.stores.accounts.record_failure("a", world.clock.now(), lock_after=10)
    locked = await world.directory.users.get(SYSADMIN, "a")
    assert locked.login_state is LoginState.LOCKED
    assert locked.login_state.value == "Invalid login hard limit reached. Delaying login attempts."
    with pytest.raises(PinPolicyError):
        await world.directory.users.unlock(SYSADMIN, "a", "0000")
    unlocked = await world.directory.users.unlock(SYSADMIN, "a", "7410", pin_is_temporary=True)
    assert unlocked.login_state is LoginState.ENABLED and unlocked.pin_is_temporary
    assert (await world.directory.pins.verify("a", "7410")).must_change


async def test_delete_user(world: World) -> None:
    org = await world.hospital()
    user = await world.user(org, "gone@example.org", login="gone")
    icu = await world.directory.groups.create(SYSADMIN, org.id, "ICU")
    await world.directory.groups.add_members(SYSADMIN, icu.id, ["gone"])
    other = await world.hospital("Other")
    await world.directory.invitations.invite(
        SYSADMIN, other.id, InviteRequest(emails="gone@example.org")
    )
    await world.directory.users.delete(world.admin_of(org), user.login)
    with pytest.raises(UnknownUserError):
        await world.directory.users.get(SYSADMIN, "gone")
    assert not await world.accounts.stores.accounts.exists("gone")
    async with world.db.read("count") as conn:
        for table in (directory_users, directory_group_members):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0
    page = await world.datasets.query(
        "USERS", Query(filters=(Filter(field="login", op=FilterOp.EQ, value="gone"),))
    )
    (record,) = page.records
    assert record.values["email"] is None and record.values["reference_name"] == "Jane Doe"
    assert (await world.directory.invitations.find(SYSADMIN, other.id)).total == 1  # the admin's
    assert world.directory.index.organisation_of("gone") is None
    assert UserDeleted(login="gone", organisation_id=org.id, groups=(icu.id,)) in world.events
    # The login stays taken: a new user would inherit the kept record's history.
    with pytest.raises(LoginTakenError):
        await world.directory.users.create(
            SYSADMIN, org.id, replace(new_user("new@example.org"), login="gone")
        )
    assert await world.directory.users.suggest_login("gone@example.org") == "gone2"


async def test_scoping_and_read_only(world: World) -> None:
    a = await world.hospital("A Hospital")
    b = await world.hospital("B Hospital")
    b_user = await world.directory.users.create(SYSADMIN, b.id, new_user("b@example.org"))
    admin_a = world.admin_of(a)
    for call in (
        world.directory.users.get(admin_a, b_user.login),
        world.directory.users.update(admin_a, b_user.login, UserUpdate(can_login=False)),
        world.directory.users.delete(admin_a, b_user.login),
        world.directory.users.unlock(admin_a, b_user.login, "7410"),
        world.directory.users.find_by_email(admin_a, "b@example.org"),
        world.directory.pins.request_reset(admin_a, b_user.login),
        world.directory.devices.list_for(admin_a, b_user.login),
    ):
        with pytest.raises(UnknownUserError):
            await call
    with pytest.raises(Exception) as raised:
        await world.directory.users.find(admin_a, b.id)
    assert raised.value.code == "unknown-organisation"  # type: ignore[attr-defined]
    assert (await world.directory.users.get(AUDITOR, b_user.login)).login == b_user.login
    with pytest.raises(ReadOnlyError):
        await world.directory.users.update(AUDITOR, b_user.login, UserUpdate(can_login=False))
    with pytest.raises(ReadOnlyError):
        await world.directory.users.create(AUDITOR, b.id, new_user("c@example.org"))
    auditor_a = world.auditor_of(a)
    with pytest.raises(UnknownUserError):
        await world.directory.users.get(auditor_a, b_user.login)
    assert ReadOnlyError("x").code == "forbidden" and isinstance(ReadOnlyError("x"), Exception)
    assert not isinstance(ReadOnlyError("x"), ConflictError)
