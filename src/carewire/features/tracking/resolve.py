"""Ids a batch of tracking ops needs, looked up and created in bulk before it is applied.

Theory of operation: before :meth:`Recorder.commit` applies a batch one op
after the other, :func:`resolve` gathers every bare JID and conversation key
the batch names that the recorder's caches do not know, and settles them with
a handful of statements inside the batch's transaction: one key look-up per
dataset (IDENTITIES by name, USERS by login, CONVERSATIONS by key), then one
bulk create each for the users, identities and conversations still missing
(with one CONVERSATION_HISTORY row per new conversation). The ops then find
every id in the recorder's staged cache, as if the records had been created
one by one: same records, same order of creation per dataset, a few
statements instead of about eight per new conversation.

A conversation is created here only when the batch's first op naming it is a
message: one named first by a conversation op (ttl, topic, members) is left to
that op, so what it sets is what the record starts with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from carewire.datasets.service import Batch
from carewire.features.tracking.caches import Caches, Conv, RecentCaches
from carewire.features.tracking.ops import (
    DEFAULT_TTL,
    ConversationOp,
    ConvKey,
    DeliveryOp,
    MessageOp,
    Op,
    State,
)


@dataclass(slots=True)
class _Ids:
    """The recorder's caches as :func:`resolve` uses them."""

    known: RecentCaches  # committed
    staged: Caches  # made or read by the transaction in progress
    login_of: Callable[[str], str | None]
    statements: int = 0

    def user(self, login: str) -> object:
        return self.known.users.get(login) or self.staged.users[login]

    def identity(self, jid: str) -> object:
        return self.known.identities.get(jid) or self.staged.identities[jid]


def _jids_of(op: Op) -> list[str]:
    if isinstance(op, MessageOp):
        out = [*op.recipients, *op.members]
        if op.sender is not None:
            out.append(op.sender)
        return out
    if isinstance(op, DeliveryOp):
        return [op.recipient]
    out = [*(op.members or ()), *op.add_members, *op.remove_members]
    if op.actor:
        out.append(op.actor)
    return out


async def resolve(
    known: RecentCaches,
    staged: Caches,
    login_of: Callable[[str], str | None],
    b: Batch,
    ops: Sequence[Op],
) -> int:
    """Look up, and create where missing, the identities, users and conversations ``ops``
    name; new ids go to ``staged``. Returns how many identity records were created."""
    rec = _Ids(known, staged, login_of)
    await _identities(rec, b, ops)
    await _conversations(rec, b, ops)
    return rec.statements


async def _identities(rec: _Ids, b: Batch, ops: Sequence[Op]) -> None:
    known, staged = rec.known.identities, rec.staged.identities
    wanted = [
        jid
        for jid in dict.fromkeys(j for op in ops for j in _jids_of(op))
        if jid not in known and jid not in staged
    ]
    if not wanted:
        return
    for found in await b.find_many("IDENTITIES", [{"name": jid} for jid in wanted]):
        staged[str(found.get("name"))] = found.id
    missing = [jid for jid in wanted if jid not in staged]
    if not missing:
        return
    await _users(rec, b, [login for jid in missing if (login := rec.login_of(jid)) is not None])
    rows: list[dict[str, object]] = []
    for jid in missing:
        login = rec.login_of(jid)
        row: dict[str, object] = {"name": jid}
        if login is not None:
            row["usr"] = rec.user(login)
        rows.append(row)
    created = await b.create_many("IDENTITIES", rows, vouched=True)
    for jid, made in zip(missing, created, strict=True):
        staged[jid] = made.id
    rec.statements += len(created)


async def _users(rec: _Ids, b: Batch, logins: Sequence[str]) -> None:
    known, staged = rec.known.users, rec.staged.users
    wanted = [
        login for login in dict.fromkeys(logins) if login not in known and login not in staged
    ]
    if not wanted:
        return
    for found in await b.find_many("USERS", [{"login": login} for login in wanted]):
        staged[str(found.get("login"))] = found.id
    missing = [login for login in wanted if login not in staged]
    if missing:
        created = await b.create_many("USERS", [{"login": login} for login in missing])
        for login, made in zip(missing, created, strict=True):
            staged[login] = made.id


async def _conversations(rec: _Ids, b: Batch, ops: Sequence[Op]) -> None:
    known, staged = rec.known.conversations, rec.staged.conversations
    first: dict[ConvKey, Op] = {}
    for op in ops:
        if isinstance(op, MessageOp | ConversationOp) and op.key not in known:
            first.setdefault(op.key, op)
    wanted = [key for key in first if key not in staged]
    if not wanted:
        return
    keys = [{"jid1": key[0], "jid2": key[1]} for key in wanted]
    for found in await b.find_many("CONVERSATIONS", keys):
        key = (str(found.get("jid1")), str(found.get("jid2")))
        staged[key] = Conv(found.id, str(found.get("activity_state") or State.ACTIVE))
    new = [
        (key, op) for key in wanted if key not in staged and isinstance(op := first[key], MessageOp)
    ]
    if not new:
        return
    members = [login for _, op in new for jid in op.members if (login := rec.login_of(jid))]
    await _users(rec, b, members)
    rows = [
        {
            "jid1": key[0],
            "jid2": key[1],
            "ttl": DEFAULT_TTL,
            "activity_state": State.ACTIVE,
            "members": _users_of(rec, op.members),
        }
        for key, op in new
    ]
    created = await b.create_many("CONVERSATIONS", rows, vouched=True)
    history: list[dict[str, object]] = []
    for (key, op), made in zip(new, created, strict=True):
        staged[key] = Conv(made.id, State.ACTIVE)
        row: dict[str, object] = {"activity_state": State.ACTIVE, "conversation": made.id}
        if op.sender:
            row["member"] = rec.identity(op.sender)
        history.append(row)
    await b.create_many("CONVERSATION_HISTORY", history, vouched=True)


def _users_of(rec: _Ids, jids: Sequence[str]) -> list[object]:
    out: list[object] = []
    for jid in dict.fromkeys(jids):
        login = rec.login_of(jid)
        if login is not None:
            out.append(rec.user(login))
    return out
