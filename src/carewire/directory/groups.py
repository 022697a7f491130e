"""Groups of an organisation's users: create, rename, members, delete, CSV import.

A group's address is ``<slug>@groups.DOMAIN``; its slug is made from the
name when the group is created (``cardiology``, then ``cardiology-2`` when
another organisation has one) and stays when it is renamed. Deleting a group
that an affiliation used as permission makes that side allow no one (never
everyone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from carewire.directory import fields
from carewire.directory.context import Context, Facet
from carewire.directory.csvfiles import CsvKind, parse_csv
from carewire.directory.index import IndexedGroup
from carewire.directory.model import (
    NO_ONE,
    Caller,
    CsvProblem,
    DirectoryUser,
    Group,
    GroupDeleted,
    GroupId,
    GroupImportResult,
    MembershipChanged,
    OrganisationId,
    PolicyChanged,
    UnknownGroupError,
    UnknownUserError,
)
from carewire.directory.policy import slugify

log = logging.getLogger(__name__)


def indexed(group: Group) -> IndexedGroup:
    """What the index keeps of a group."""
    return IndexedGroup(
        id=group.id,
        organisation_id=group.organisation_id,
        name=group.name,
        slug=group.slug,
        whole_group_messaging=group.whole_group_messaging,
    )


async def free_slug(ctx: Context, name: str) -> str:
    """A slug for ``name`` that no group has (``name``, ``name-2``, …)."""
    base = slugify(name)
    n = 1
    while True:
        candidates = [base] + [f"{base[:56]}-{i}" for i in range(n + 1, n + 20)]
        taken = await ctx.store.groups.taken_slugs(candidates)
        for slug in candidates:
            if slug not in taken:
                return slug
        n += 19


async def add_group(
    ctx: Context, organisation_id: OrganisationId, name: str, *, wgm: bool, at: datetime
) -> Group:
    """Insert a group with a free slug (inside the caller's transaction, if any)."""
    group = Group(
        id=GroupId(0),
        organisation_id=organisation_id,
        name=name,
        slug=await free_slug(ctx, name),
        whole_group_messaging=wgm,
        created_at=at,
        updated_at=at,
    )
    return await ctx.store.groups.add(group)


async def ensure_groups(
    ctx: Context, organisation_id: OrganisationId, names: Iterable[str], at: datetime
) -> tuple[dict[str, Group], list[Group]]:
    """The organisation's groups of these names (lower-case keys), creating missing ones.

    Returns:
        Every group by lower-case name, and the groups created.
    """
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name.lower(), name)
    found = await ctx.store.groups.by_names(organisation_id, wanted)
    created = []
    for key, name in wanted.items():
        if key not in found:
            group = await add_group(ctx, organisation_id, name, wgm=False, at=at)
            found[key] = group
            created.append(group)
    return found, created


class Groups(Facet):
    """Groups (``DirectoryService.groups``)."""

    async def _group(self, caller: Caller, group_id: int) -> Group:
        group = await self._ctx.store.groups.get(group_id)
        if group is None or not caller.sees(group.organisation_id):
            raise UnknownGroupError(f"no group {group_id}")
        return group

    async def list_for(
        self, caller: Caller, organisation_id: int, *, name_contains: str = ""
    ) -> list[Group]:
        """Sub groups: the organisation's groups whose name contains the text, by name.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        org = await self._ctx.organisation(caller, organisation_id)
        return await self._ctx.store.groups.list_for(org.id, name_contains)

    async def get(self, caller: Caller, group_id: int) -> Group:
        """One group.

        Raises:
            UnknownGroupError: No such group for the caller.
        """
        return await self._group(caller, group_id)

    async def create(
        self,
        caller: Caller,
        organisation_id: int,
        name: str,
        *,
        whole_group_messaging: bool = False,
    ) -> Group:
        """Create Group.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            InvalidFieldError: The name is empty, too long or has control characters.
            NameTakenError: The organisation has a group of that name (case-insensitive).
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        name = fields.group_name(name)
        async with ctx.store.db.transaction("create_group"):
            group = await add_group(
                ctx, org.id, name, wgm=whole_group_messaging, at=ctx.clock.now()
            )
            await ctx.record(
                caller,
                "group.create",
                f"group:{group.id}",
                organisation=org.id,
                after={"name": name, "whole_group_messaging": whole_group_messaging},
            )
        ctx.index.set_group(indexed(group))
        return group

    async def update(
        self,
        caller: Caller,
        group_id: int,
        *,
        name: str | None = None,
        whole_group_messaging: bool | None = None,
    ) -> Group:
        """Update Group: rename, or change "Members can send messages to whole group".

        Raises:
            UnknownGroupError: No such group for the caller.
            ReadOnlyError: An auditor.
            InvalidFieldError: A bad name.
            NameTakenError: The new name is taken.
        """
        ctx = self._ctx
        before = await self._group(caller, group_id)
        ctx.check_write(caller)
        after = replace(
            before,
            name=before.name if name is None else fields.group_name(name),
            whole_group_messaging=before.whole_group_messaging
            if whole_group_messaging is None
            else whole_group_messaging,
            updated_at=ctx.clock.now(),
        )
        async with ctx.store.db.transaction("update_group"):
            await ctx.store.groups.update(after)
            await ctx.record(
                caller,
                "group.update",
                f"group:{group_id}",
                organisation=before.organisation_id,
                before={"name": before.name, "whole_group_messaging": before.whole_group_messaging},
                after={"name": after.name, "whole_group_messaging": after.whole_group_messaging},
            )
        ctx.index.set_group(indexed(after))
        if after.name != before.name:
            await ctx.notify(
                MembershipChanged(
                    group_id=after.id, organisation_id=after.organisation_id, is_renamed=True
                )
            )
        return after

    async def delete(self, caller: Caller, group_id: int) -> None:
        """Delete a group; affiliations that used it as permission fall back to None.

        Raises:
            UnknownGroupError: No such group for the caller.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        group = await self._group(caller, group_id)
        ctx.check_write(caller)
        async with ctx.store.db.transaction("delete_group"):
            members = await ctx.store.groups.member_logins(group.id)
            emptied = await ctx.store.groups.delete(group.id)
            for affiliation_id, organisation_id in emptied:
                await ctx.store.affiliations.set_permission(affiliation_id, organisation_id, NO_ONE)
            await ctx.record(
                caller,
                "group.delete",
                f"group:{group.id}",
                organisation=group.organisation_id,
                before={"name": group.name, "members": len(members)},
                permissions_now_none=[a for a, _ in emptied],
            )
        ctx.index.remove_group(group.id)
        await ctx.notify(
            GroupDeleted(
                group_id=group.id,
                organisation_id=group.organisation_id,
                name=group.name,
                members=tuple(members),
            )
        )
        if emptied:
            await self._refresh_graph()

    async def _refresh_graph(self) -> None:
        snapshot = await self._ctx.store.snapshot.snapshot()
        self._ctx.index.set_graph(snapshot.graph, snapshot.org_names)
        await self._ctx.notify(PolicyChanged())

    async def members(self, caller: Caller, group_id: int) -> list[DirectoryUser]:
        """Members (N): by last then first name (no photos).

        Raises:
            UnknownGroupError: No such group for the caller.
        """
        group = await self._group(caller, group_id)
        return await self._ctx.store.groups.members(group.id)

    async def add_members(self, caller: Caller, group_id: int, logins: Sequence[str]) -> Group:
        """Add users of the group's organisation (members already in it are left alone).

        Raises:
            UnknownGroupError: No such group for the caller.
            UnknownUserError: A login is not a user of the group's organisation.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        group = await self._group(caller, group_id)
        ctx.check_write(caller)
        wanted = sorted({login.strip().lower() for login in logins})
        for login in wanted:
            if ctx.index.organisation_of(login) != group.organisation_id:
                user = await ctx.store.users.get(login, with_photo=False)
                if user is None or user.organisation_id != group.organisation_id:
                    raise UnknownUserError(f"no directory user {login!r} in this organisation")
        async with ctx.store.db.transaction("add_group_members"):
            added = await ctx.store.groups.add_members(group.id, wanted)
            if added:
                await ctx.record(caller, "group.members.add", f"group:{group.id}", added=added)
        ctx.index.add_members(group.id, added)
        if added:
            await ctx.notify(
                MembershipChanged(
                    group_id=group.id, organisation_id=group.organisation_id, added=tuple(added)
                )
            )
        return await self._group(caller, group.id)

    async def remove_members(self, caller: Caller, group_id: int, logins: Sequence[str]) -> Group:
        """Remove Selected: the users leave the group, not the organisation.

        Raises:
            UnknownGroupError: No such group for the caller.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        group = await self._group(caller, group_id)
        ctx.check_write(caller)
        wanted = sorted({login.strip().lower() for login in logins})
        async with ctx.store.db.transaction("remove_group_members"):
            removed = await ctx.store.groups.remove_members(group.id, wanted)
            if removed:
                await ctx.record(
                    caller, "group.members.remove", f"group:{group.id}", removed=removed
                )
        ctx.index.remove_members(group.id, removed)
        if removed:
            await ctx.notify(
                MembershipChanged(
                    group_id=group.id,
                    organisation_id=group.organisation_id,
                    removed=tuple(removed),
                )
            )
        return await self._group(caller, group.id)

    async def import_csv(
        self, caller: Caller, organisation_id: int, csv_text: str
    ) -> GroupImportResult:
        """Create groups from a CSV's Department column (existing names are reused).

        A row whose Email is a user of the organisation also puts that user
        in the group. Bad rows are reported by line; good rows go in.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            CsvError: The file cannot be read at all (no header, no Department column, …).
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        rows, problems = parse_csv(csv_text, CsvKind.GROUPS)
        users = await ctx.store.users.by_emails([r.email for r in rows if r.email])
        problems = list(problems)
        wanted: dict[str, set[str]] = {}
        for row in rows:
            logins = wanted.setdefault(row.department.lower(), set())
            if not row.email:
                continue
            user = users.get(row.email)
            if user is None or user.organisation_id != org.id:
                problems.append(_no_user(row.line, row.email))
            else:
                logins.add(user.login)
        async with ctx.store.db.transaction("import_groups"):
            names = [r.department for r in rows]
            groups, created = await ensure_groups(ctx, org.id, names, ctx.clock.now())
            changes: list[tuple[Group, list[str]]] = []
            for key, logins in wanted.items():
                group = groups[key]
                added = await ctx.store.groups.add_members(group.id, sorted(logins))
                changes.append((group, added))
            await ctx.record(
                caller,
                "group.import",
                f"organisation:{org.id}",
                created=[g.name for g in created],
                members_added=sum(len(a) for _, a in changes),
                problems=len(problems),
            )
        for group in created:
            ctx.index.set_group(indexed(group))
        for group, added in changes:
            ctx.index.add_members(group.id, added)
            if added:
                await ctx.notify(
                    MembershipChanged(group_id=group.id, organisation_id=org.id, added=tuple(added))
                )
        created_keys = {g.name.lower() for g in created}
        return GroupImportResult(
            created=tuple(g.name for g in created),
            existing=tuple(sorted(g.name for k, g in groups.items() if k not in created_keys)),
            members_added=sum(len(a) for _, a in changes),
            problems=tuple(sorted(problems, key=lambda p: p.line)),
        )


def _no_user(line: int, email: str) -> CsvProblem:
    return CsvProblem(line=line, message=f"{email} is not a user of this organisation.")
