"""The in-memory index: lookups, incremental changes, and reloading what another process changed."""

from __future__ import annotations

from carewire.directory.index import DirectoryIndex, IndexedGroup, Snapshot
from carewire.directory.model import (
    GroupId,
    InviteRequest,
    MembershipChanged,
    OrganisationId,
    OrgKind,
    Permission,
    PermissionMode,
    PolicyChanged,
    UserChanged,
    UserDeleted,
)
from carewire.directory.policy import Link, OrgGraph
from tests.directory.world import SYSADMIN, World, open_world

A, B = OrganisationId(1), OrganisationId(2)
ICU = GroupId(10)


def snapshot() -> Snapshot:
    link = Link(permissions={A: Permission(mode=PermissionMode.GROUPS, groups=frozenset({ICU}))})
    return Snapshot(
        users={"ann": A, "bob": A, "cat": B},
        names={"ann": "Ann A", "bob": "Bob B", "cat": "Cat C"},
        groups=[IndexedGroup(id=ICU, organisation_id=A, name="ICU", slug="icu")],
        members={ICU: ["ann"]},
        graph=OrgGraph(
            kinds={A: OrgKind.HOSPITAL, B: OrgKind.PRACTICE}, links={frozenset((A, B)): link}
        ),
        org_names={A: "A Hospital", B: "B Practice"},
        wipe_pending=["bob/phone"],
    )


def test_lookups_and_changes() -> None:
    index = DirectoryIndex()
    index.replace(snapshot())
    assert index.may_message("ann", "cat") and not index.may_message("bob", "cat")
    assert index.refusal("bob", "cat") == "You may not message users of B Practice"
    assert index.refusal("ann", "cat") is None
    assert index.may_message("bob", "system-bot") and index.may_message("legacy", "cat")
    assert index.group_by_slug("icu") == IndexedGroup(
        id=ICU, organisation_id=A, name="ICU", slug="icu"
    )
    assert index.is_wipe_pending("bob/phone") and not index.is_wipe_pending("ann/phone")
    index.add_members(ICU, ["bob"])
    assert index.may_message("bob", "cat") and index.members_of(ICU) == {"ann", "bob"}
    index.remove_user("bob")
    assert index.members_of(ICU) == {"ann"} and not index.has_profile("bob")
    index.set_group(IndexedGroup(id=ICU, organisation_id=A, name="Intensive Care", slug="icu"))
    assert index.members_of(ICU) == {"ann"} and index.group(ICU).name == "Intensive Care"  # type: ignore[union-attr]
    index.remove_group(ICU)
    assert index.groups_of("ann") == frozenset() and index.group_by_slug("icu") is None
    assert not index.may_message("ann", "cat")
    assert index.users_of(A) == {"ann"} and index.name_of("cat") == "Cat C"


async def test_reload_announces_what_another_process_changed(world: World, db_url: str) -> None:
    org = await world.hospital()
    await world.user(org, "ann@example.org", login="ann")
    await world.user(org, "bob@example.org", login="bob")
    other = await open_world(db_url)  # the CLI, in another process
    try:
        icu = await other.directory.groups.create(SYSADMIN, org.id, "ICU")
        await other.directory.groups.add_members(SYSADMIN, icu.id, ["ann"])
        await other.directory.users.delete(SYSADMIN, "bob")
        second = await other.hospital("Second Hospital")
        await other.directory.invitations.invite(
            SYSADMIN, second.id, InviteRequest(emails="cy@x.org")
        )
        await other.register("cy@x.org", login="cy")
    finally:
        await other.directory.close()
        await other.db.close()
    assert (
        world.directory.index.has_profile("bob")
        and world.directory.index.groups_of("ann") == frozenset()
    )
    world.events.clear()
    await world.directory.reload()
    index = world.directory.index
    assert not index.has_profile("bob") and index.groups_of("ann") == {icu.id}
    assert index.organisation_of("cy") == second.id
    assert UserDeleted(login="bob", organisation_id=org.id) in world.events
    assert UserChanged(login="cy", organisation_id=second.id) in world.events
    assert (
        MembershipChanged(group_id=icu.id, organisation_id=org.id, added=("ann",)) in world.events
    )
    assert PolicyChanged() in world.events
    world.events.clear()
    await world.directory.reload()
    assert world.events == []  # nothing changed since
