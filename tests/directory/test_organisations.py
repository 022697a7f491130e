"""Organisations: hospitals, practices, Update Organization, members with their status."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from carewire.directory.model import (
    AdminInvitee,
    AffiliationConflictError,
    EmailTakenError,
    InvalidEmailError,
    InvalidFieldError,
    MemberStatus,
    MessageExpiration,
    NameTakenError,
    NewHospital,
    NewPractice,
    OrganisationSettings,
    OrganisationUpdate,
    OrgKind,
    PageRequest,
    ReadOnlyError,
    RetentionUnit,
    UnknownOrganisationError,
)
from carewire.storage.tables_directory import invitations, organisations
from tests.directory.world import AUDITOR, SYSADMIN, World

ADMIN = AdminInvitee(email="pat@practice.org", first_name="Pat", last_name="Lee")


async def count(world: World, table: object) -> int:
    async with world.db.read("count") as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_create_hospital(world: World) -> None:
    org = await world.hospital("St. Dominic's Urgent Care", admin="first@stdominic.org")
    assert org.kind is OrgKind.HOSPITAL and org.voice_number == ""
    s = org.settings
    assert (s.default_time_zone, s.whole_org_messaging, s.non_user_messaging) == (
        "America/New_York",
        False,
        False,
    )
    assert (s.high_priority_sound_seconds, s.message_expiration) == (30, MessageExpiration.DAYS_7)
    assert (s.retention_value, s.pin_length) == (None, 4)
    mail = world.last_mail("first@stdominic.org")
    assert "become an administrator of St. Dominic's Urgent Care" in mail.body
    with pytest.raises(NameTakenError):
        await world.hospital("ST. DOMINIC'S URGENT CARE")
    with pytest.raises(ReadOnlyError):
        await world.directory.organisations.create_hospital(
            world.admin_of(org),
            NewHospital(name="Mine", office_number="408-882-5830", admin=ADMIN),
        )
    with pytest.raises(InvalidFieldError) as bad:
        await world.directory.organisations.create_hospital(
            SYSADMIN, NewHospital(name="X", office_number="call us", admin=ADMIN)
        )
    assert bad.value.field == "office_number"
    with pytest.raises(InvalidEmailError):
        await world.directory.organisations.create_hospital(
            SYSADMIN,
            NewHospital(
                name="Y",
                office_number="408-882-5830",
                admin=AdminInvitee(email="x", first_name="A", last_name="B"),
            ),
        )
    assert await count(world, organisations) == 1


async def test_create_practice(world: World) -> None:
    h = await world.hospital("Abelard")
    await world.user(h, "doc@example.org", login="doc")
    made = await world.directory.organisations.create_practice(
        world.admin_of(h),
        NewPractice(
            hospital_id=h.id,
            name="Bayside Practice",
            office_number="(415) 555-0101",
            admin=ADMIN,
            emails="n1@example.org\nn2@example.org doc@example.org",
        ),
    )
    p = made.practice
    assert p.kind is OrgKind.PRACTICE
    assert made.admin_invitation.is_admin and made.admin_invitation.email == "pat@practice.org"
    assert [i.email for i in made.users.invited] == ["n1@example.org", "n2@example.org"]
    assert made.users.existing_users == ("doc@example.org",)
    (view,) = await world.directory.affiliations.list_for(world.admin_of(h), h.id)
    assert view.other.id == p.id and view.label == "pat@practice.org"  # until the admin registers
    await world.register("pat@practice.org", login="pat")
    (view,) = await world.directory.affiliations.list_for(world.admin_of(h), h.id)
    assert view.label == "Bayside Practice"
    practice_admin = world.admin_of(p)
    with pytest.raises(UnknownOrganisationError):  # not theirs
        await world.directory.organisations.create_practice(
            practice_admin,
            NewPractice(hospital_id=h.id, name="N", office_number="4155550101", admin=ADMIN),
        )
    with pytest.raises(AffiliationConflictError):  # practices may not create practices
        await world.directory.organisations.create_practice(
            practice_admin,
            NewPractice(
                hospital_id=p.id,
                name="N",
                office_number="4155550101",
                admin=AdminInvitee(email="q@x.org", first_name="Q", last_name="R"),
            ),
        )


async def test_a_malformed_initial_address_creates_nothing(world: World) -> None:
    h = await world.hospital()
    before = (await count(world, organisations), await count(world, invitations))
    with pytest.raises(InvalidEmailError):
        await world.directory.organisations.create_practice(
            SYSADMIN,
            NewPractice(
                hospital_id=h.id,
                name="P",
                office_number="4155550101",
                admin=ADMIN,
                emails="ok@x.org bad@",
            ),
        )
    with pytest.raises(EmailTakenError):
        await world.user(h, "taken@example.org")
        await world.directory.organisations.create_practice(
            SYSADMIN,
            NewPractice(
                hospital_id=h.id,
                name="P",
                office_number="4155550101",
                admin=AdminInvitee(email="taken@example.org", first_name="T", last_name="U"),
            ),
        )
    assert await count(world, organisations) == before[0]


async def test_update_organisation(world: World) -> None:
    org = await world.hospital()
    settings = OrganisationSettings(
        default_time_zone="US/Pacific",
        whole_org_messaging=True,
        high_priority_sound_seconds=5,
        message_expiration=MessageExpiration.WEEKS_2,
        retention_value=2,
        retention_unit=RetentionUnit.YEARS,
        pin_length=6,
    )
    updated = await world.directory.organisations.update(
        world.admin_of(org), org.id, OrganisationUpdate(name="Abelard MC", settings=settings)
    )
    assert updated.name == "Abelard MC" and updated.settings == settings
    assert (await world.directory.organisations.get(SYSADMIN, org.id)).settings == settings
    assert (
        MessageExpiration.WEEKS_2.label == "2 Weeks"
        and MessageExpiration.MINUTES_30.duration.total_seconds() == 1800
    )
    for bad, field in (
        (OrganisationSettings(high_priority_sound_seconds=7), "high_priority_sound_seconds"),
        (OrganisationSettings(pin_length=5), "pin_length"),
        (OrganisationSettings(default_time_zone="Nowhere/City"), "default_time_zone"),
        (OrganisationSettings(retention_value=3), "retention_value"),
        (
            OrganisationSettings(retention_value=11, retention_unit=RetentionUnit.YEARS),
            "retention_value",
        ),
        (
            OrganisationSettings(retention_value=0, retention_unit=RetentionUnit.DAYS),
            "retention_value",
        ),
    ):
        with pytest.raises(InvalidFieldError) as refused:
            await world.directory.organisations.update(
                SYSADMIN, org.id, OrganisationUpdate(settings=bad)
            )
        assert refused.value.field == field
    with pytest.raises(InvalidFieldError):
        await world.directory.organisations.update(SYSADMIN, org.id, OrganisationUpdate(name=" "))
    with pytest.raises(ReadOnlyError):
        await world.directory.organisations.update(AUDITOR, org.id, OrganisationUpdate(name="X"))
    entries, _ = await world.audit.store.entries(action="directory.organisation.update")
    assert entries[0].event.details["after"]["name"] == "Abelard MC"  # type: ignore[index]


async def test_members_and_their_status(world: World) -> None:
    org = await world.hospital()
    for i, last in enumerate(["Carter", "Adams", "Baker"]):
        await world.user(org, f"u{i}@example.org", login=f"u{i}", last_name=last)
    await world.datasets.upsert("USERS", {"login": "u1", "presence_show": "dnd"})
    await world.datasets.upsert("USERS", {"login": "u2", "presence_show": "chat"})
    page = await world.directory.organisations.members(SYSADMIN, org.id, PageRequest(limit=2))
    assert page.total == 3
    assert [(m.user.profile.last_name, m.status) for m in page.items] == [
        ("Adams", MemberStatus.BUSY),
        ("Baker", MemberStatus.AVAILABLE),
    ]
    page = await world.directory.organisations.members(
        SYSADMIN, org.id, PageRequest(offset=2, limit=2)
    )
    assert [(m.user.login, m.status) for m in page.items] == [("u0", MemberStatus.NONE)]


async def test_visibility(world: World) -> None:
    a = await world.hospital("A Hospital")
    b = await world.hospital("B Hospital")
    assert [o.id for o in await world.directory.organisations.list_visible(SYSADMIN)] == [
        a.id,
        b.id,
    ]
    assert [o.id for o in await world.directory.organisations.list_visible(world.admin_of(a))] == [
        a.id
    ]
    with pytest.raises(UnknownOrganisationError):
        await world.directory.organisations.get(world.admin_of(a), b.id)
    found = await world.directory.organisations.search(world.admin_of(a), "hosp")
    assert [r.name for r in found] == ["B Hospital"]  # names only, own excluded
    assert (await world.directory.organisations.ref(b.id)).name == "B Hospital"
