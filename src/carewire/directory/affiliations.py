"""Affiliations between organisations, their permissions, and the communities they make.

An administrator invites an existing organisation; every administrator of
the invited one gets the mail (its text is the seed's, docs/directory.md);
one of them accepts for all their users or for a group. Each side then sets
its own permission (None, the organisation, or groups). Delete ends the
affiliation on both sides. A hospital's community is the hospital and the
organisations actively affiliated with it (one level).
"""

from __future__ import annotations

import logging

from carewire.directory import fields
from carewire.directory.context import Facet
from carewire.directory.groups import add_group, indexed
from carewire.directory.mails import affiliation_invitation, expiry_text
from carewire.directory.model import (
    NOT_A_COMMUNITY,
    AcceptChoice,
    Affiliation,
    AffiliationConflictError,
    AffiliationId,
    AffiliationLink,
    AffiliationStatus,
    AffiliationView,
    Caller,
    Community,
    CommunityError,
    Group,
    InvalidFieldError,
    InvitationFilter,
    InvitationStatus,
    LinkGoneError,
    Organisation,
    OrganisationId,
    OrganisationRef,
    OrgKind,
    Permission,
    PermissionMode,
    PolicyChanged,
    UnknownAffiliationError,
    UnknownGroupError,
    UnknownOrganisationError,
)
from carewire.directory.store import NewAffiliation
from carewire.security.console_auth import digest

log = logging.getLogger(__name__)

#: Random bytes of an affiliation link's token: 128 bits, 22 URL-safe characters (the seed's).
AFFILIATION_TOKEN_BYTES = 16


def _ref(org: Organisation) -> OrganisationRef:
    return OrganisationRef(id=org.id, kind=org.kind, name=org.name)


def _permission_view(p: Permission) -> dict[str, object]:
    return {"mode": p.mode.value, "groups": sorted(p.groups)}


class Affiliations(Facet):
    """Affiliation invitations, permissions and communities (``DirectoryService.affiliations``)."""

    async def _other(self, organisation_id: int) -> Organisation:
        org = await self._ctx.store.organisations.get(organisation_id)
        if org is None:
            raise UnknownOrganisationError(f"no organisation {organisation_id}")
        return org

    async def _refresh(self) -> None:
        snapshot = await self._ctx.store.snapshot.snapshot()
        self._ctx.index.set_graph(snapshot.graph, snapshot.org_names)
        await self._ctx.notify(PolicyChanged())

    async def _inviter_name(self, caller: Caller) -> str:
        who = caller.actor.partition(":")[2] or caller.actor
        user = await self._ctx.store.users.get_by_email(who.lower()) if "@" in who else None
        if user is None:
            user = await self._ctx.store.users.get(who.lower(), with_photo=False)
        return user.profile.reference_name if user is not None else f"The {who} administrator"

    async def invite(self, caller: Caller, organisation_id: int, invitee_id: int) -> Affiliation:
        """Invite an existing organisation to communicate with ``organisation_id``.

        A pending invitation between the two (either direction) is replaced:
        its link stops working and a new mail goes to every administrator of
        the invitee (with a new link, valid ``affiliation_link_ttl``).

        Raises:
            UnknownOrganisationError: Either organisation is unknown to the caller.
            ReadOnlyError: An auditor.
            AffiliationConflictError: Self-invitation, or the two are already affiliated.
        """
        ctx = self._ctx
        inviter = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        invitee = await self._other(invitee_id)
        if invitee.id == inviter.id:
            raise AffiliationConflictError("An organisation cannot invite itself.")
        existing = await ctx.store.affiliations.between(inviter.id, invitee.id)
        if any(a.status is AffiliationStatus.ACTIVE for a in existing):
            raise AffiliationConflictError(
                f"{inviter.name} and {invitee.name} are already affiliated."
            )
        token, key = ctx.new_token(AFFILIATION_TOKEN_BYTES)
        now = ctx.clock.now()
        async with ctx.store.db.transaction("invite_organisation"):
            for old in existing:
                await ctx.store.affiliations.delete(old.id)
            aff = await ctx.store.affiliations.add(
                NewAffiliation(
                    inviter_id=inviter.id,
                    invitee_id=invitee.id,
                    status=AffiliationStatus.PENDING,
                    token_hash=key,
                    expires_at=now + ctx.config.affiliation_link_ttl,
                    invited_by=caller.actor,
                    at=now,
                )
            )
            await ctx.record(
                caller,
                "affiliation.invite",
                f"affiliation:{aff.id}",
                inviter=inviter.id,
                invitee=invitee.id,
                replaced=[a.id for a in existing],
            )
        url = ctx.link(f"/s/org/0/associations/{aff.id}/invite?token={token}")
        name = await self._inviter_name(caller)
        expires = expiry_text(aff.expires_at, invitee.settings.default_time_zone)
        for admin in await ctx.store.users.admins(invitee.id):
            await ctx.send(
                affiliation_invitation(
                    to=admin.profile.email,
                    inviter_name=name,
                    inviter_org=inviter.name,
                    url=url,
                    expires=expires,
                )
            )
        return aff

    async def _pending(self, caller: Caller, affiliation_id: int, token: str) -> Affiliation:
        ctx = self._ctx
        aff = await ctx.store.affiliations.get(affiliation_id)
        if aff is None:
            raise LinkGoneError("unknown")
        if not caller.sees(aff.invitee_id):
            raise UnknownAffiliationError(f"no affiliation {affiliation_id}")
        if aff.status is not AffiliationStatus.PENDING:
            raise LinkGoneError(aff.status.value)
        found = await ctx.store.affiliations.by_token(digest(token)) if token else None
        if found is None or found.id != aff.id:
            raise LinkGoneError("replaced")
        if aff.expires_at <= ctx.clock.now():
            raise LinkGoneError("expired")
        return aff

    async def link(self, caller: Caller, affiliation_id: int, token: str) -> AffiliationLink:
        """What the Invitation page shows, for an administrator of the invited organisation.

        Raises:
            LinkGoneError: The link is unknown, replaced, answered or expired.
            UnknownAffiliationError: The caller does not administer the invited organisation.
        """
        aff = await self._pending(caller, affiliation_id, token)
        inviter, invitee = await self._other(aff.inviter_id), await self._other(aff.invitee_id)
        groups = await self._ctx.store.groups.list_for(invitee.id)
        return AffiliationLink(
            affiliation=aff, inviter=_ref(inviter), invitee=_ref(invitee), groups=tuple(groups)
        )

    async def accept(
        self, caller: Caller, affiliation_id: int, token: str, choice: AcceptChoice
    ) -> tuple[Affiliation, Group | None]:
        """Accept: "All your users", or "Only some of your users" (a group, existing or new).

        Returns:
            The active affiliation, and the group its permission uses (None for all users).

        Raises:
            LinkGoneError: The link is unknown, replaced, answered or expired.
            UnknownAffiliationError: The caller does not administer the invited organisation.
            UnknownGroupError: ``choice.group_id`` is not a group of the invited organisation.
            InvalidFieldError: A bad new group name.
            NameTakenError: The new group's name is taken.
        """
        ctx = self._ctx
        aff = await self._pending(caller, affiliation_id, token)
        ctx.check_write(caller)
        group: Group | None = None
        if choice.group_id is not None:
            group = await ctx.store.groups.get(choice.group_id)
            if group is None or group.organisation_id != aff.invitee_id:
                raise UnknownGroupError(f"no group {choice.group_id} in this organisation")
        name = fields.group_name(choice.new_group_name) if choice.new_group_name else None
        now = ctx.clock.now()
        async with ctx.store.db.transaction("accept_affiliation"):
            if name is not None:
                group = await add_group(ctx, aff.invitee_id, name, wgm=False, at=now)
            permission = (
                Permission()
                if group is None
                else Permission(mode=PermissionMode.GROUPS, groups=frozenset({group.id}))
            )
            await ctx.store.affiliations.activate(aff.id, now)
            await ctx.store.affiliations.set_permission(aff.id, aff.invitee_id, permission)
            await ctx.record(
                caller,
                "affiliation.accept",
                f"affiliation:{aff.id}",
                permission=_permission_view(permission),
                group_created=name is not None,
            )
        if name is not None and group is not None:
            ctx.index.set_group(indexed(group))
        await self._refresh()
        accepted = await ctx.store.affiliations.get(aff.id)
        assert accepted is not None
        return accepted, group

    async def decline(self, caller: Caller, affiliation_id: int, token: str) -> Affiliation:
        """Decline: the invitation becomes declined and its link stops working.

        Raises:
            LinkGoneError: The link is unknown, replaced, answered or expired.
            UnknownAffiliationError: The caller does not administer the invited organisation.
        """
        ctx = self._ctx
        aff = await self._pending(caller, affiliation_id, token)
        ctx.check_write(caller)
        async with ctx.store.db.transaction("decline_affiliation"):
            await ctx.store.affiliations.decline(aff.id, ctx.clock.now())
            await ctx.record(caller, "affiliation.decline", f"affiliation:{aff.id}")
        declined = await ctx.store.affiliations.get(aff.id)
        assert declined is not None
        return declined

    async def list_for(self, caller: Caller, organisation_id: int) -> list[AffiliationView]:
        """ "Organizations with whom we can communicate": active and pending, by name.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        views = []
        for aff in await ctx.store.affiliations.of_organisation(org.id):
            other = await self._other(aff.other(org.id))
            pending = aff.status is AffiliationStatus.PENDING
            label = other.name + (" (pending)" if pending else "")
            if not pending and other.kind is OrgKind.PRACTICE:
                label = await self._practice_label(other) or label
            views.append(
                AffiliationView(
                    affiliation=aff,
                    other=_ref(other),
                    is_incoming=pending and aff.invitee_id == org.id,
                    permission=aff.permission_of(org.id),
                    label=label,
                )
            )
        return sorted(views, key=lambda v: (v.other.name.lower(), v.affiliation.id))

    async def _practice_label(self, practice: Organisation) -> str | None:
        """The invited administrator's e-mail while a new practice has no administrator."""
        ctx = self._ctx
        if await ctx.store.users.count_admins(practice.id):
            return None
        page, _ = await ctx.store.invitations.find(
            practice.id, InvitationFilter(), offset=0, limit=50
        )
        for inv in page:
            if inv.is_admin and inv.status is not InvitationStatus.REGISTERED:
                return inv.email
        return None

    async def set_permission(
        self, caller: Caller, organisation_id: int, other_id: int, permission: Permission
    ) -> AffiliationView:
        """Save Association Permissions: who of ``organisation_id`` may talk to ``other_id``.

        Raises:
            UnknownOrganisationError: Not the caller's.
            UnknownAffiliationError: The two are not actively affiliated.
            UnknownGroupError: A group is not one of ``organisation_id``'s.
            InvalidFieldError: Groups given with a mode other than groups, or none with it.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        other = await self._other(other_id)
        aff = next(
            (
                a
                for a in await ctx.store.affiliations.between(org.id, other.id)
                if a.status is AffiliationStatus.ACTIVE
            ),
            None,
        )
        if aff is None:
            raise UnknownAffiliationError(f"{org.name} and {other.name} are not affiliated")
        await self._check_permission(org.id, permission)
        before = aff.permission_of(org.id)
        async with ctx.store.db.transaction("set_affiliation_permission"):
            await ctx.store.affiliations.set_permission(aff.id, org.id, permission)
            await ctx.record(
                caller,
                "affiliation.permission",
                f"affiliation:{aff.id}",
                organisation=org.id,
                before=_permission_view(before),
                after=_permission_view(permission),
            )
        await self._refresh()
        return AffiliationView(
            affiliation=aff, other=_ref(other), permission=permission, label=other.name
        )

    async def _check_permission(
        self, organisation_id: OrganisationId, permission: Permission
    ) -> None:
        if permission.mode is PermissionMode.GROUPS and not permission.groups:
            raise InvalidFieldError("groups", "Choose at least one group, or None, or everyone.")
        if permission.mode is not PermissionMode.GROUPS and permission.groups:
            raise InvalidFieldError("groups", "Groups go only with the groups permission.")
        for gid in permission.groups:
            group = await self._ctx.store.groups.get(gid)
            if group is None or group.organisation_id != organisation_id:
                raise UnknownGroupError(f"no group {gid} in this organisation")

    async def delete(self, caller: Caller, organisation_id: int, other_id: int) -> None:
        """End the affiliation permanently, on both sides (they must be invited again).

        A pending invitation between them is withdrawn too.

        Raises:
            UnknownOrganisationError: Not the caller's.
            UnknownAffiliationError: No affiliation or invitation between them.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        found = await ctx.store.affiliations.between(org.id, other_id)
        if not found:
            raise UnknownAffiliationError(f"no affiliation with organisation {other_id}")
        async with ctx.store.db.transaction("delete_affiliation"):
            for aff in found:
                await ctx.store.affiliations.delete(aff.id)
            await ctx.record(
                caller,
                "affiliation.delete",
                f"organisation:{other_id}",
                organisation=org.id,
                affiliations=[a.id for a in found],
            )
        await self._refresh()

    async def get(self, caller: Caller, affiliation_id: AffiliationId) -> Affiliation:
        """One affiliation, if the caller's organisation is on either side.

        Raises:
            UnknownAffiliationError: No such affiliation for the caller.
        """
        aff = await self._ctx.store.affiliations.get(affiliation_id)
        if aff is None or not (caller.sees(aff.inviter_id) or caller.sees(aff.invitee_id)):
            raise UnknownAffiliationError(f"no affiliation {affiliation_id}")
        return aff

    async def communities(self, caller: Caller) -> list[Community]:
        """Every hospital's community the caller may see, by hospital name.

        An organisation's administrator sees the communities their
        organisation is in; a system administrator (or global auditor) all.
        """
        snapshot = await self._ctx.store.snapshot.snapshot()
        graph, names = snapshot.graph, snapshot.org_names
        if caller.organisation_id is None:
            hospitals = {o for o, k in graph.kinds.items() if k is OrgKind.HOSPITAL}
        else:
            hospitals = graph.hospitals_of(caller.organisation_id)

        def ref(o: OrganisationId) -> OrganisationRef:
            return OrganisationRef(id=o, kind=graph.kinds[o], name=names[o])

        out = []
        for h in hospitals:
            others = sorted(graph.community(h) - {h}, key=lambda o: (names[o].lower(), o))
            out.append(Community(hospital=ref(h), members=(ref(h), *map(ref, others))))
        return sorted(out, key=lambda c: (c.hospital.name.lower(), c.hospital.id))

    async def add_community_member(
        self, caller: Caller, hospital_id: int, organisation_id: int
    ) -> Community:
        """Put an organisation in a hospital's community: an active affiliation without invitation.

        System administrators only. A community holds organisations, never
        communities: a practice as the community, or the hospital itself as
        the member, is refused (the API refuses a ``community`` member too).

        Raises:
            ReadOnlyError: Not a system administrator.
            UnknownOrganisationError: Either is unknown.
            CommunityError: ``hospital_id`` is a practice, or ``organisation_id`` is the hospital.
            AffiliationConflictError: They are already affiliated.
        """
        ctx = self._ctx
        ctx.check_system_admin(caller)
        hospital = await self._other(hospital_id)
        org = await self._other(organisation_id)
        if hospital.kind is not OrgKind.HOSPITAL or org.id == hospital.id:
            raise CommunityError(NOT_A_COMMUNITY)
        existing = await ctx.store.affiliations.between(hospital.id, org.id)
        if any(a.status is AffiliationStatus.ACTIVE for a in existing):
            raise AffiliationConflictError(f"{org.name} is already in {hospital.name}'s community.")
        now = ctx.clock.now()
        async with ctx.store.db.transaction("add_community_member"):
            for old in existing:
                await ctx.store.affiliations.delete(old.id)
            aff = await ctx.store.affiliations.add(
                NewAffiliation(
                    inviter_id=hospital.id,
                    invitee_id=org.id,
                    status=AffiliationStatus.ACTIVE,
                    token_hash=None,
                    expires_at=now,
                    invited_by=caller.actor,
                    at=now,
                )
            )
            await ctx.record(
                caller,
                "community.member.add",
                f"affiliation:{aff.id}",
                hospital=hospital.id,
                organisation=org.id,
            )
        await self._refresh()
        (community,) = [c for c in await self.communities(caller) if c.hospital.id == hospital.id]
        return community
