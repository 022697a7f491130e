"""Directory users: find, create, update, Can Login, unlock, delete.

A directory user is an XMPP account (``accounts``), a directory profile
(``directory_users``) and the USERS dataset record, written in one
transaction; administrators of an organisation also have a console account
(username: their e-mail address). A user created by an administrator
without a password is not registered yet: the invitation mailed to them
completes the profile and sets their own password and PIN.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, replace

from carewire.core.accounts import AccountInput
from carewire.directory import fields, people, sending
from carewire.directory.context import Facet
from carewire.directory.mails import admin_granted, expiry_text
from carewire.directory.model import (
    DEFAULT_PAGE_SIZE,
    Caller,
    DirectoryUser,
    EmailTakenError,
    Group,
    GroupId,
    LastAdminError,
    MembershipChanged,
    NewUser,
    Page,
    PageRequest,
    Profile,
    StaffType,
    SyncedFieldError,
    UnknownGroupError,
    UnknownUserError,
    UserChanged,
    UserDeleted,
    UserDisabled,
    UserFilter,
    UserSortKey,
    UserUpdate,
)
from carewire.directory.policy import check_pin, normalize_email
from carewire.directory.store import StoredPin
from carewire.security.console_auth import ConsoleConfig, check_password

log = logging.getLogger(__name__)


class Users(Facet):
    """Directory users (``DirectoryService.users``)."""

    async def find(
        self,
        caller: Caller,
        organisation_id: int,
        search: UserFilter | None = None,
        *,
        sort: UserSortKey = UserSortKey.NAME,
        is_descending: bool = False,
        page: PageRequest | None = None,
    ) -> Page[DirectoryUser]:
        """Find Users: one page of the organisation's users matching ``search`` (no photos).

        Raises:
            UnknownOrganisationError: Not the caller's.
            InvalidFieldError: A page size beyond :data:`MAX_PAGE_SIZE` or a negative offset.
        """
        org = await self._ctx.organisation(caller, organisation_id)
        wanted = fields.page(page, DEFAULT_PAGE_SIZE)
        items, total = await self._ctx.store.users.find(
            org.id,
            search or UserFilter(),
            sort=sort,
            is_descending=is_descending,
            offset=wanted.offset,
            limit=wanted.limit,
        )
        return Page(items=tuple(items), total=total, offset=wanted.offset, limit=wanted.limit)

    async def get(self, caller: Caller, login: str) -> DirectoryUser:
        """One user, with the photo.

        Raises:
            UnknownUserError: No such directory user, or not of the caller's organisation.
        """
        return await self._ctx.user(caller, login)

    async def synced_fields(self, caller: Caller, login: str) -> frozenset[str]:
        """The profile fields of the user an identity integration fills (read-only here).

        Raises:
            UnknownUserError: No such directory user, or not of the caller's organisation.
        """
        user = await self._ctx.user(caller, login, with_photo=False)
        return await self._ctx.managed_fields(user.login)

    async def find_by_email(self, caller: Caller, email: str) -> DirectoryUser:
        """The user with this e-mail address (case-insensitive).

        Raises:
            UnknownUserError: None the caller may see.
        """
        user = await self._ctx.store.users.get_by_email(email.strip().lower())
        if user is None or not caller.sees(user.organisation_id):
            raise UnknownUserError(f"no directory user with the address {email!r}")
        return user

    async def create(self, caller: Caller, organisation_id: int, new: NewUser) -> DirectoryUser:
        """Create User Profile: account, profile, PIN and USERS record in one transaction.

        With a password the user is complete (registered). Without one the
        account cannot log in until the user registers through the invitation
        mailed when ``new.send_invitation`` (the registration sets password
        and PIN and completes the profile). An administrator with a password
        gets a console account at once; otherwise at registration.

        Raises:
            UnknownOrganisationError: Not the caller's.
            ReadOnlyError: An auditor.
            InvalidFieldError: A field is not valid (``field`` names it).
            InvalidEmailError: The e-mail address is malformed.
            PinPolicyError: The PIN breaks the organisation's policy.
            EmailTakenError: Another user has the address.
            LoginTakenError: The login is taken.
            UnknownGroupError: A group is not the organisation's.
        """
        ctx = self._ctx
        org = await ctx.organisation(caller, organisation_id)
        ctx.check_write(caller)
        profile = fields.profile(new.profile)
        login = await (
            people.check_free(ctx, new.login)
            if new.login
            else people.free_login(ctx, profile.email)
        )
        if new.pin is not None:
            check_pin(new.pin, org.settings.pin_length)
        if new.password is not None:
            check_password(new.password)
        if await ctx.store.users.get_by_email(profile.email) is not None:
            raise EmailTakenError(f"{profile.email} is another user's address")
        groups = await self._groups_of_org(org.id, new.groups)
        wanted = AccountInput(
            login=login,
            password=new.password or "",
            first_name=profile.first_name,
            last_name=profile.last_name,
        )
        # Without a password no password opens the account until the user registers.
        account = (
            ctx.accounts.prepare(wanted)
            if new.password is not None
            else ctx.accounts.prepare_without_password(wanted)
        )
        pin_hash = None if new.pin is None else await ctx.hash_pin(new.pin)
        console_hash = None
        if new.is_org_admin and new.password is not None:
            console_hash = await ctx.console.hash_password(new.password)
        now = ctx.clock.now()
        is_registered = new.password is not None
        async with ctx.store.db.transaction("create_directory_user"):
            await people.check_login_free_in_txn(ctx, login)
            await ctx.accounts.stores.accounts.create(account)
            (staff_id,) = await ctx.store.users.next_staff_ids(1)
            user = DirectoryUser(
                login=login,
                organisation_id=org.id,
                staff_id=staff_id,
                profile=profile,
                is_org_admin=new.is_org_admin,
                has_pin=pin_hash is not None,
                pin_is_temporary=new.pin_is_temporary and pin_hash is not None,
                is_registered=is_registered,
                created_at=now,
                updated_at=now,
            )
            await ctx.store.users.add(user)
            if pin_hash is not None:
                await ctx.store.users.set_pin(
                    login,
                    StoredPin(pin_hash=pin_hash, is_temporary=new.pin_is_temporary, set_at=now),
                )
            await people.write_users_record(ctx, caller, user)
            for group in groups:
                await ctx.store.groups.add_members(group.id, [login])
            if console_hash is not None:
                await people.add_console_admin(
                    ctx, caller, user, password_hash=console_hash, must_change=False
                )
            issued: list[sending.Issued] = []
            if new.send_invitation and not is_registered:
                todo = sending.Plan(
                    new=[
                        sending.Wanted(
                            email=profile.email,
                            first_name=profile.first_name,
                            last_name=profile.last_name,
                            is_admin=new.is_org_admin,
                            login=login,
                        )
                    ]
                )
                issued, _ = await sending.apply(ctx, caller, org, todo)
            await ctx.record(
                caller,
                "user.create",
                login,
                organisation=org.id,
                staff_id=staff_id,
                is_org_admin=new.is_org_admin,
                groups=[g.id for g in groups],
                invited=bool(issued),
            )
        ctx.index.set_user(login, org.id, profile.display_name)
        for group in groups:
            ctx.index.add_members(group.id, [login])
        await ctx.notify(UserChanged(login=login, organisation_id=org.id))
        for group in groups:
            await ctx.notify(
                MembershipChanged(group_id=group.id, organisation_id=org.id, added=(login,))
            )
        await sending.mail(ctx, org, issued)
        return await ctx.user(caller, login)

    async def _groups_of_org(self, organisation_id: int, ids: tuple[GroupId, ...]) -> list[Group]:
        groups = []
        for gid in dict.fromkeys(ids):
            group = await self._ctx.store.groups.get(gid)
            if group is None or group.organisation_id != organisation_id:
                raise UnknownGroupError(f"no group {gid} in this organisation")
            groups.append(group)
        return groups

    async def update(self, caller: Caller, login: str, update: UserUpdate) -> DirectoryUser:
        """Update User Profile (fields, roles, Can Login, PIN, password) in one transaction.

        Granting the administrator role creates a console account and mails
        the user a link to set its password; revoking it removes the account.
        Disabling login ends the user's sessions at once.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
            InvalidFieldError: A field is not valid.
            PinPolicyError: The new PIN breaks the policy.
            EmailTakenError: The new address belongs to another user.
            LastAdminError: It would leave the organisation without an administrator.
        """
        ctx = self._ctx
        before = await ctx.user(caller, login)
        ctx.check_write(caller)
        org = await ctx.organisation(caller, before.organisation_id)
        profile = before.profile if update.profile is None else fields.profile(update.profile)
        await self._check_synced(before, profile)
        if update.pin is not None:
            check_pin(update.pin, org.settings.pin_length)
        if update.password is not None:
            check_password(update.password)
        is_admin = before.is_org_admin if update.is_org_admin is None else update.is_org_admin
        if before.is_org_admin and not is_admin:
            await self._keep_an_admin(before)
        creds = None
        if update.password is not None:
            creds = ctx.accounts.prepare(AccountInput(login=before.login, password=update.password))
        pin_hash = None if update.pin is None else await ctx.hash_pin(update.pin)
        console_hash = None
        if is_admin and (update.password is not None or not before.is_org_admin):
            plain = update.password or secrets.token_urlsafe(24)
            console_hash = await ctx.console.hash_password(plain)
        now = ctx.clock.now()
        after = replace(before, profile=profile, is_org_admin=is_admin, updated_at=now)
        if update.can_login is not None:
            after = replace(after, can_login=update.can_login)
        async with ctx.store.db.transaction("update_directory_user"):
            await ctx.store.users.update(after)
            if profile != before.profile:
                await people.write_users_record(ctx, caller, after)
            if update.can_login is not None and update.can_login != before.can_login:
                await ctx.store.users.set_disabled(before.login, not update.can_login)
            if pin_hash is not None:
                temporary = bool(update.pin_is_temporary)
                await ctx.store.users.set_pin(
                    before.login, StoredPin(pin_hash=pin_hash, is_temporary=temporary, set_at=now)
                )
            if creds is not None:
                await ctx.accounts.stores.accounts.set_credentials(before.login, creds.credentials)
            await self._console_changes(caller, before, after, console_hash)
            await ctx.record(
                caller,
                "user.update",
                before.login,
                organisation=before.organisation_id,
                changes=_changes(before, after),
                pin_changed=update.pin is not None,
                password_changed=update.password is not None,
            )
        await self._after_update(before, after)
        return await ctx.user(caller, login)

    async def _check_synced(self, before: DirectoryUser, profile: Profile) -> None:
        """Refuse a change of a field the organisation's directory sync fills."""
        if profile == before.profile:
            return
        for name in sorted(await self._ctx.managed_fields(before.login)):
            if getattr(profile, name) != getattr(before.profile, name):
                raise SyncedFieldError(
                    name,
                    f"{name} is synced from the organisation's directory: change it there.",
                )

    async def _console_changes(
        self,
        caller: Caller,
        before: DirectoryUser,
        after: DirectoryUser,
        console_hash: str | None,
    ) -> None:
        ctx = self._ctx
        old_email, new_email = before.profile.email, after.profile.email
        if before.is_org_admin and not after.is_org_admin:
            await ctx.console.remove_user(old_email, origin=people.console_origin(caller))
            return
        if not after.is_org_admin:
            return
        if not before.is_org_admin:
            assert console_hash is not None
            await people.add_console_admin(
                ctx, caller, after, password_hash=console_hash, must_change=True
            )
            return
        if old_email != new_email:
            await ctx.console.rename_user(
                old_email, new_email, email=new_email, origin=people.console_origin(caller)
            )
        if console_hash is not None:
            await ctx.console.set_password_hash(
                new_email, console_hash, must_change=False, origin=people.console_origin(caller)
            )

    async def _after_update(self, before: DirectoryUser, after: DirectoryUser) -> None:
        ctx = self._ctx
        ctx.index.set_user(after.login, after.organisation_id, after.profile.display_name)
        if before.can_login and not after.can_login:
            ctx.accounts.end_sessions(after.login, text="login disabled")
            await ctx.notify(UserDisabled(login=after.login))
        if after.is_org_admin and not before.is_org_admin:
            await self._mail_console_link(after)
        await ctx.notify(UserChanged(login=after.login, organisation_id=after.organisation_id))

    async def _mail_console_link(self, user: DirectoryUser) -> None:
        ctx = self._ctx
        org = await ctx.store.organisations.get(user.organisation_id)
        config = ConsoleConfig(
            domain=ctx.config.domain,
            base_url=ctx.config.links,
            reset_link_ttl=ctx.config.pin_reset_link_ttl,
        )
        reset = await ctx.console.request_reset(user.profile.email, config=config)
        if reset is None or org is None:
            return
        await ctx.send(
            admin_granted(
                to=user.profile.email,
                first_name=user.profile.first_name,
                organisation=org.name,
                url=reset.url,
                expires=expiry_text(reset.expires_at, org.settings.default_time_zone),
            )
        )

    async def _keep_an_admin(self, user: DirectoryUser) -> None:
        if await self._ctx.store.users.count_admins(user.organisation_id) <= 1:
            raise LastAdminError(
                "An organisation must keep at least one administrator; make another user "
                "an administrator first."
            )

    async def convert(self, caller: Caller, login: str, staff_type: StaffType) -> DirectoryUser:
        """Convert to Physician or Non-Physician Staff (physician fields are kept).

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
        """
        user = await self._ctx.user(caller, login)
        profile = replace(user.profile, staff_type=StaffType(staff_type))
        return await self.update(caller, login, UserUpdate(profile=profile))

    async def set_can_login(self, caller: Caller, login: str, can_login: bool) -> DirectoryUser:
        """Enable or disable login; disabling ends the user's sessions at once.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
        """
        return await self.update(caller, login, UserUpdate(can_login=can_login))

    async def unlock(
        self, caller: Caller, login: str, new_pin: str, *, pin_is_temporary: bool = False
    ) -> DirectoryUser:
        """Unlock a locked user: a new PIN is required (the user is not told it).

        Login is enabled too (the seed's procedure sets Can Login to Login Enabled).

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
            PinPolicyError: The PIN breaks the policy.
        """
        ctx = self._ctx
        user = await ctx.user(caller, login)
        ctx.check_write(caller)
        org = await ctx.organisation(caller, user.organisation_id)
        check_pin(new_pin, org.settings.pin_length)
        pin_hash = await ctx.hash_pin(new_pin)
        now = ctx.clock.now()
        async with ctx.store.db.transaction("unlock_directory_user"):
            await ctx.store.users.set_pin(
                user.login,
                StoredPin(pin_hash=pin_hash, is_temporary=pin_is_temporary, set_at=now),
            )
            await ctx.store.users.unlock(user.login)
            await ctx.store.users.set_disabled(user.login, False)
            await ctx.record(
                caller,
                "user.unlock",
                user.login,
                organisation=user.organisation_id,
                was_locked=user.is_locked,
                pin_is_temporary=pin_is_temporary,
            )
        return await ctx.user(caller, login)

    async def delete(self, caller: Caller, login: str) -> None:
        """Delete a user: account (ending its sessions), profile, PIN, memberships,
        console account and pending invitations to the address, in one transaction.

        The USERS record is kept for the message history, without e-mail and
        photo (docs/directory.md).

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
            LastAdminError: The organisation's last administrator.
        """
        ctx = self._ctx
        user = await ctx.user(caller, login, with_photo=False)
        ctx.check_write(caller)
        if user.is_org_admin:
            await self._keep_an_admin(user)
        groups = await ctx.store.groups.of_user(user.login)
        async with ctx.store.db.transaction("delete_directory_user"):
            await ctx.store.invitations.delete_open_for_email(user.profile.email, ctx.clock.now())
            if user.is_org_admin:
                await ctx.console.remove_user(
                    user.profile.email, origin=people.console_origin(caller)
                )
            await people.forget_users_record(ctx, caller, user.login)
            await ctx.store.users.remove(user.login)
            await ctx.record(
                caller,
                "user.delete",
                user.login,
                organisation=user.organisation_id,
                staff_id=user.staff_id,
                groups=[g.id for g in groups],
            )
        ctx.index.remove_user(user.login)
        await ctx.accounts.removed(user.login)
        await ctx.notify(
            UserDeleted(
                login=user.login,
                organisation_id=user.organisation_id,
                groups=tuple(g.id for g in groups),
            )
        )

    async def groups_of(self, caller: Caller, login: str) -> list[Group]:
        """The groups the user belongs to, by name.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
        """
        user = await self._ctx.user(caller, login, with_photo=False)
        return await self._ctx.store.groups.of_user(user.login)

    async def suggest_login(self, email: str) -> str:
        """A free login from the e-mail's local part (``jdoe``, then ``jdoe2``, …).

        Raises:
            InvalidEmailError: The address is malformed.
        """
        return await people.free_login(self._ctx, normalize_email(email))


def _changes(before: DirectoryUser, after: DirectoryUser) -> dict[str, object]:
    """Before/after of what changed, for the audit trail (no photo bodies, no secrets)."""
    old = {**_visible(before), "is_org_admin": before.is_org_admin, "can_login": before.can_login}
    new = {**_visible(after), "is_org_admin": after.is_org_admin, "can_login": after.can_login}
    changed = sorted(k for k in new if old.get(k) != new[k])
    return {"before": {k: old[k] for k in changed}, "after": {k: new[k] for k in changed}}


def _visible(user: DirectoryUser) -> dict[str, object]:
    values = asdict(user.profile)
    values["photo"] = bool(values.get("photo"))
    return values
