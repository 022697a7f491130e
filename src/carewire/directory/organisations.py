"""Organisations: create hospitals and practices, read and update their details and members.

A hospital is created by a system administrator, its first administrator
invited by e-mail. A practice is created by a hospital's administrator (or a
system administrator for the hospital) and is affiliated with that hospital
at once; its administrator and initial users are invited by e-mail.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory import fields, sending
from carewire.directory.context import Facet
from carewire.directory.model import (
    MEMBERS_PAGE_SIZE,
    AdminInvitee,
    AffiliationConflictError,
    AffiliationStatus,
    Caller,
    CsvProblem,
    DirectoryUser,
    EmailTakenError,
    InviteRequest,
    InviteResult,
    Member,
    NewHospital,
    NewPractice,
    Organisation,
    OrganisationId,
    OrganisationRef,
    OrganisationSettings,
    OrganisationUpdate,
    OrgKind,
    Page,
    PageRequest,
    PolicyChanged,
    PracticeCreated,
    UnknownOrganisationError,
    UserFilter,
    UserSortKey,
)
from carewire.directory.people import USERS
from carewire.directory.policy import member_status, normalize_email
from carewire.directory.store import NewAffiliation

log = logging.getLogger(__name__)


def _admin(admin: AdminInvitee) -> sending.Wanted:
    return sending.Wanted(
        email=normalize_email(admin.email),
        first_name=fields.text(
            admin.first_name, "admin_first_name", label="First Name", limit=64, required=True
        ),
        last_name=fields.text(
            admin.last_name, "admin_last_name", label="Last Name", limit=64, required=True
        ),
        is_admin=True,
    )


def _settings_view(org: Organisation) -> dict[str, object]:
    s = org.settings
    return {
        "name": org.name,
        "office_number": org.office_number,
        "default_time_zone": s.default_time_zone,
        "whole_org_messaging": s.whole_org_messaging,
        "non_user_messaging": s.non_user_messaging,
        "high_priority_sound_seconds": s.high_priority_sound_seconds,
        "message_expiration": s.message_expiration.value,
        "retention": None
        if s.retention_value is None
        else f"{s.retention_value} {s.retention_unit}",
        "pin_length": s.pin_length,
    }


class Organisations(Facet):
    """Hospitals and practices (``DirectoryService.organisations``)."""

    async def _new(
        self, kind: OrgKind, name: str, office: str, settings: OrganisationSettings
    ) -> Organisation:
        now = self._ctx.clock.now()
        return Organisation(
            id=OrganisationId(0),
            kind=kind,
            name=fields.organisation_name(name),
            office_number=fields.office_number(office),
            settings=fields.settings(settings),
            created_at=now,
            updated_at=now,
        )

    async def _admin_free(self, admin: sending.Wanted) -> None:
        user = await self._ctx.store.users.get_by_email(admin.email)
        if user is not None:
            raise EmailTakenError(
                f"{admin.email} belongs to a registered user; the administrator must be a new user."
            )

    async def create_hospital(self, caller: Caller, new: NewHospital) -> Organisation:
        """Create a hospital and invite its first administrator by e-mail.

        Only a system administrator may. The administrator's console account
        is made when they register through the mailed invitation.

        Raises:
            ReadOnlyError: The caller is not a system administrator.
            InvalidFieldError: A field is not valid (``field`` names it).
            NameTakenError: An organisation of that name exists (case-insensitive).
            EmailTakenError: The administrator's address belongs to a user.
        """
        ctx = self._ctx
        ctx.check_system_admin(caller)
        draft = await self._new(OrgKind.HOSPITAL, new.name, new.office_number, new.settings)
        admin = _admin(new.admin)
        await self._admin_free(admin)
        async with ctx.store.db.transaction("create_hospital"):
            org = await ctx.store.organisations.add(draft)
            issued, _ = await sending.apply(ctx, caller, org, sending.Plan(new=[admin]))
            await ctx.record(
                caller,
                "organisation.create",
                f"organisation:{org.id}",
                after=_settings_view(org),
                kind=org.kind.value,
                admin_invitation=issued[0].invitation.id,
            )
        await self._refresh_graph()
        await sending.mail(ctx, org, issued)
        return org

    async def create_practice(self, caller: Caller, new: NewPractice) -> PracticeCreated:
        """Create a practice for a hospital, affiliated with it at once (active).

        A hospital's administrator or a system administrator may; practice
        administrators may not. Its administrator is invited by e-mail; the
        initial standard users too (as :meth:`Invitations.invite` does).

        Raises:
            ReadOnlyError: An auditor.
            UnknownOrganisationError: No such hospital for the caller.
            AffiliationConflictError: ``hospital_id`` is a practice.
            InvalidFieldError: A field is not valid.
            InvalidEmailError: A typed initial address is malformed (nothing created).
            NameTakenError: The name is taken.
            EmailTakenError: The administrator's address belongs to a user.
        """
        ctx = self._ctx
        hospital = await ctx.organisation(caller, new.hospital_id)
        ctx.check_write(caller)
        if hospital.kind is not OrgKind.HOSPITAL:
            raise AffiliationConflictError("A practice may not create practices.")
        draft = await self._new(
            OrgKind.PRACTICE,
            new.name,
            new.office_number,
            OrganisationSettings(default_time_zone=hospital.settings.default_time_zone),
        )
        admin = _admin(new.admin)
        await self._admin_free(admin)
        wanted: list[sending.Wanted] = []
        problems: list[CsvProblem] = []
        if new.emails.strip() or new.csv_text is not None:
            wanted, problems = sending.wanted_of(
                InviteRequest(emails=new.emails, csv_text=new.csv_text)
            )
        async with ctx.store.db.transaction("create_practice"):
            org = await ctx.store.organisations.add(draft)
            now = ctx.clock.now()
            await ctx.store.affiliations.add(
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
            admin_issued, _ = await sending.apply(ctx, caller, org, sending.Plan(new=[admin]))
            todo = await sending.plan(
                ctx, org, [w for w in wanted if w.email != admin.email], problems
            )
            users_issued, created = await sending.apply(ctx, caller, org, todo)
            await ctx.record(
                caller,
                "organisation.create",
                f"organisation:{org.id}",
                after=_settings_view(org),
                kind=org.kind.value,
                hospital=hospital.id,
                admin_invitation=admin_issued[0].invitation.id,
                invited=len(users_issued),
            )
        sending.index_groups(ctx, created)
        await self._refresh_graph()
        (admin_invitation,) = await sending.mail(ctx, org, admin_issued)
        users = await sending.mail(ctx, org, users_issued)
        return PracticeCreated(
            practice=org,
            admin_invitation=admin_invitation,
            users=sending.result_of(todo, users, created) if wanted or problems else InviteResult(),
        )

    async def _refresh_graph(self) -> None:
        snapshot = await self._ctx.store.snapshot.snapshot()
        self._ctx.index.set_graph(snapshot.graph, snapshot.org_names)
        await self._ctx.notify(PolicyChanged())

    async def get(self, caller: Caller, organisation_id: int) -> Organisation:
        """One organisation.

        Raises:
            UnknownOrganisationError: No such organisation, or not the caller's.
        """
        return await self._ctx.organisation(caller, organisation_id)

    async def list_visible(self, caller: Caller) -> list[Organisation]:
        """Every organisation the caller may see (all for system administrators), by name."""
        if caller.organisation_id is None:
            return await self._ctx.store.organisations.list_all()
        return await self._ctx.store.organisations.list_all([caller.organisation_id])

    async def search(self, caller: Caller, text: str, *, limit: int = 10) -> list[OrganisationRef]:
        """Organisations whose name contains ``text`` (case-insensitive), by name.

        The Invite Organization type-ahead: any administrator may look up
        names (and only names) of every organisation, their own excluded.
        """
        return await self._ctx.store.organisations.search(
            text, limit=max(1, min(limit, 50)), exclude=caller.organisation_id
        )

    async def update(
        self, caller: Caller, organisation_id: int, update: OrganisationUpdate
    ) -> Organisation:
        """Save Update Organization: details and message options.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            InvalidFieldError: A value is not valid (time zone, sound length, …).
            NameTakenError: The new name is taken.
        """
        ctx = self._ctx
        before = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        after = replace(
            before,
            name=before.name if update.name is None else fields.organisation_name(update.name),
            office_number=before.office_number
            if update.office_number is None
            else fields.office_number(update.office_number),
            settings=before.settings
            if update.settings is None
            else fields.settings(update.settings),
            updated_at=ctx.clock.now(),
        )
        old, new = _settings_view(before), _settings_view(after)
        changed = sorted(k for k in new if old[k] != new[k])
        async with ctx.store.db.transaction("update_organisation"):
            await ctx.store.organisations.update(after)
            await ctx.record(
                caller,
                "organisation.update",
                f"organisation:{before.id}",
                before={k: old[k] for k in changed},
                after={k: new[k] for k in changed},
            )
        if after.name != before.name:
            await self._refresh_graph()
        return after

    async def admins(self, caller: Caller, organisation_id: int) -> list[DirectoryUser]:
        """The organisation's administrators, by last then first name.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        org = await self._ctx.organisation(caller, organisation_id)
        return await self._ctx.store.users.admins(org.id)

    async def members(
        self, caller: Caller, organisation_id: int, page: PageRequest | None = None
    ) -> Page[Member]:
        """Members (N): users by last then first name, with their status, one page.

        Raises:
            UnknownOrganisationError: Not the caller's.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        wanted = fields.page(page, MEMBERS_PAGE_SIZE)
        users, total = await ctx.store.users.find(
            org.id,
            UserFilter(),
            sort=UserSortKey.NAME,
            is_descending=False,
            offset=wanted.offset,
            limit=wanted.limit,
        )
        shows: dict[str, str] = {}
        if users:
            found = await ctx.datasets.query(
                USERS,
                Query(
                    filters=(
                        Filter(field="login", op=FilterOp.IN, value=[u.login for u in users]),
                    ),
                    limit=len(users),
                ),
            )
            shows = {
                str(r.values["login"]): str(r.values.get("presence_show") or "")
                for r in found.records
            }
        items = tuple(Member(user=u, status=member_status(shows.get(u.login))) for u in users)
        return Page(items=items, total=total, offset=wanted.offset, limit=wanted.limit)

    async def ref(self, organisation_id: OrganisationId) -> OrganisationRef:
        """An organisation's id, kind and name, unscoped (for texts such as refusals).

        Raises:
            UnknownOrganisationError: No such organisation.
        """
        org = await self._ctx.store.organisations.get(organisation_id)
        if org is None:
            raise UnknownOrganisationError(f"no organisation {organisation_id}")
        return OrganisationRef(id=org.id, kind=org.kind, name=org.name)
