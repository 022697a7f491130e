"""Steps shared by creating, registering, changing and deleting users.

Each runs inside the caller's transaction (the stores' writes join it): the
USERS record through the dataset service, logins checked against accounts
and kept USERS records, console accounts of administrators.
"""

from __future__ import annotations

import logging

from carewire.datasets.model import Origin as RecordOrigin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.directory.context import Context
from carewire.directory.model import Caller, DirectoryUser, LoginTakenError
from carewire.directory.policy import check_login, login_candidates
from carewire.security.console_auth import Origin, Role

log = logging.getLogger(__name__)

USERS = "USERS"
#: Candidate logins asked about at once when suggesting one.
_BATCH = 20


def record_origin(caller: Caller) -> RecordOrigin:
    """The dataset service's origin of a write made for ``caller``."""
    return RecordOrigin(actor=caller.actor)


def console_origin(caller: Caller) -> Origin:
    """The console accounts' origin of an act made for ``caller``."""
    return Origin(actor=caller.actor, channel=caller.channel, remote_ip=caller.remote_ip)


async def users_record_logins(ctx: Context, logins: list[str]) -> set[str]:
    """Which of ``logins`` have a USERS record (kept after deletion, or made by presence)."""
    page = await ctx.datasets.query(
        USERS, Query(filters=(Filter(field="login", op=FilterOp.IN, value=logins),), limit=1000)
    )
    return {str(r.values.get("login")) for r in page.records}


async def check_free(ctx: Context, login: str) -> str:
    """``login`` checked and free: no account, no USERS record (whose history it would inherit).

    Raises:
        InvalidFieldError: Not a valid login.
        LoginTakenError: It is taken.
    """
    login = check_login(login)
    if await ctx.store.users.taken_logins([login]) or await users_record_logins(ctx, [login]):
        raise LoginTakenError(f"The login {login!r} is taken; choose another.")
    return login


async def free_login(ctx: Context, email: str) -> str:
    """The first free login suggested by ``email`` (``jdoe``, ``jdoe2``, …)."""
    candidates = login_candidates(email)
    while True:
        batch = [next(candidates) for _ in range(_BATCH)]
        taken = await ctx.store.users.taken_logins(batch) | await users_record_logins(ctx, batch)
        for login in batch:
            if login not in taken:
                return login


def users_record_values(user: DirectoryUser) -> dict[str, object]:
    """The USERS record's values of ``user`` (login, e-mail, names, title, photo)."""
    p = user.profile
    return {
        "login": user.login,
        "email": p.email,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "middle_initial": p.middle_name[:1] or None,
        "title": p.title or None,
        "reference_name": p.reference_name,
        "photo": p.photo or None,
        "photo_type": p.photo_type or None,
    }


async def write_users_record(ctx: Context, caller: Caller, user: DirectoryUser) -> None:
    """Create or update the user's USERS record (login, e-mail, names, title, photo)."""
    values = users_record_values(user)
    async with ctx.datasets.batch(record_origin(caller), "directory_users_record") as batch:
        await batch.upsert(USERS, values)


async def forget_users_record(ctx: Context, caller: Caller, login: str) -> None:
    """Keep a deleted user's USERS record for the message history, without e-mail and photo."""
    async with ctx.datasets.batch(record_origin(caller), "directory_users_record") as batch:
        found = await batch.find_many(USERS, [{"login": login}])
        for record in found:
            await batch.update(USERS, record.id, {"email": None, "photo": None, "photo_type": None})


async def add_console_admin(
    ctx: Context,
    caller: Caller,
    user: DirectoryUser,
    *,
    password_hash: str,
    must_change: bool,
) -> None:
    """The console account of an organisation administrator (username: their e-mail)."""
    await ctx.console.add_hashed_user(
        user.profile.email,
        Role.ORG_ADMIN,
        email=user.profile.email,
        password_hash=password_hash,
        must_change_password=must_change,
        organisation_id=user.organisation_id,
        origin=console_origin(caller),
    )


async def check_login_free_in_txn(ctx: Context, login: str) -> None:
    """Inside the transaction: refuse a login taken meanwhile.

    Raises:
        LoginTakenError: An account has it.
    """
    if await ctx.store.users.taken_logins([login]):
        raise LoginTakenError(f"The login {login!r} is taken; choose another.")
