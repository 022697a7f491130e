"""Account management shared by the CLI, registration and (later) the console.

Passwords are turned into salted SCRAM keys here and never stored; removing
an account ends its sessions and tells the features (``account/removed``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from carewire.core import hook_names as H
from carewire.core.events import AccountEvent
from carewire.core.hooks import HookBus
from carewire.core.sessions import SessionManager
from carewire.core.stores import Account, NewAccount, ScramCredential, Stores
from carewire.errors import ValidationError
from carewire.xmpp.errors import StreamCondition
from carewire.xmpp.jid import InvalidJID, normalize_localpart
from carewire.xmpp.sasl import DEFAULT_ITERATIONS, SCRAM_MECHANISMS, derive_keys

log = logging.getLogger(__name__)

MAX_PASSWORD_BYTES = 1023


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountInput:
    """One account to create (CLI import rows, registration)."""

    login: str
    password: str
    first_name: str = ""
    last_name: str = ""


def normalize_login(login: str) -> str:
    """The canonical login (RFC 7622 localpart), or ValidationError naming the problem."""
    try:
        return normalize_localpart(login.strip())
    except InvalidJID as exc:
        raise ValidationError(f"invalid login {login!r}: {exc}", code="invalid-login") from None


def derive_credentials(
    password: str, iterations: int = DEFAULT_ITERATIONS
) -> list[ScramCredential]:
    """SCRAM keys for every supported hash; raises ValidationError for unusable passwords."""
    if not password:
        raise ValidationError("the password must not be empty", code="invalid-password")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError("the password is too long", code="invalid-password")
    creds = []
    for mech in SCRAM_MECHANISMS:
        try:
            k = derive_keys(password, mech, iterations)
        except ValueError as exc:  # SASLprep forbids some characters in passwords
            raise ValidationError(f"unusable password: {exc}", code="invalid-password") from None
        creds.append(
            ScramCredential(
                mechanism=mech,
                salt=k.salt,
                iterations=k.iterations,
                stored_key=k.stored_key,
                server_key=k.server_key,
            )
        )
    return creds


def unusable_credentials(iterations: int = DEFAULT_ITERATIONS) -> list[ScramCredential]:
    """SCRAM keys no password opens: random salts and random keys of the right sizes.

    For an account that may not sign in with a password yet (a directory user
    who has not registered): as safe as the keys of a random secret nobody
    knows (a proof would need a preimage of the stored key), without the key
    stretching that costs ~10 ms per account.
    """
    creds = []
    for mech in SCRAM_MECHANISMS:
        size = hashlib.new(mech.removeprefix("SCRAM-").replace("-", "").lower()).digest_size
        creds.append(
            ScramCredential(
                mechanism=mech,
                salt=secrets.token_bytes(16),
                iterations=iterations,
                stored_key=secrets.token_bytes(size),
                server_key=secrets.token_bytes(size),
            )
        )
    return creds


class AccountService:
    """Create, change and remove accounts."""

    def __init__(
        self,
        stores: Stores,
        *,
        hooks: HookBus | None = None,
        sessions: SessionManager | None = None,
        iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        self.stores = stores
        self.hooks = hooks
        self.sessions = sessions
        self.iterations = iterations

    def prepare(self, item: AccountInput) -> NewAccount:
        """Validate and derive keys for one account (CPU work, no I/O)."""
        return NewAccount(
            login=normalize_login(item.login),
            credentials=derive_credentials(item.password, self.iterations),
            first_name=item.first_name.strip(),
            last_name=item.last_name.strip(),
        )

    def prepare_without_password(self, item: AccountInput) -> NewAccount:
        """Validate one account that no password opens yet (:func:`unusable_credentials`)."""
        return NewAccount(
            login=normalize_login(item.login),
            credentials=unusable_credentials(self.iterations),
            first_name=item.first_name.strip(),
            last_name=item.last_name.strip(),
        )

    async def create(self, item: AccountInput) -> Account:
        """Create one account; ConflictError if the login is taken."""
        account = await self.stores.accounts.create(self.prepare(item))
        log.info("account created: %s", account.login)
        return account

    async def create_many(self, items: Iterable[NewAccount]) -> tuple[int, list[str]]:
        """Create prepared accounts in one transaction; returns (created, skipped logins)."""
        return await self.stores.accounts.create_many(items)

    async def set_password(self, login: str, password: str) -> None:
        """Replace the account's keys, revoke its FAST tokens; NotFoundError for unknown logins."""
        login = normalize_login(login)
        await self.stores.accounts.set_credentials(
            login, derive_credentials(password, self.iterations)
        )
        # A new password ends what the old one vouched for (XEP-0484 tokens, docs/sasl2.md).
        await self.stores.fast.delete_owner(login)
        log.info("password changed: %s", login)

    async def remove(self, login: str) -> bool:
        """Delete the account and all it owns; its sessions are closed."""
        login = normalize_login(login)
        removed = await self.stores.accounts.remove(login)
        if removed:
            await self.removed(login)
        return removed

    async def removed(self, login: str) -> None:
        """After an account was deleted (by :meth:`remove` or in a caller's transaction):
        close its sessions and tell the features (``account/removed``)."""
        log.info("account removed: %s", login)
        self.end_sessions(login, text="account removed")
        if self.hooks is not None:
            await self.hooks.fire(H.ACCOUNT_REMOVED, AccountEvent(login=login))

    async def set_disabled(self, login: str, is_disabled: bool) -> bool:
        """Disable or enable login ("Can Login"); disabling ends the account's sessions now.

        Returns:
            False if there is no such account.
        """
        login = normalize_login(login)
        done = await self.stores.accounts.set_disabled(login, is_disabled)
        if done:
            log.info("account %s: %s", "disabled" if is_disabled else "enabled", login)
            if is_disabled:
                self.end_sessions(login, text="login disabled")
        return done

    def end_sessions(
        self, login: str, resource: str | None = None, *, text: str = "account changed"
    ) -> int:
        """Close the sessions of ``login`` (only ``resource``'s when given), on every node.

        The stream ends with ``<not-authorized/>``; returns how many were closed.
        """
        if self.sessions is None:
            return 0
        closed = 0
        for s in self.sessions.of_user(login):
            if resource is None or s.jid.resource == resource:
                s.sink.close(StreamCondition.NOT_AUTHORIZED, text)
                closed += 1
        return closed

    async def unlock(self, login: str) -> bool:
        """Unlock an account locked after repeated failed logins."""
        login = normalize_login(login)
        done = await self.stores.accounts.unlock(login)
        if done:
            log.info("account unlocked: %s", login)
        return done
