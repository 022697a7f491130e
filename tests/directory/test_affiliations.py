"""Affiliations: invitations and their mail, accept/decline, permissions, delete, communities."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from carewire.directory.model import (
    AcceptChoice,
    AffiliationConflictError,
    AffiliationStatus,
    CommunityError,
    GroupId,
    InvalidFieldError,
    LinkGoneError,
    Organisation,
    Permission,
    PermissionMode,
    PolicyChanged,
    ReadOnlyError,
    UnknownAffiliationError,
    UnknownGroupError,
)
from tests.directory.world import AUDITOR, SYSADMIN, World

EXPECTED = """\
Ada Admin with A Hospital has invited your organization to join their Carewire network. \
This will allow all their users to communicate with your organization.

If you are one of your organization's Carewire administrators, click here to accept or navigate \
a web browser to:

https://example.test:8443/s/org/0/associations/{id}/invite?token={token}

This link will expire on Monday, Mar 9 2026 at 5:00 AM EDT.

If your organization uses Carewire but you are not an administrator, please forward this \
e-mail to one of your organization's Carewire administrators.
"""


async def two(world: World) -> tuple[Organisation, Organisation]:
    a = await world.hospital("A Hospital", admin="ada@a.org")
    await world.register("ada@a.org", login="ada", first_name="Ada", last_name="Admin")
    b = await world.hospital("B Hospital", admin="bea@b.org")
    await world.register("bea@b.org", login="bea")
    return a, b


def token_of(body: str) -> tuple[int, str]:
    found = re.search(r"associations/(\d+)/invite\?token=([A-Za-z0-9_-]+)", body)
    assert found
    return int(found.group(1)), found.group(2)


async def test_invite_mail_accept_for_everyone(world: World) -> None:
    a, b = await two(world)
    admin_a = replace(world.admin_of(a), actor="console:ada@a.org")  # Ada signed in
    aff = await world.directory.affiliations.invite(admin_a, a.id, b.id)
    mail = world.last_mail("bea@b.org")
    assert mail.subject == "Invitation to join A Hospital's Carewire network"
    aff_id, token = token_of(mail.body)
    assert aff_id == aff.id and len(token) == 22
    assert mail.body == EXPECTED.format(id=aff.id, token=token)
    views = await world.directory.affiliations.list_for(world.admin_of(b), b.id)
    assert views[0].is_incoming and views[0].label == "A Hospital (pending)"
    await world.user(a, "nurse@a.org", login="nurse")
    await world.user(b, "doc@b.org", login="doc")
    assert not world.directory.may_message("nurse", "doc")
    link = await world.directory.affiliations.link(world.admin_of(b), aff.id, token)
    assert link.inviter.name == "A Hospital"
    with pytest.raises(UnknownAffiliationError):  # the inviter cannot accept for B
        await world.directory.affiliations.accept(admin_a, aff.id, token, AcceptChoice())
    accepted, group = await world.directory.affiliations.accept(
        world.admin_of(b), aff.id, token, AcceptChoice()
    )
    assert accepted.status is AffiliationStatus.ACTIVE and group is None
    assert world.directory.may_message("nurse", "doc") and world.directory.may_message(
        "doc", "nurse"
    )
    assert PolicyChanged() in world.events
    with pytest.raises(LinkGoneError):
        await world.directory.affiliations.accept(world.admin_of(b), aff.id, token, AcceptChoice())
    with pytest.raises(AffiliationConflictError):
        await world.directory.affiliations.invite(SYSADMIN, b.id, a.id)


async def test_accept_for_a_new_group_then_permissions(world: World) -> None:
    a, b = await two(world)
    await world.user(a, "nurse@a.org", login="nurse")
    await world.user(b, "doc@b.org", login="doc")
    await world.user(b, "tech@b.org", login="tech")
    aff = await world.directory.affiliations.invite(SYSADMIN, a.id, b.id)
    _, token = token_of(world.last_mail("bea@b.org").body)
    admin_b = world.admin_of(b)
    with pytest.raises(InvalidFieldError):
        await world.directory.affiliations.accept(
            admin_b, aff.id, token, AcceptChoice(new_group_name="x" * 65)
        )
    with pytest.raises(UnknownGroupError):
        await world.directory.affiliations.accept(
            admin_b, aff.id, token, AcceptChoice(group_id=GroupId(999))
        )
    accepted, group = await world.directory.affiliations.accept(
        admin_b, aff.id, token, AcceptChoice(new_group_name="Referrals")
    )
    assert group is not None and group.member_count == 0
    assert accepted.permission_of(b.id).mode is PermissionMode.GROUPS
    assert not world.directory.may_message("nurse", "doc")
    await world.directory.groups.add_members(admin_b, group.id, ["doc"])
    assert world.directory.may_message("nurse", "doc") and not world.directory.may_message(
        "nurse", "tech"
    )
    # A's side: None ("temporarily ended").
    view = await world.directory.affiliations.set_permission(
        world.admin_of(a), a.id, b.id, Permission(mode=PermissionMode.NONE)
    )
    assert view.permission.mode is PermissionMode.NONE
    assert not world.directory.may_message("nurse", "doc")
    assert (
        world.directory.index.refusal("nurse", "doc") == "You may not message users of B Hospital"
    )
    await world.directory.affiliations.set_permission(SYSADMIN, a.id, b.id, Permission())
    assert world.directory.may_message("doc", "nurse")
    with pytest.raises(InvalidFieldError):
        await world.directory.affiliations.set_permission(
            SYSADMIN, a.id, b.id, Permission(mode=PermissionMode.GROUPS)
        )
    with pytest.raises(UnknownGroupError):  # B's group is not A's to choose
        await world.directory.affiliations.set_permission(
            SYSADMIN,
            a.id,
            b.id,
            Permission(mode=PermissionMode.GROUPS, groups=frozenset({group.id})),
        )
    with pytest.raises(ReadOnlyError):
        await world.directory.affiliations.set_permission(AUDITOR, a.id, b.id, Permission())
    await world.directory.affiliations.delete(world.admin_of(b), b.id, a.id)
    assert not world.directory.may_message("nurse", "doc")
    assert await world.directory.affiliations.list_for(SYSADMIN, a.id) == []
    with pytest.raises(UnknownAffiliationError):
        await world.directory.affiliations.delete(SYSADMIN, a.id, b.id)


async def test_replaced_declined_expired_and_refused_invitations(world: World) -> None:
    a, b = await two(world)
    with pytest.raises(AffiliationConflictError):
        await world.directory.affiliations.invite(SYSADMIN, a.id, a.id)
    first = await world.directory.affiliations.invite(SYSADMIN, a.id, b.id)
    _, old = token_of(world.last_mail("bea@b.org").body)
    second = await world.directory.affiliations.invite(SYSADMIN, b.id, a.id)
    with pytest.raises(LinkGoneError):
        await world.directory.affiliations.link(SYSADMIN, first.id, old)
    _, new = token_of(world.last_mail("ada@a.org").body)
    declined = await world.directory.affiliations.decline(world.admin_of(a), second.id, new)
    assert declined.status is AffiliationStatus.DECLINED
    with pytest.raises(LinkGoneError):
        await world.directory.affiliations.accept(SYSADMIN, second.id, new, AcceptChoice())
    third = await world.directory.affiliations.invite(SYSADMIN, a.id, b.id)
    _, late = token_of(world.last_mail("bea@b.org").body)
    world.clock.advance(7 * 86400 + 1)
    with pytest.raises(LinkGoneError) as gone:
        await world.directory.affiliations.accept(SYSADMIN, third.id, late, AcceptChoice())
    assert gone.value.reason == "expired"
    with pytest.raises(UnknownAffiliationError):  # a third organisation's admin
        c = await world.hospital("C Hospital")
        await world.directory.affiliations.link(world.admin_of(c), third.id, late)


async def test_communities(world: World) -> None:
    h = await world.hospital("H Hospital")
    p1 = await world.practice(h, "P One")
    p2 = await world.practice(h, "P Two")
    c = await world.hospital("C Hospital")
    for org, login in ((p1, "one"), (p2, "two"), (c, "cee")):
        await world.user(org, f"{login}@example.org", login=login)
    assert world.directory.may_message("one", "two")  # H's community
    assert not world.directory.may_message("one", "cee")
    community = await world.directory.affiliations.add_community_member(SYSADMIN, h.id, c.id)
    assert [m.name for m in community.members] == ["H Hospital", "C Hospital", "P One", "P Two"]
    assert world.directory.may_message("one", "cee")
    with pytest.raises(CommunityError, match="never other communities"):
        await world.directory.affiliations.add_community_member(SYSADMIN, p1.id, c.id)
    with pytest.raises(CommunityError):
        await world.directory.affiliations.add_community_member(SYSADMIN, h.id, h.id)
    with pytest.raises(AffiliationConflictError):
        await world.directory.affiliations.add_community_member(SYSADMIN, h.id, p1.id)
    with pytest.raises(ReadOnlyError):
        await world.directory.affiliations.add_community_member(world.admin_of(h), h.id, c.id)
    mine = await world.directory.affiliations.communities(world.admin_of(p1))
    assert [x.hospital.name for x in mine] == ["H Hospital"]
    everyone = await world.directory.affiliations.communities(SYSADMIN)
    assert [x.hospital.name for x in everyone] == ["C Hospital", "H Hospital"]
