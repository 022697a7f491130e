"""Users kept in step with an external directory (LDAP sync, docs/ldap.md): batches of changes.

An identity integration decides what changes; this facet writes a batch of
them in **one transaction** the way the rest of the directory writes users:
the account (with no password: synced users either sign in against their
directory or get one from an administrator), the profile, the USERS record,
the login state and the audit trail. A batch is all or nothing, so an
interrupted run leaves every batch either written or not, and the next run
decides again from what is there. After the commit the index is updated,
disabled users' sessions end (``UserDisabled``) and ``UserChanged`` is
announced, as for changes made one by one.

Synced users are never deleted here: a user who left the directory is
disabled. The fields an integration fills are read-only for administrators:
:class:`~carewire.directory.users.Users` asks the ``managed`` callback of
the context and refuses a change to them (``SyncedFieldError``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from carewire.core.stores import NewAccount
from carewire.datasets.model import Origin as RecordOrigin
from carewire.directory import fields, people
from carewire.directory.context import Facet
from carewire.directory.model import (
    Caller,
    DirectoryUser,
    LoginTakenError,
    OrganisationId,
    Profile,
    UnknownUserError,
    UserChanged,
    UserDisabled,
)
from carewire.security.audit import AuditEvent

log = logging.getLogger(__name__)

#: What runs inside the batch's transaction: given the StaffIDs of the created users.
Inside = Callable[[Mapping[str, int]], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncedUpdate:
    """A synced user's new profile, and whether login is enabled again."""

    login: str
    profile: Profile
    is_enable: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncBatch:
    """One batch of an integration's changes to one organisation.

    Attributes:
        organisation_id: The organisation.
        source: The integration, for the audit trail (``ldap``).
        creates: New users: login → profile.
        updates: Changed users.
        disables: Users whose login is disabled (they left the directory).
    """

    organisation_id: int
    source: str
    creates: Mapping[str, Profile] = field(default_factory=dict)
    updates: Sequence[SyncedUpdate] = ()
    disables: Sequence[str] = ()


class Synced(Facet):
    """Batches of changes from an identity integration (``DirectoryService.synced``)."""

    async def apply(
        self, caller: Caller, batch: SyncBatch, *, inside: Inside | None = None
    ) -> dict[str, int]:
        """Write ``batch`` in one transaction; the StaffIDs of the created users.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            LoginTakenError: A new login was taken meanwhile (nothing is written).
            EmailTakenError: An address was taken meanwhile (nothing is written).
            UnknownUserError: An updated or disabled user is gone (nothing is written).
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, batch.organisation_id)
        ctx.check_write(caller)
        creates = {login: fields.profile(p) for login, p in batch.creates.items()}
        befores = await self._users([u.login for u in batch.updates] + list(batch.disables))
        now = ctx.clock.now()
        async with ctx.store.db.transaction("apply_synced_users"):
            staff_ids = await self._create(caller, org.id, creates, now)
            changed = await self._update(caller, batch.updates, befores)
            for login in batch.disables:
                await ctx.store.users.set_disabled(login, True)
            await ctx.audit.record_many(self._audit(caller, batch, staff_ids, changed, now))
            if inside is not None:
                await inside(staff_ids)
        for login, profile in creates.items():
            ctx.index.set_user(login, org.id, profile.display_name)
        for update in batch.updates:
            ctx.index.set_user(update.login, org.id, update.profile.display_name)
        for login in batch.disables:
            ctx.accounts.end_sessions(login, text="login disabled")
            await ctx.notify(UserDisabled(login=login))
        for login in [*creates, *changed]:
            await ctx.notify(UserChanged(login=login, organisation_id=org.id))
        return staff_ids

    async def users(self, caller: Caller, logins: Sequence[str]) -> dict[str, DirectoryUser]:
        """The users of ``logins`` the caller may see, by login (with photos)."""
        found = await self._ctx.store.users.by_logins(logins)
        return {k: u for k, u in found.items() if caller.sees(u.organisation_id)}

    async def email_owners(self, emails: Sequence[str]) -> dict[str, tuple[str, int]]:
        """E-mail → (login, organisation id) of the users having these addresses."""
        found = await self._ctx.store.users.by_emails(sorted(set(emails)))
        return {email: (u.login, int(u.organisation_id)) for email, u in found.items()}

    async def taken_logins(self, logins: Sequence[str]) -> set[str]:
        """Which of ``logins`` an account or a kept USERS record has (not free for a new user)."""
        taken = await self._ctx.store.users.taken_logins(logins)
        unique = sorted(set(logins) - taken)
        for i in range(0, len(unique), 500):
            taken |= await people.users_record_logins(self._ctx, unique[i : i + 500])
        return taken

    async def _users(self, logins: Sequence[str]) -> dict[str, DirectoryUser]:
        found = await self._ctx.store.users.by_logins(logins)
        missing = sorted(set(logins) - set(found))
        if missing:
            raise UnknownUserError(f"no directory user {missing[0]!r}")
        return found

    async def _create(
        self,
        caller: Caller,
        organisation_id: OrganisationId,
        creates: Mapping[str, Profile],
        now: datetime,
    ) -> dict[str, int]:
        ctx = self._ctx
        if not creates:
            return {}
        accounts = [
            NewAccount(login=login, credentials=(), first_name=p.first_name, last_name=p.last_name)
            for login, p in creates.items()
        ]
        _, skipped = await ctx.accounts.stores.accounts.create_many(accounts)
        if skipped:
            raise LoginTakenError(f"the logins {', '.join(skipped[:5])} were taken meanwhile")
        staff = await ctx.store.users.next_staff_ids(len(creates))
        users = [
            DirectoryUser(
                login=login,
                organisation_id=organisation_id,
                staff_id=staff_id,
                profile=profile,
                created_at=now,
                updated_at=now,
            )
            for (login, profile), staff_id in zip(creates.items(), staff, strict=True)
        ]
        await ctx.store.users.add_many(users)
        await self._records(caller, users)
        return {u.login: u.staff_id for u in users}

    async def _update(
        self,
        caller: Caller,
        updates: Sequence[SyncedUpdate],
        befores: Mapping[str, DirectoryUser],
    ) -> list[str]:
        ctx = self._ctx
        changed: list[str] = []
        rewritten: list[DirectoryUser] = []
        for update in updates:
            before = befores[update.login]
            profile = fields.profile(update.profile)
            after = replace(before, profile=profile, updated_at=ctx.clock.now())
            if profile != before.profile:
                await ctx.store.users.update(after)
                rewritten.append(after)
                await self._rename_console_admin(caller, before, after)
            if update.is_enable:
                await ctx.store.users.set_disabled(update.login, False)
            changed.append(update.login)
        if rewritten:
            await self._records(caller, rewritten)
        return changed

    async def _rename_console_admin(
        self, caller: Caller, before: DirectoryUser, after: DirectoryUser
    ) -> None:
        """An administrator's console account follows their address (its username is it)."""
        old, new = before.profile.email, after.profile.email
        if before.is_org_admin and old != new:
            await self._ctx.console.rename_user(
                old, new, email=new, origin=people.console_origin(caller)
            )

    async def _records(self, caller: Caller, users: Sequence[DirectoryUser]) -> None:
        """Create or update the USERS records of ``users`` with a few statements."""
        values = {u.login: people.users_record_values(u) for u in users}
        origin = RecordOrigin(actor=caller.actor)
        async with self._ctx.datasets.batch(origin, "directory_users_records") as batch:
            found = await batch.find_many(people.USERS, [{"login": login} for login in values])
            existing = {str(r.values.get("login")): r for r in found}
            changes = [(existing[login].id, v) for login, v in values.items() if login in existing]
            if changes:
                await batch.update_many(people.USERS, changes)
            new = [v for login, v in values.items() if login not in existing]
            if new:
                await batch.create_many(people.USERS, new)

    @staticmethod
    def _audit(
        caller: Caller,
        batch: SyncBatch,
        staff_ids: Mapping[str, int],
        changed: Sequence[str],
        now: datetime,
    ) -> list[tuple[datetime, AuditEvent]]:
        def event(action: str, login: str, **details: object) -> tuple[datetime, AuditEvent]:
            return now, AuditEvent(
                actor=caller.actor,
                channel=caller.channel,
                action=f"directory.{action}",
                target=login,
                remote_ip=caller.remote_ip,
                details={"organisation": batch.organisation_id, "source": batch.source, **details},
            )

        items = [event("user.create", login, staff_id=sid) for login, sid in staff_ids.items()]
        items += [event("user.update", login) for login in changed]
        items += [event("user.disable", login) for login in batch.disables]
        return items
