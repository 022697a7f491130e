"""Registration through an invitation link: one transaction creates the whole user.

The page (``/register/{token}``) shows the organisation and the e-mail and
asks login, names, cell number, password (twice), PIN (twice) and time zone.
Opening it records the click (User Clicked). Submitting creates, in one
transaction: the XMPP account with SCRAM keys, the directory profile, the
PIN, the USERS record, the memberships of the invitation's department group
and, for an administrator's invitation, the console account; the invitation
becomes Registered. Any failure leaves nothing behind and the link usable;
an expired, deleted or used link creates nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from carewire.core.accounts import AccountInput
from carewire.directory import fields, people
from carewire.directory.context import Facet
from carewire.directory.model import (
    OPEN_STATUSES,
    Caller,
    CallerRole,
    DirectoryUser,
    EmailTakenError,
    GroupId,
    InvalidFieldError,
    Invitation,
    InvitationEvent,
    InvitationStatus,
    LinkGoneError,
    MembershipChanged,
    Organisation,
    Profile,
    RegistrationForm,
    RegistrationInfo,
    StaffType,
    UserChanged,
)
from carewire.directory.policy import check_pin, next_status
from carewire.directory.store import StoredPin
from carewire.errors import CarewireError
from carewire.security.audit import Channel, Outcome
from carewire.security.console_auth import check_password, digest

log = logging.getLogger(__name__)


class Registration(Facet):
    """Registration through invitation links (``DirectoryService.registration``)."""

    async def _open(self, token: str) -> tuple[Invitation, Organisation]:
        """The invitation a link names, if it may still be used."""
        ctx = self._ctx
        stored = (
            await ctx.store.invitations.by_token(digest(token)) if 0 < len(token) <= 128 else None
        )
        if stored is None:
            raise LinkGoneError("unknown")
        inv = stored.invitation
        if stored.is_deleted:
            raise LinkGoneError("deleted")
        if inv.status not in OPEN_STATUSES:
            raise LinkGoneError("used" if inv.status is InvitationStatus.REGISTERED else "failed")
        if inv.expires_at <= ctx.clock.now():
            raise LinkGoneError("expired")
        org = await ctx.store.organisations.get(inv.organisation_id)
        if org is None:
            raise LinkGoneError("unknown")
        return inv, org

    async def _refused(self, token: str, exc: CarewireError, remote_ip: str) -> None:
        reason = getattr(exc, "reason", exc.code)
        await self._ctx.record_public(
            "register", "", Outcome.FAILURE, actor="web", remote_ip=remote_ip, reason=reason
        )

    async def info(self, token: str, *, remote_ip: str = "") -> RegistrationInfo:
        """What the registration page shows; records the click (User Clicked).

        Raises:
            LinkGoneError: The link is unknown, deleted, used or expired (HTTP 410).
        """
        ctx = self._ctx
        try:
            inv, org = await self._open(token)
        except LinkGoneError as exc:
            await self._refused(token, exc, remote_ip)
            raise
        if inv.status is not InvitationStatus.USER_CLICKED:
            clicked = next_status(inv.status, InvitationEvent.CLICKED)
            await ctx.store.invitations.set_status([inv.id], clicked, ctx.clock.now())
        fixed = inv.login is not None
        login = inv.login if inv.login is not None else await people.free_login(ctx, inv.email)
        return RegistrationInfo(
            organisation=org.name,
            email=inv.email,
            login=login,
            is_login_fixed=fixed,
            first_name=inv.first_name,
            last_name=inv.last_name,
            time_zone=org.settings.default_time_zone,
            pin_length=org.settings.pin_length,
            is_admin=inv.is_admin,
            expires_at=inv.expires_at,
        )

    async def register(
        self, token: str, form: RegistrationForm, *, remote_ip: str = ""
    ) -> DirectoryUser:
        """Register: create the user in one transaction and mark the invitation Registered.

        Raises:
            LinkGoneError: The link is unknown, deleted, used or expired (nothing created).
            InvalidFieldError: A field is not valid, or a confirmation differs
                (``field`` names it: ``login``, ``password_confirm``, …).
            PinPolicyError: The PIN breaks the organisation's policy.
            LoginTakenError: The login is taken.
            EmailTakenError: The address was registered meanwhile.
        """
        try:
            return await self._register(token, form, remote_ip)
        except CarewireError as exc:
            await self._refused(token, exc, remote_ip)
            raise

    async def _register(self, token: str, form: RegistrationForm, remote_ip: str) -> DirectoryUser:
        ctx = self._ctx
        inv, org = await self._open(token)
        existing = None
        if inv.login is not None:
            existing = await ctx.store.users.get(inv.login)
            if existing is None:
                raise LinkGoneError("user deleted")
            login = existing.login
        else:
            login = await people.check_free(ctx, form.login)
        profile = fields.profile(
            replace(
                existing.profile
                if existing is not None
                else Profile(first_name="", last_name="", email=inv.email),
                first_name=form.first_name,
                last_name=form.last_name,
                cell_number=form.cell_number,
                time_zone=form.time_zone or org.settings.default_time_zone,
                staff_type=StaffType(form.staff_type),
            )
        )
        if not profile.cell_number:
            raise InvalidFieldError("cell_number", "Cell (Private) is required.")
        _check_pair("password", form.password, form.password_confirm)
        check_password(form.password)
        check_pin(form.pin, org.settings.pin_length)
        _check_pair("pin", form.pin, form.pin_confirm)
        other = await ctx.store.users.get_by_email(inv.email)
        if other is not None and other.login != login:
            raise EmailTakenError(f"{inv.email} was registered meanwhile")
        account = ctx.accounts.prepare(
            AccountInput(
                login=login,
                password=form.password,
                first_name=profile.first_name,
                last_name=profile.last_name,
            )
        )
        pin_hash = await ctx.hash_pin(form.pin)
        is_admin = inv.is_admin or (existing is not None and existing.is_org_admin)
        console_hash = await ctx.console.hash_password(form.password) if is_admin else None
        caller = Caller(
            actor=f"web:{login}",
            role=CallerRole.ORG_ADMIN,
            organisation_id=org.id,
            channel=Channel.CONSOLE,
            remote_ip=remote_ip,
        )
        now = ctx.clock.now()
        async with ctx.store.db.transaction("register_user"):
            if existing is None:
                await people.check_login_free_in_txn(ctx, login)
                await ctx.accounts.stores.accounts.create(account)
                (staff_id,) = await ctx.store.users.next_staff_ids(1)
                user = DirectoryUser(
                    login=login,
                    organisation_id=org.id,
                    staff_id=staff_id,
                    profile=profile,
                    is_org_admin=is_admin,
                    created_at=now,
                    updated_at=now,
                )
                await ctx.store.users.add(user)
            else:
                await ctx.accounts.stores.accounts.set_credentials(login, account.credentials)
                user = replace(
                    existing,
                    profile=profile,
                    is_org_admin=is_admin,
                    is_registered=True,
                    updated_at=now,
                )
                await ctx.store.users.update(user)
            await ctx.store.users.set_pin(
                login, StoredPin(pin_hash=pin_hash, is_temporary=False, set_at=now)
            )
            await people.write_users_record(ctx, caller, user)
            joined = await self._join_department(org, inv, login)
            if console_hash is not None:
                await people.add_console_admin(
                    ctx, caller, user, password_hash=console_hash, must_change=False
                )
            if inv.status is not InvitationStatus.USER_CLICKED:
                next_status(inv.status, InvitationEvent.CLICKED)  # the click is recorded first
            next_status(InvitationStatus.USER_CLICKED, InvitationEvent.REGISTERED)
            await ctx.store.invitations.registered(inv.id, login, now)
            await ctx.record(
                caller,
                "user.register",
                login,
                organisation=org.id,
                invitation=inv.id,
                is_org_admin=is_admin,
                groups=joined,
            )
        ctx.index.set_user(login, org.id, profile.display_name)
        for gid in joined:
            ctx.index.add_members(gid, [login])
        await ctx.notify(UserChanged(login=login, organisation_id=org.id))
        for gid in joined:
            await ctx.notify(
                MembershipChanged(group_id=gid, organisation_id=org.id, added=(login,))
            )
        found = await ctx.store.users.get(login)
        assert found is not None
        return found

    async def _join_department(
        self, org: Organisation, inv: Invitation, login: str
    ) -> list[GroupId]:
        """Put the new user in the invitation's department group (if it still exists)."""
        if not inv.department:
            return []
        groups = await self._ctx.store.groups.by_names(org.id, [inv.department])
        group = groups.get(inv.department.lower())
        if group is None:
            return []
        await self._ctx.store.groups.add_members(group.id, [login])
        return [group.id]


def _check_pair(field: str, value: str, again: str) -> None:
    if value != again:
        label = "passwords" if field == "password" else "PINs"
        raise InvalidFieldError(f"{field}_confirm", f"The two {label} differ.")
