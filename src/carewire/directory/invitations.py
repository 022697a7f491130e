"""User invitations: invite by e-mail list or CSV, list, resend, delete.

Each invitation is mailed at once through the mailer: Pending, then Email
Sent when the mailer accepted the message, Failure when it refused it
(``INVITATION_TRANSITIONS``). Its link carries a random token of which the
store keeps only the SHA-256; it works until ``invitation_link_ttl`` passes,
the invitation is resent (a new token) or deleted, or it is used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from carewire.directory import fields, sending
from carewire.directory.context import Facet
from carewire.directory.model import (
    INVITATIONS_PAGE_SIZE,
    BulkResult,
    Caller,
    Invitation,
    InvitationFilter,
    InvitationId,
    InvitationStatus,
    InviteRequest,
    InviteResult,
    Page,
    PageRequest,
    UnknownInvitationError,
)

log = logging.getLogger(__name__)


class Invitations(Facet):
    """User invitations (``DirectoryService.invitations``)."""

    async def invite(
        self, caller: Caller, organisation_id: int, request: InviteRequest
    ) -> InviteResult:
        """Invite Users: typed addresses and/or a CSV file, merged.

        A malformed typed address refuses the whole request ("Invalid email
        address: <addr>. No invitations were sent."); bad CSV rows are left out
        and reported by line while good rows go in. Addresses are
        de-duplicated case-insensitively; an address of a registered user is
        skipped and reported; a pending or failed invitation to the same
        address in this organisation is resent instead of duplicated. The
        Department column creates missing groups; invitees join theirs when
        they register. Up to 100 invitations are mailed before this returns
        (their statuses are final); larger requests return them Pending and
        mail them in the background.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            InvalidEmailError: A typed address is malformed (nothing was sent).
            CsvError: The CSV cannot be read at all (no header, too many rows, …).
            InvalidFieldError: Nothing to invite, or too many typed addresses.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        wanted, problems = sending.wanted_of(request)
        todo = await sending.plan(ctx, org, wanted, problems)
        async with ctx.store.db.transaction("invite_users"):
            issued, created = await sending.apply(ctx, caller, org, todo)
            await ctx.record(
                caller,
                "invitation.create",
                f"organisation:{org.id}",
                invited=len(todo.new),
                resent=[i.id for i in todo.resend][:100],
                existing_users=len(todo.existing_users),
                problems=len(todo.problems),
                groups_created=[g.name for g in created],
                is_admin=request.is_admin,
            )
        sending.index_groups(ctx, created)
        mailed = await sending.mail(ctx, org, issued)
        return sending.result_of(todo, mailed, created)

    async def find(
        self,
        caller: Caller,
        organisation_id: int,
        search: InvitationFilter | None = None,
        page: PageRequest | None = None,
    ) -> Page[Invitation]:
        """The Invitations page: one page of the organisation's invitations (deleted ones never).

        Newest first by default (``search.sort``).

        Raises:
            UnknownOrganisationError: Not the caller's.
            InvalidFieldError: A bad page.
        """
        org = await self._ctx.organisation(caller, organisation_id)
        wanted = fields.page(page, INVITATIONS_PAGE_SIZE)
        items, total = await self._ctx.store.invitations.find(
            org.id, search or InvitationFilter(), offset=wanted.offset, limit=wanted.limit
        )
        return Page(items=tuple(items), total=total, offset=wanted.offset, limit=wanted.limit)

    async def get(self, caller: Caller, invitation_id: int) -> Invitation:
        """One invitation.

        Raises:
            UnknownInvitationError: No such invitation for the caller (or deleted).
        """
        stored = await self._ctx.store.invitations.get(invitation_id)
        if (
            stored is None
            or stored.is_deleted
            or not caller.sees(stored.invitation.organisation_id)
        ):
            raise UnknownInvitationError(f"no invitation {invitation_id}")
        return stored.invitation

    async def _of_organisation(
        self, organisation_id: int, ids: Sequence[int]
    ) -> tuple[list[Invitation], list[InvitationId]]:
        found: list[Invitation] = []
        missing: list[InvitationId] = []
        for i in dict.fromkeys(ids):
            stored = await self._ctx.store.invitations.get(i)
            if (
                stored is None
                or stored.is_deleted
                or stored.invitation.organisation_id != organisation_id
            ):
                missing.append(InvitationId(i))
            else:
                found.append(stored.invitation)
        return found, missing

    async def resend(self, caller: Caller, organisation_id: int, ids: Sequence[int]) -> BulkResult:
        """Resend: a new link (the old one stops working) and mail; Registered ones are skipped.

        Ids that are not the organisation's (or deleted) are skipped too.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        found, skipped = await self._of_organisation(org.id, ids)
        todo = [i for i in found if i.status is not InvitationStatus.REGISTERED]
        skipped += [i.id for i in found if i.status is InvitationStatus.REGISTERED]
        async with ctx.store.db.transaction("resend_invitations"):
            now = ctx.clock.now()
            issued = [await sending.reissue(ctx, caller, i, now) for i in todo]
            if issued:
                await ctx.record(
                    caller,
                    "invitation.resend",
                    f"organisation:{org.id}",
                    invitations=[i.id for i in todo],
                )
        await sending.mail(ctx, org, issued)
        return BulkResult(done=tuple(i.id for i in todo), skipped=tuple(skipped))

    async def delete(self, caller: Caller, organisation_id: int, ids: Sequence[int]) -> BulkResult:
        """Delete: the rows leave the list; unregistered invitees can no longer register.

        Deleting a Registered invitation only hides it (the user is unaffected).

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        found, skipped = await self._of_organisation(org.id, ids)
        async with ctx.store.db.transaction("delete_invitations"):
            done = await ctx.store.invitations.delete([i.id for i in found], ctx.clock.now())
            if done:
                await ctx.record(
                    caller, "invitation.delete", f"organisation:{org.id}", invitations=done
                )
        return BulkResult(done=tuple(done), skipped=tuple(skipped))
