"""Invite Users: typed lists and CSV files, statuses, resend, delete, the Invitations page."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from carewire.directory.model import (
    CsvError,
    CsvProblem,
    InvalidEmailError,
    InvalidFieldError,
    InvitationFilter,
    InvitationSortKey,
    InvitationStatus,
    InviteRequest,
    LinkGoneError,
    PageRequest,
    ReadOnlyError,
    UnknownInvitationError,
    UnknownOrganisationError,
)
from carewire.storage.tables_directory import directory_groups, invitations
from tests.directory.world import AUDITOR, SYSADMIN, World


async def rows(world: World) -> int:
    async with world.db.read("count") as conn:
        return int((await conn.execute(select(func.count()).select_from(invitations))).scalar_one())


async def test_a_typed_list_is_mailed_and_marked_email_sent(world: World) -> None:
    org = await world.hospital()
    result = await world.directory.invitations.invite(
        world.admin_of(org),
        org.id,
        InviteRequest(emails="a@example.org\nB@Example.org, c@example.org"),
    )
    assert [i.email for i in result.invited] == ["a@example.org", "b@example.org", "c@example.org"]
    assert {i.status for i in result.invited} == {InvitationStatus.EMAIL_SENT}
    mail = world.last_mail("b@example.org")
    assert mail.subject == "You're invited to join Abelard Medical Center on Carewire"
    assert "https://example.test:8443/register/" in mail.body
    assert "This link will expire on Monday, Mar 16 2026 at 5:00 AM EDT." in mail.body
    entries, _ = await world.audit.store.entries(action="directory.invitation.create")
    assert entries[0].event.details["invited"] == 3


async def test_one_malformed_typed_address_aborts_everything(world: World) -> None:
    org = await world.hospital()
    before, sent = await rows(world), len(world.mailer.sent)
    with pytest.raises(InvalidEmailError) as refused:
        await world.directory.invitations.invite(
            SYSADMIN,
            org.id,
            InviteRequest(
                emails="ok@example.org bad@@example.org", csv_text="Email\nx@example.org\n"
            ),
        )
    assert (
        str(refused.value) == "Invalid email address: bad@@example.org. No invitations were sent."
    )
    assert await rows(world) == before and len(world.mailer.sent) == sent


async def test_csv_rows_go_in_bad_rows_are_reported(world: World) -> None:
    org = await world.hospital()
    csv = (
        "Email,First Name,Last Name,Department\n"
        "jdoe@example.org,Jane,Doe,Cardiology\n"
        "broken,X,Y,ICU\n"
        ",,,Physical Therapy\n"
        "JDOE@example.org,,,\n"
    )
    result = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="jdoe@example.org", csv_text=csv)
    )
    assert [i.email for i in result.invited] == ["jdoe@example.org"]
    assert result.invited[0].first_name == "Jane" and result.invited[0].department == "Cardiology"
    assert result.duplicates == ("jdoe@example.org", "jdoe@example.org")
    assert result.problems == (CsvProblem(line=3, message="Invalid email address: broken"),)
    assert sorted(result.groups_created) == ["Cardiology", "Physical Therapy"]  # not ICU
    groups = await world.directory.groups.list_for(SYSADMIN, org.id)
    assert sorted(g.name for g in groups) == ["Cardiology", "Physical Therapy"]
    again = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(csv_text="Department\ncardiology\n")
    )
    assert again.groups_created == ()  # existing names are reused


async def test_existing_users_are_skipped_and_pending_invitations_resent(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "member@example.org")
    first = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="p@example.org")
    )
    old_token = world.link_token("p@example.org")
    world.clock.advance(60)
    result = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="member@example.org p@example.org")
    )
    assert result.existing_users == ("member@example.org",)
    assert result.invited == ()
    assert [i.id for i in result.resent] == [first.invited[0].id]
    assert world.link_token("p@example.org") != old_token
    with pytest.raises(LinkGoneError):
        await world.directory.registration.info(old_token)
    page = await world.directory.invitations.find(SYSADMIN, org.id, InvitationFilter(email="p@"))
    assert page.total == 1


async def test_a_refused_mail_is_a_failure_and_can_be_resent(world: World) -> None:
    org = await world.hospital()
    world.mailer.refuse.add("nobody@example.org")
    result = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="nobody@example.org")
    )
    (inv,) = result.invited
    assert inv.status is InvitationStatus.FAILURE
    world.mailer.refuse.clear()
    done = await world.directory.invitations.resend(SYSADMIN, org.id, [inv.id, 999])
    assert done.done == (inv.id,) and done.skipped == (999,)
    assert (
        await world.directory.invitations.get(SYSADMIN, inv.id)
    ).status is InvitationStatus.EMAIL_SENT


async def test_resend_skips_registered_and_delete_hides(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "reg@example.org")
    result = await world.directory.invitations.invite(
        SYSADMIN, org.id, InviteRequest(emails="p@example.org")
    )
    page = await world.directory.invitations.find(SYSADMIN, org.id)
    registered = next(i for i in page.items if i.status is InvitationStatus.REGISTERED)
    pending = result.invited[0]
    outcome = await world.directory.invitations.resend(
        SYSADMIN, org.id, [registered.id, pending.id]
    )
    assert outcome.done == (pending.id,) and outcome.skipped == (registered.id,)
    token = world.link_token("p@example.org")
    deleted = await world.directory.invitations.delete(
        SYSADMIN, org.id, [registered.id, pending.id]
    )
    assert set(deleted.done) == {registered.id, pending.id}
    left = (await world.directory.invitations.find(SYSADMIN, org.id)).items
    assert [i.email for i in left] == ["admin@abelardmedicalcenter.org"]
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.registration.info(token)
    assert gone.value.reason == "deleted"
    with pytest.raises(UnknownInvitationError):
        await world.directory.invitations.get(SYSADMIN, pending.id)
    assert (await world.directory.users.get(SYSADMIN, "reg")).is_registered  # user unaffected


async def test_the_invitations_page_filters_sorts_and_pages(world: World) -> None:
    org = await world.hospital()
    csv = "Email,First Name,Last Name\n" + "".join(
        f"user{i}@example.org,First{i},{'Stafford' if i % 2 else 'Master'}{i}\n" for i in range(30)
    )
    await world.directory.invitations.invite(SYSADMIN, org.id, InviteRequest(csv_text=csv))
    find = world.directory.invitations.find
    page = await find(SYSADMIN, org.id, InvitationFilter(last_name="AST"))
    assert page.total == 15  # "Master…", not "Stafford…", case-insensitively
    page = await find(
        SYSADMIN,
        org.id,
        InvitationFilter(last_name="staff", sort=InvitationSortKey.EMAIL, is_descending=False),
        PageRequest(offset=5, limit=5),
    )
    assert page.total == 15 and [i.email for i in page.items][:1] == ["user1@example.org"]
    page = await find(SYSADMIN, org.id, InvitationFilter(status=InvitationStatus.FAILURE))
    assert page.total == 0
    page = await find(SYSADMIN, org.id, InvitationFilter(email="USER2"), PageRequest(limit=50))
    assert {i.email for i in page.items} == {"user2@example.org"} | {
        f"user2{i}@example.org" for i in range(10)
    }
    with pytest.raises(InvalidFieldError):
        await find(SYSADMIN, org.id, page=PageRequest(limit=0))


async def test_nothing_to_invite_and_unreadable_csv(world: World) -> None:
    org = await world.hospital()
    with pytest.raises(InvalidFieldError):
        await world.directory.invitations.invite(SYSADMIN, org.id, InviteRequest(emails="  "))
    with pytest.raises(CsvError):
        await world.directory.invitations.invite(
            SYSADMIN, org.id, InviteRequest(csv_text="a@example.org\n")
        )
    with pytest.raises(InvalidFieldError, match="1,000"):
        await world.directory.invitations.invite(
            SYSADMIN, org.id, InviteRequest(emails=" ".join(f"u{i}@x.org" for i in range(1001)))
        )


async def test_scoping(world: World) -> None:
    a = await world.hospital("A Hospital")
    b = await world.hospital("B Hospital")
    result = await world.directory.invitations.invite(
        SYSADMIN, b.id, InviteRequest(emails="b1@example.org")
    )
    admin_a = world.admin_of(a)
    with pytest.raises(UnknownOrganisationError):
        await world.directory.invitations.invite(
            admin_a, b.id, InviteRequest(emails="x@example.org")
        )
    with pytest.raises(UnknownOrganisationError):
        await world.directory.invitations.find(admin_a, b.id)
    with pytest.raises(UnknownInvitationError):
        await world.directory.invitations.get(admin_a, result.invited[0].id)
    # An invitation of B named through A's page is skipped, not deleted.
    outcome = await world.directory.invitations.delete(admin_a, a.id, [result.invited[0].id])
    assert outcome.done == () and outcome.skipped == (result.invited[0].id,)
    with pytest.raises(ReadOnlyError):
        await world.directory.invitations.invite(
            AUDITOR, a.id, InviteRequest(emails="x@example.org")
        )
    assert (await world.directory.invitations.find(AUDITOR, b.id)).total == 2


async def test_large_imports_are_mailed_in_the_background(world: World) -> None:
    org = await world.hospital()
    csv = "Email,Department\n" + "".join(f"n{i}@example.org,Unit {i % 7}\n" for i in range(250))
    result = await world.directory.invitations.invite(SYSADMIN, org.id, InviteRequest(csv_text=csv))
    assert len(result.invited) == 250 and len(result.groups_created) == 7
    assert {i.status for i in result.invited} == {InvitationStatus.PENDING}
    await world.directory.drain()
    page = await world.directory.invitations.find(
        SYSADMIN,
        org.id,
        InvitationFilter(status=InvitationStatus.EMAIL_SENT),
        PageRequest(limit=500),
    )
    assert page.total == 251
    async with world.db.read("groups") as conn:
        assert (
            await conn.execute(select(func.count()).select_from(directory_groups))
        ).scalar_one() == 7
