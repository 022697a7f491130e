"""Room bookmarks (XEP-0048 in private XML storage, XEP-0402 in PEP) recorded as
CONVERSATIONS.bookmarked_users.

A client that stores its bookmarks with XEP-0049 (``<storage xmlns='storage:bookmarks'>`` in
``jabber:iq:private``) still has them stored as-is by :mod:`carewire.features.private`; this
feature watches those writes and sets the user's ``bookmarks`` link (the reverse of
CONVERSATIONS.bookmarked_users) to the rooms of ``chat.DOMAIN`` the storage lists, so reports
and rules can see who keeps which conversation at hand. Rooms without a CONVERSATIONS record
yet are skipped; the next bookmark write picks them up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.datasets.model import Origin
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.datasets.service import DatasetService
from carewire.errors import CarewireError
from carewire.features.pep.bookmarks import BookmarkSync
from carewire.xmpp import ns
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

BOOKMARKS_NS = "storage:bookmarks"
_QUERY = f"{{{ns.PRIVATE}}}query"
_STORAGE = f"{{{BOOKMARKS_NS}}}storage"
_CONFERENCE = f"{{{BOOKMARKS_NS}}}conference"
#: Bookmarks looked at per write, at most.
MAX_BOOKMARKS = 200


class Bookmarks:
    """Mirrors a user's room bookmarks into the datasets."""

    def __init__(self, ctx: FeatureContext, datasets: DatasetService) -> None:
        self.ctx = ctx
        self.datasets = datasets
        self._tasks: set[asyncio.Task[None]] = set()

    def rooms_of(self, event: StanzaEvent) -> list[str] | None:
        """The room JIDs of a bookmark write to one's own private storage, or None."""
        iq = event.stanza
        if iq.get("type") != "set" or event.origin is None:
            return None
        query = iq.find(_QUERY)
        storage = query.find(_STORAGE) if query is not None else None
        if storage is None:
            return None
        rooms: list[str] = []
        for conference in storage.findall(_CONFERENCE)[:MAX_BOOKMARKS]:
            try:
                jid = JID.parse(conference.get("jid", "")).bare
            except InvalidJID:
                continue
            if jid.domain == self.ctx.hosts.chat_domain and jid.localpart:
                rooms.append(str(jid))
        return rooms

    def observe_rooms(self, login: str, jids: list[str]) -> None:
        """A PEP bookmarks change (XEP-0402, :mod:`carewire.features.pep.bookmarks`)."""
        rooms: list[str] = []
        for value in jids[:MAX_BOOKMARKS]:
            try:
                jid = JID.parse(value).bare
            except InvalidJID:
                continue
            if jid.domain == self.ctx.hosts.chat_domain and jid.localpart:
                rooms.append(str(jid))
        self._spawn(self.record(login, rooms))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def observe(self, event: StanzaEvent) -> bool:
        """``pre-iq``: note bookmark writes (the private storage feature still stores them)."""
        rooms = self.rooms_of(event)
        if rooms is not None and event.origin is not None:
            self._spawn(self.record(event.origin.username, rooms))
        return False

    async def record(self, login: str, rooms: list[str]) -> None:
        """Set ``login``'s bookmarked conversations to ``rooms``."""
        origin = Origin(adapter=None, actor=f"xmpp:{login}", depth=0)
        try:
            ids: list[int] = []
            if rooms:
                page = await self.datasets.query(
                    "CONVERSATIONS",
                    Query(
                        filters=(
                            Filter(field="jid1", op=FilterOp.IN, value=rooms),
                            Filter(field="jid2", op=FilterOp.EQ, value="ROOM"),
                        ),
                        limit=MAX_BOOKMARKS,
                    ),
                )
                ids = [r.id for r in page.records]
            await self.datasets.upsert("USERS", {"login": login, "bookmarks": ids}, origin=origin)
        except CarewireError as exc:  # never PHI: the error's code only
            log.warning("bookmarks of a user not recorded: %s", exc.code)

    async def settle(self, _payload: object = None) -> None:
        """Let pending writes finish (server stopping; tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)


def setup(ctx: FeatureContext) -> None:
    """Watch bookmark writes (recorded as CONVERSATIONS.bookmarked_users)."""
    bookmarks = ctx.provide(Bookmarks(ctx, ctx.require(DatasetService)))
    ctx.hooks.on(H.PRE_IQ, bookmarks.observe, priority=100)
    # XEP-0402: PEP bookmarks feed the same link (when the pep feature is loaded).
    sync = ctx.find(BookmarkSync)
    if sync is not None:
        sync.on_rooms(bookmarks.observe_rooms)
    ctx.hooks.on(H.SERVER_STOPPING, bookmarks.settle)
