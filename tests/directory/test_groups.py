"""Groups: names, members, deletion (permissions fall back to None), CSV import, notifications."""

from __future__ import annotations

import pytest

from carewire.directory.model import (
    CsvError,
    CsvProblem,
    GroupDeleted,
    InvalidFieldError,
    MembershipChanged,
    NameTakenError,
    Permission,
    PermissionMode,
    ReadOnlyError,
    UnknownGroupError,
    UnknownUserError,
)
from tests.directory.world import AUDITOR, SYSADMIN, World


async def test_names_slugs_and_renames(world: World) -> None:
    a = await world.hospital("A Hospital")
    b = await world.hospital("B Hospital")
    pt = await world.directory.groups.create(world.admin_of(a), a.id, "  Physical   Therapy ")
    assert (pt.name, pt.slug) == ("Physical Therapy", "physical-therapy")
    with pytest.raises(NameTakenError):
        await world.directory.groups.create(SYSADMIN, a.id, "physical therapy")
    other = await world.directory.groups.create(SYSADMIN, b.id, "Physical Therapy")
    assert other.slug == "physical-therapy-2"
    renamed = await world.directory.groups.update(
        SYSADMIN, pt.id, name="PT", whole_group_messaging=True
    )
    assert (renamed.name, renamed.slug, renamed.whole_group_messaging) == (
        "PT",
        "physical-therapy",
        True,
    )
    assert world.directory.index.group_by_slug("physical-therapy").name == "PT"  # type: ignore[union-attr]
    for bad in ("", "x" * 65, "bell\x07"):
        with pytest.raises(InvalidFieldError):
            await world.directory.groups.create(SYSADMIN, a.id, bad)
    await world.directory.groups.update(SYSADMIN, pt.id, name="pt")  # its own name, other case
    await world.directory.groups.create(SYSADMIN, a.id, "Oncology")
    with pytest.raises(NameTakenError):
        await world.directory.groups.update(SYSADMIN, pt.id, name="ONCOLOGY")
    assert [
        g.name for g in await world.directory.groups.list_for(SYSADMIN, a.id, name_contains="P")
    ] == ["pt"]


async def test_members(world: World) -> None:
    org = await world.hospital()
    for login in ("ann", "bob"):
        await world.user(org, f"{login}@example.org", login=login)
    icu = await world.directory.groups.create(SYSADMIN, org.id, "ICU")
    world.events.clear()
    group = await world.directory.groups.add_members(SYSADMIN, icu.id, ["ann", "BOB", "ann"])
    assert group.member_count == 2
    assert world.events == [
        MembershipChanged(group_id=icu.id, organisation_id=org.id, added=("ann", "bob"))
    ]
    assert world.directory.index.members_of(icu.id) == {"ann", "bob"}
    again = await world.directory.groups.add_members(SYSADMIN, icu.id, ["ann"])
    assert again.member_count == 2
    group = await world.directory.groups.remove_members(SYSADMIN, icu.id, ["bob", "nobody"])
    assert group.member_count == 1 and world.directory.index.groups_of("bob") == frozenset()
    other = await world.hospital("Other")
    await world.user(other, "zed@example.org", login="zed")
    with pytest.raises(UnknownUserError):
        await world.directory.groups.add_members(SYSADMIN, icu.id, ["zed"])
    with pytest.raises(UnknownGroupError):
        await world.directory.groups.add_members(world.admin_of(other), icu.id, ["zed"])
    with pytest.raises(ReadOnlyError):
        await world.directory.groups.remove_members(AUDITOR, icu.id, ["ann"])


async def test_deleting_a_permission_group_allows_no_one(world: World) -> None:
    h = await world.hospital("H Hospital")
    p = await world.practice(h, "P Practice")
    icu = await world.directory.groups.create(SYSADMIN, h.id, "ICU")
    await world.user(h, "nurse@example.org", login="nurse")
    await world.user(p, "doc@example.org", login="doc")
    await world.directory.groups.add_members(SYSADMIN, icu.id, ["nurse"])
    await world.directory.affiliations.set_permission(
        SYSADMIN, h.id, p.id, Permission(mode=PermissionMode.GROUPS, groups=frozenset({icu.id}))
    )
    assert world.directory.may_message("nurse", "doc")
    await world.directory.groups.delete(SYSADMIN, icu.id)
    assert not world.directory.may_message("nurse", "doc")
    (view,) = [v for v in await world.directory.affiliations.list_for(SYSADMIN, h.id)]
    assert view.permission.mode is PermissionMode.NONE  # never everyone
    assert (
        GroupDeleted(group_id=icu.id, organisation_id=h.id, name="ICU", members=("nurse",))
        in world.events
    )
    with pytest.raises(UnknownGroupError):
        await world.directory.groups.get(SYSADMIN, icu.id)


async def test_csv_import(world: World) -> None:
    org = await world.hospital()
    await world.user(org, "ann@example.org", login="ann")
    await world.directory.groups.create(SYSADMIN, org.id, "Cardiology")
    csv = (
        "Department,Email\n"
        "cardiology,ann@example.org\n"
        "Oncology,\n"
        "Oncology,stranger@example.org\n"
        ",ann@example.org\n"
    )
    result = await world.directory.groups.import_csv(SYSADMIN, org.id, csv)
    assert result.created == ("Oncology",) and result.existing == ("Cardiology",)
    assert result.members_added == 1
    assert result.problems == (
        CsvProblem(line=4, message="stranger@example.org is not a user of this organisation."),
        CsvProblem(line=5, message="Department is empty."),
    )
    with pytest.raises(CsvError):
        await world.directory.groups.import_csv(SYSADMIN, org.id, "Email\nann@example.org\n")
