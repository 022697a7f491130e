"""Reading the message archive (XEP-0313) from MESSAGES records, with XEP-0059 paging.

The archive order is ``received_at``: the tracker makes it strictly
increasing, so "after message X" is ``received_at > X.received_at``. Messages
of expired conversations (state ``expired``) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from carewire.datasets.model import Record, RecordId
from carewire.datasets.query import Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService
from carewire.features.tracking.ops import ROOM, ConvKey

CONVERSATION_PAGE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveFilter:
    """Which messages of an archive a query selects (the query form).

    Attributes:
        conversations: Conversation record ids making up the archive.
        sender: Only messages from this IDENTITIES record.
        start: Received at or after.
        end: Received at or before.
        after: Received strictly after (from ``after-id``).
        before: Received strictly before (from ``before-id``).
        uuids: Only these stanza ids.
    """

    conversations: tuple[int, ...]
    sender: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    after: datetime | None = None
    before: datetime | None = None
    uuids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Paging:
    """The RSM request: page size, and where the page starts or ends."""

    max: int
    after: datetime | None = None
    before: datetime | None = None
    is_backward: bool = False  # an RSM <before/> was given: the page ends at ``before``


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchivePage:
    """One page of archived messages, oldest first."""

    records: tuple[Record, ...]
    count: int
    first_index: int | None
    is_complete: bool


def _filters(f: ArchiveFilter, after: datetime | None, before: datetime | None) -> list[Filter]:
    out = [Filter(field="state", op=FilterOp.NE, value="expired")]
    if len(f.conversations) == 1:
        out.append(Filter(field="conversation", op=FilterOp.EQ, value=f.conversations[0]))
    else:
        out.append(Filter(field="conversation", op=FilterOp.IN, value=list(f.conversations)))
    if f.sender is not None:
        out.append(Filter(field="from", op=FilterOp.EQ, value=f.sender))
    if f.start is not None:
        out.append(Filter(field="received_at", op=FilterOp.GE, value=f.start))
    if f.end is not None:
        out.append(Filter(field="received_at", op=FilterOp.LE, value=f.end))
    if after is not None:
        out.append(Filter(field="received_at", op=FilterOp.GT, value=after))
    if before is not None:
        out.append(Filter(field="received_at", op=FilterOp.LT, value=before))
    if f.uuids:
        out.append(Filter(field="uuid", op=FilterOp.IN, value=list(f.uuids)))
    return out


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


async def fetch(svc: DatasetService, f: ArchiveFilter, paging: Paging) -> ArchivePage:
    """One page of the archive and the size of the whole result set."""
    if not f.conversations:
        return ArchivePage(records=(), count=0, first_index=None, is_complete=True)
    base = _filters(f, f.after, f.before)
    count_page = await svc.query("MESSAGES", Query(filters=tuple(base), limit=1))
    count = count_page.total
    if paging.max == 0:
        return ArchivePage(records=(), count=count, first_index=None, is_complete=count == 0)
    after = _later(f.after, paging.after)
    before = _earlier(f.before, paging.before)
    order = Sort(field="received_at", is_descending=paging.is_backward)
    page = await svc.query(
        "MESSAGES",
        Query(filters=tuple(_filters(f, after, before)), sort=(order,), limit=paging.max),
    )
    records = tuple(reversed(page.records)) if paging.is_backward else page.records
    remaining = page.total  # matches on this side of the RSM bound
    index = remaining - len(records) if paging.is_backward else count - remaining
    return ArchivePage(
        records=records,
        count=count,
        first_index=index if records else None,
        is_complete=remaining <= paging.max,
    )


async def account_conversations(svc: DatasetService, jid: str) -> dict[int, ConvKey]:
    """The two-person conversations of an account, by record id."""
    out: dict[int, ConvKey] = {}
    for field in ("jid1", "jid2"):
        offset = 0
        while True:
            query = Query(
                filters=(Filter(field=field, op=FilterOp.EQ, value=jid),),
                offset=offset,
                limit=CONVERSATION_PAGE,
            )
            page = await svc.query("CONVERSATIONS", query)
            for rec in page.records:
                key = (str(rec.get("jid1")), str(rec.get("jid2")))
                if key[1] != ROOM:
                    out[rec.id] = key
            if len(page.records) < CONVERSATION_PAGE:
                break
            offset += CONVERSATION_PAGE
    return out


async def find_message(svc: DatasetService, uid: str) -> Record | None:
    """A MESSAGES record by stanza id."""
    return await svc.store.find_by_key(svc.registry.get("MESSAGES"), {"uuid": uid})


async def find_conversation(svc: DatasetService, key: ConvKey) -> Record | None:
    """A CONVERSATIONS record by key."""
    ds = svc.registry.get("CONVERSATIONS")
    return await svc.store.find_by_key(ds, {"jid1": key[0], "jid2": key[1]})


async def find_identity(svc: DatasetService, jid: str) -> Record | None:
    """An IDENTITIES record by bare JID."""
    return await svc.store.find_by_key(svc.registry.get("IDENTITIES"), {"name": jid})


async def identity_names(svc: DatasetService, records: Sequence[Record]) -> dict[int, str]:
    """The names of the senders of ``records``, by IDENTITIES id."""
    ids = {RecordId(v) for r in records if isinstance(v := r.get("from"), int)}
    if not ids:
        return {}
    found = await svc.store.get_many(svc.registry.get("IDENTITIES"), sorted(ids))
    return {int(i): str(rec.get("name")) for i, rec in found.items()}


async def edge(svc: DatasetService, conversations: Sequence[int], *, last: bool) -> Record | None:
    """The oldest (or newest) archived message of some conversations."""
    if not conversations:
        return None
    f = ArchiveFilter(conversations=tuple(conversations))
    order = Sort(field="received_at", is_descending=last)
    page = await svc.query(
        "MESSAGES", Query(filters=tuple(_filters(f, None, None)), sort=(order,), limit=1)
    )
    return page.records[0] if page.records else None


async def is_member(svc: DatasetService, conversation: int, login: str) -> bool:
    """Whether a local login is among a conversation's members (USERS)."""
    ds = svc.registry.get("CONVERSATIONS")
    link = ds.link("members")
    assert link is not None
    ids = (await svc.store.follow(ds, link, [RecordId(conversation)]))[RecordId(conversation)]
    users = await svc.store.get_many(svc.registry.get("USERS"), ids)
    return any(u.get("login") == login for u in users.values())
