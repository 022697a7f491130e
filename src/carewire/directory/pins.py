"""PINs: the policy's checks, argon2id hashes, verification with the account lockout, resets.

A PIN is hashed with argon2id (RFC 9106) off the event loop, like console
passwords. Wrong PINs count toward the account's lockout together with
wrong passwords (5 failures: a 3-minute delay; 10: locked). A temporary PIN
must be changed at its next use. Reset PIN mails a single-use link
(``pin_reset_link_ttl``); the store keeps its SHA-256 only.
"""

from __future__ import annotations

import logging

from carewire.core.auth import (
    DISABLED_TEXT,
    HARD_LIMIT_TEXT,
    LOCKED_TEXT,
    Admission,
    LockoutPolicy,
    admission,
)
from carewire.directory.context import Facet
from carewire.directory.mails import expiry_text, pin_changed, pin_reset
from carewire.directory.model import (
    AccountRefusedError,
    Caller,
    DirectoryUser,
    InvalidFieldError,
    LinkGoneError,
    PinCheck,
    PinPolicyError,
    PinResetInfo,
    UnknownUserError,
    WrongPinError,
)
from carewire.directory.policy import check_pin
from carewire.directory.store import PinReset, StoredPin
from carewire.mail import MailError
from carewire.security.audit import Channel, Outcome
from carewire.security.console_auth import digest

log = logging.getLogger(__name__)

_REFUSALS = {
    Admission.LOCKED: LOCKED_TEXT,
    Admission.DELAYED: HARD_LIMIT_TEXT,
    Admission.DISABLED: DISABLED_TEXT,
}


class Pins(Facet):
    """PIN verification, changes and resets (``DirectoryService.pins``)."""

    #: The account lockout (the XMPP login's defaults: 5 failures delay, 10 lock).
    policy = LockoutPolicy()

    async def _checked(self, login: str, pin: str, remote_ip: str) -> tuple[StoredPin, int]:
        """The stored PIN after a correct ``pin`` (failures counted and audited)."""
        ctx = self._ctx
        login = login.strip().lower()
        account = await ctx.accounts.stores.accounts.get(login)
        stored = await ctx.store.users.get_pin(login) if account is not None else None
        if account is None or stored is None:
            raise UnknownUserError(f"no directory user {login!r} with a PIN")
        now = ctx.clock.now()
        decision = admission(account, now, self.policy)
        if decision is not Admission.ALLOW:
            await self._audit(login, Outcome.FAILURE, remote_ip, reason=decision.value)
            raise AccountRefusedError(decision.value, _REFUSALS[decision])
        if not await ctx.pin_matches(stored.pin_hash, pin):
            after = await ctx.accounts.stores.accounts.record_failure(
                login, now, lock_after=self.policy.lock_after
            )
            await self._audit(
                login,
                Outcome.FAILURE,
                remote_ip,
                reason="wrong-pin",
                failed_logins=after.failed_logins,
            )
            raise WrongPinError("The PIN is not correct.")
        return stored, account.failed_logins

    async def _audit(self, login: str, outcome: Outcome, remote_ip: str, **details: object) -> None:
        await self._ctx.record_public(
            "pin.verify",
            login,
            outcome,
            actor=f"xmpp:{login}",
            channel=Channel.XMPP,
            remote_ip=remote_ip,
            **details,
        )

    async def has_pin(self, login: str) -> bool:
        """Whether the user has a PIN (which then unlocks the device's FAST token)."""
        return await self._ctx.store.users.has_pin(login.strip().lower())

    async def matches(self, login: str, pin: str, *, remote_ip: str = "") -> bool:
        """Whether ``pin`` is the user's PIN; a wrong one is audited but not counted here.

        For the FAST login (docs/sasl2.md), whose caller counts a wrong PIN
        as a failed login of the account (the same lockout as here).
        """
        login = login.strip().lower()
        stored = await self._ctx.store.users.get_pin(login)
        if stored is not None and await self._ctx.pin_matches(stored.pin_hash, pin):
            return True
        await self._audit(login, Outcome.FAILURE, remote_ip, reason="wrong-pin", via="fast")
        return False

    async def verify(self, login: str, pin: str, *, remote_ip: str = "") -> PinCheck:
        """Check a user's PIN (the XMPP PIN IQ); failures count toward the lockout.

        Raises:
            UnknownUserError: No directory user or no PIN set.
            AccountRefusedError: The account is locked, delayed or disabled.
            WrongPinError: The PIN is wrong.
        """
        stored, failures = await self._checked(login, pin, remote_ip)
        if failures:
            await self._ctx.accounts.stores.accounts.reset_failures(login.strip().lower())
        return PinCheck(must_change=stored.is_temporary)

    async def change_own(self, login: str, old: str, new: str, *, remote_ip: str = "") -> None:
        """The user changes their PIN (needed after a temporary one).

        Raises:
            UnknownUserError: No directory user or no PIN set.
            AccountRefusedError: The account is locked, delayed or disabled.
            WrongPinError: ``old`` is wrong (counts toward the lockout).
            PinPolicyError: ``new`` breaks the policy or equals ``old``.
        """
        ctx = self._ctx
        login = login.strip().lower()
        await self.verify(login, old, remote_ip=remote_ip)
        user = await self._user(login)
        check_pin(new, await self._pin_length(user))
        if new == old:
            raise PinPolicyError("The new PIN must differ from the current one.")
        pin_hash = await ctx.hash_pin(new)
        async with ctx.store.db.transaction("change_own_pin"):
            await ctx.store.users.set_pin(
                login, StoredPin(pin_hash=pin_hash, is_temporary=False, set_at=ctx.clock.now())
            )
            await ctx.record_public(
                "pin.change",
                login,
                Outcome.SUCCESS,
                actor=f"xmpp:{login}",
                channel=Channel.XMPP,
                remote_ip=remote_ip,
            )

    async def _user(self, login: str) -> DirectoryUser:
        user = await self._ctx.store.users.get(login, with_photo=False)
        if user is None:
            raise UnknownUserError(f"no directory user {login!r}")
        return user

    async def _pin_length(self, user: DirectoryUser) -> int:
        org = await self._ctx.store.organisations.get(user.organisation_id)
        return 4 if org is None else org.settings.pin_length

    async def set(
        self, caller: Caller, login: str, pin: str, *, is_temporary: bool = False
    ) -> None:
        """Change PIN: an administrator sets it (the user is not told).

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
            PinPolicyError: The PIN breaks the policy.
        """
        ctx = self._ctx
        user = await ctx.user(caller, login, with_photo=False)
        ctx.check_write(caller)
        check_pin(pin, await self._pin_length(user))
        pin_hash = await ctx.hash_pin(pin)
        async with ctx.store.db.transaction("set_pin"):
            await ctx.store.users.set_pin(
                user.login,
                StoredPin(pin_hash=pin_hash, is_temporary=is_temporary, set_at=ctx.clock.now()),
            )
            await ctx.record(
                caller,
                "pin.set",
                user.login,
                organisation=user.organisation_id,
                is_temporary=is_temporary,
            )

    async def request_reset(self, caller: Caller, login: str) -> None:
        """Reset PIN: mail the user a single-use link to choose a new PIN.

        Raises:
            UnknownUserError: Not a user of the caller's organisation.
            ReadOnlyError: An auditor.
            MailError: The mail could not be sent (the link is withdrawn).
        """
        ctx = self._ctx
        user = await ctx.user(caller, login, with_photo=False)
        ctx.check_write(caller)
        org = await ctx.organisation(caller, user.organisation_id)
        token, key = ctx.new_token()
        now = ctx.clock.now()
        expires = now + ctx.config.pin_reset_link_ttl
        async with ctx.store.db.transaction("request_pin_reset"):
            await ctx.store.users.add_pin_reset(
                key, PinReset(login=user.login, created_at=now, expires_at=expires)
            )
            await ctx.record(caller, "pin.reset.request", user.login, organisation=org.id)
        mail = pin_reset(
            to=user.profile.email,
            first_name=user.profile.first_name,
            url=ctx.link(f"/pin-reset/{token}"),
            expires=expiry_text(expires, org.settings.default_time_zone),
            pin_length=org.settings.pin_length,
        )
        if not await ctx.send(mail):
            await ctx.store.users.use_pin_reset(key, now)  # withdrawn: nobody has it
            raise MailError(f"the PIN reset e-mail to {user.profile.email} could not be sent")

    async def _reset(self, token: str) -> tuple[str, PinReset]:
        ctx = self._ctx
        key = digest(token) if 0 < len(token) <= 128 else ""
        reset = await ctx.store.users.get_pin_reset(key) if key else None
        if reset is None:
            raise LinkGoneError("unknown")
        if reset.used_at is not None:
            raise LinkGoneError("used")
        if reset.expires_at <= ctx.clock.now():
            raise LinkGoneError("expired")
        return key, reset

    async def reset_info(self, token: str) -> PinResetInfo:
        """What the PIN-reset page shows for a valid link.

        Raises:
            LinkGoneError: Unknown, used or expired.
        """
        _, reset = await self._reset(token)
        user = await self._user(reset.login)
        return PinResetInfo(
            login=user.login, pin_length=await self._pin_length(user), expires_at=reset.expires_at
        )

    async def complete_reset(
        self, token: str, pin: str, pin_confirm: str, *, remote_ip: str = ""
    ) -> None:
        """Set the new PIN through a reset link (uses it up); a confirmation is mailed.

        Raises:
            LinkGoneError: Unknown, used or expired.
            PinPolicyError: The PIN breaks the policy (the link stays usable).
            InvalidFieldError: The two PINs differ (``field`` is ``pin_confirm``).
        """
        ctx = self._ctx
        try:
            key, reset = await self._reset(token)
        except LinkGoneError as exc:
            await ctx.record_public(
                "pin.reset.complete",
                "",
                Outcome.FAILURE,
                actor="web",
                remote_ip=remote_ip,
                reason=exc.reason,
            )
            raise
        user = await self._user(reset.login)
        org = await ctx.store.organisations.get(user.organisation_id)
        check_pin(pin, await self._pin_length(user))
        if pin != pin_confirm:
            raise InvalidFieldError("pin_confirm", "The two PINs differ.")
        pin_hash = await ctx.hash_pin(pin)
        now = ctx.clock.now()
        async with ctx.store.db.transaction("complete_pin_reset"):
            if not await ctx.store.users.use_pin_reset(key, now):
                raise LinkGoneError("used")
            await ctx.store.users.set_pin(
                user.login, StoredPin(pin_hash=pin_hash, is_temporary=False, set_at=now)
            )
            await ctx.record_public(
                "pin.reset.complete",
                user.login,
                Outcome.SUCCESS,
                actor=f"web:{user.login}",
                remote_ip=remote_ip,
            )
        tz = org.settings.default_time_zone if org is not None else "UTC"
        await ctx.send(
            pin_changed(
                to=user.profile.email,
                first_name=user.profile.first_name,
                when=expiry_text(now, tz),
            )
        )
