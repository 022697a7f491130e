"""Directory contacts as real roster items (RFC 6121 §2), kept in sync with the directory's groups.

Theory of operation: for every group of the organisation directory a user
belongs to, each other member is an item of the user's roster, with
subscription ``both``, the group's name as roster group (one per shared
group) and "First Last" as name. The directory is the source of truth:
:meth:`DirectoryRoster.sync` makes one user's *directory-made* items match
what the in-memory index says now, so it is idempotent and can be run for
anyone at any time.

- Which items the directory made is remembered per user in private storage
  under a key no client can name (XEP-0049 keys are ``{namespace}name``), so
  items the user added by hand are left alone, and removing someone from a
  group removes only the item the directory made, once no shared group
  remains. An item the user deleted comes back at the next sync (directory
  contacts are the organisation's, not the user's).
- Directory changes (membership, renames, deleted groups and users, names)
  mark the users they concern; one worker task owned by this feature syncs
  each marked user once, in order, off the administrator's request.
- A user's first session reconciles at bind (changes made while the server
  was down, or by another process before the index reload), before the
  client asks for its roster. What the last sync made is kept as a
  fingerprint of the wanted items, stored with the list and read for
  everyone in one query at start: a bind whose fingerprint still matches
  skips the reconciliation (no roster read at all). Any other write to the
  user's roster (a hand edit, a subscription change, the account's removal)
  forgets the fingerprint, in memory and in storage, so the next bind syncs.
- Changed items are pushed to the user's interested resources (RFC 6121
  §2.1.6) and presence follows the new subscription state: a new ``both``
  item sends the user's current presence to the contact, a removed one sends
  unavailable presence (RFC 6121 §3.1.5, §3.2.2), through the shared
  :class:`~carewire.features.roster.Rosters` service.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent
from carewire.core.feature import FeatureContext
from carewire.core.stores import RosterItem
from carewire.core.stores import Subscription as StoredSubscription
from carewire.directory.model import (
    DirectoryEvent,
    GroupDeleted,
    GroupId,
    MembershipChanged,
    UserChanged,
    UserDeleted,
)
from carewire.directory.service import DirectoryService
from carewire.features.roster import ITEM, Rosters, item_element
from carewire.xmpp.errors import RemoteProtocolError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import make, serialize

log = logging.getLogger(__name__)

#: Private-storage key of the contacts the directory made (not a Clark name: no client names it).
MANAGED_KEY: Final = "carewire/directory-roster"
NS: Final = "urn:carewire:directory:0"
MANAGED: Final = f"{{{NS}}}contacts"
CONTACT: Final = f"{{{NS}}}contact"
STOP_TIMEOUT: Final = 10.0

#: What a directory-made item should be: its name and roster groups, by contact bare JID.
Wanted = dict[str, tuple[str | None, tuple[str, ...]]]


class DirectoryRoster:
    """Keeps directory contacts in the rosters of the directory's users."""

    def __init__(self, ctx: FeatureContext, directory: DirectoryService) -> None:
        self.ctx = ctx
        self.index = directory.index
        self.rosters = Rosters.of(ctx)
        self.domain = ctx.hosts.domain
        self._names = {login: self.index.name_of(login) for login in self.index.all_users()}
        self._dirty: dict[str, None] = {}  # logins to sync, in order, each once
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._bound_tasks: set[asyncio.Task[None]] = set()
        self._synced: dict[str, str] = {}  # login → fingerprint of what its last sync made
        self._syncing: set[str] = set()  # logins whose roster this feature is writing now
        self._forgets: set[asyncio.Task[None]] = set()
        self.rosters.on_edit(self._on_roster_edit)

    # -- what the directory wants ---------------------------------------------------------

    def wanted(self, login: str) -> Wanted:
        """The directory-made items ``login`` should have now (from the index)."""
        shared: dict[str, set[str]] = {}
        for gid in self.index.groups_of(login):
            group = self.index.group(gid)
            if group is None:
                continue
            for member in self.index.members_of(gid):
                if member != login:
                    shared.setdefault(member, set()).add(group.name)
        return {
            f"{member}@{self.domain}": (
                self.index.name_of(member) or None,
                tuple(sorted(names, key=str.casefold)),
            )
            for member, names in shared.items()
        }

    # -- syncing one user ------------------------------------------------------------------

    async def sync(self, login: str) -> list[str]:
        """Make the directory-made items of ``login`` what the directory wants.

        Returns:
            The contacts whose item was created or removed.
        """
        wanted = self.wanted(login)
        pushes: list[tuple[int, Element]] = []
        gained: list[str] = []
        lost: list[str] = []
        async with self.rosters.locked(login) as roster:
            managed, stored = await self._managed(login)
            before = set(managed)
            self._syncing.add(login)
            try:
                for contact, (name, groups) in wanted.items():
                    item = roster.items.get(contact)
                    if item is not None and contact not in managed:
                        continue  # the user's own item: left alone
                    new = _directory_item(contact, name, groups, item)
                    if new == item:
                        continue
                    if item is None or item.subscription != StoredSubscription.BOTH:
                        gained.append(contact)
                    await self.rosters.save(login, roster, new)
                    await self.rosters.remove_pending(login, roster, contact)
                    managed.add(contact)
                    pushes.append((roster.version, item_element(new)))
                for contact in sorted(managed - wanted.keys()):
                    managed.discard(contact)
                    if await self.rosters.delete(login, roster, contact):
                        lost.append(contact)
                        pushes.append(
                            (roster.version, make(ITEM, {"jid": contact, "subscription": "remove"}))
                        )
            finally:
                self._syncing.discard(login)
            fingerprint = _fingerprint(wanted)
            if managed != before or stored != fingerprint:
                await self._save_managed(login, managed, fingerprint)
            self._synced[login] = fingerprint
        # RFC 6121 §2.1.6: every change reaches the interested resources as a roster push.
        for version, element in pushes:
            self.rosters.push(login, version, element)
        await self._presence(login, gained, available=True)
        await self._presence(login, lost, available=False)
        if gained or lost:
            log.debug("directory roster of %s: +%d -%d", login, len(gained), len(lost))
        return gained + lost

    async def _presence(self, login: str, contacts: list[str], *, available: bool) -> None:
        for contact in contacts:
            try:
                jid = JID.parse(contact)
            except InvalidJID:
                continue
            await self.rosters.send_presence_to(login, jid, available=available)

    async def _managed(self, login: str) -> tuple[set[str], str]:
        """The contacts the directory made for ``login``, and the stored fingerprint."""
        stored = await self.ctx.stores.private.get(login, MANAGED_KEY)
        root = _read_list(login, stored)
        if root is None:
            return set(), ""
        return {c.get("jid", "") for c in root.iter(CONTACT)} - {""}, root.get("fingerprint", "")

    async def _save_managed(self, login: str, contacts: set[str], fingerprint: str = "") -> None:
        attrs = {"fingerprint": fingerprint} if fingerprint else {}
        root = make(MANAGED, attrs, *(make(CONTACT, {"jid": c}) for c in sorted(contacts)))
        await self.ctx.stores.private.set(login, MANAGED_KEY, serialize(root, None))

    # -- the fingerprints of what was synced ----------------------------------------------

    async def load(self, _payload: object = None) -> None:
        """Hook ``server/started``: read every stored fingerprint (one query)."""
        for login, xml in (await self.ctx.stores.private.get_all(MANAGED_KEY)).items():
            root = _read_list(login, xml)
            fingerprint = "" if root is None else root.get("fingerprint", "")
            if fingerprint and login not in self._synced:
                self._synced[login] = fingerprint

    def is_current(self, login: str) -> bool:
        """Whether the last sync of ``login`` made what the directory wants now."""
        known = self._synced.get(login)
        return known is not None and known == _fingerprint(self.wanted(login))

    def _on_roster_edit(self, login: str) -> None:
        """Any roster write but ours: the next bind must reconcile again."""
        if login in self._syncing or self._synced.pop(login, None) is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._forget(login), name=f"directory-roster-forget:{login}"
        )
        self._forgets.add(task)
        task.add_done_callback(self._forgets.discard)

    async def _forget(self, login: str) -> None:
        """Drop the stored fingerprint (unless a sync has made a new one meanwhile)."""
        try:
            async with self.rosters.locked(login):
                if login in self._synced:
                    return
                managed, stored = await self._managed(login)
                if stored:
                    await self._save_managed(login, managed)
        except Exception:  # the account may be gone; logged, the next sync rewrites it
            log.exception("directory roster fingerprint of %s could not be dropped", login)

    # -- what to sync -------------------------------------------------------------------------

    def mark(self, logins: Iterable[str]) -> None:
        """Sync these users soon (in the worker), each once."""
        for login in logins:
            self._dirty[login] = None
        if self._dirty:
            self._idle.clear()
            self._wake.set()
            self._start()

    async def on_change(self, event: DirectoryEvent) -> None:
        """Directory listener: mark the users a change concerns."""
        if isinstance(event, MembershipChanged):
            members = self.index.members_of(event.group_id)
            self.mark({*members, *event.added, *event.removed})
        elif isinstance(event, GroupDeleted):
            self.mark(event.members)
        elif isinstance(event, UserDeleted):
            self._names.pop(event.login, None)
            self.mark(self._contacts_in(event.groups))
        elif isinstance(event, UserChanged):
            name = self.index.name_of(event.login)
            if self._names.get(event.login) != name:
                self._names[event.login] = name
                self.mark(self._contacts_in(self.index.groups_of(event.login)) - {event.login})

    def _contacts_in(self, groups: Iterable[GroupId]) -> set[str]:
        found: set[str] = set()
        for gid in groups:
            found |= self.index.members_of(gid)
        return found

    async def on_bound(self, event: SessionEvent) -> None:
        """Hook ``session/bound``: a directory user's first session reconciles its roster."""
        login = event.session.username
        if not self.index.has_profile(login) or len(self.ctx.sessions.of_user(login)) > 1:
            return
        if self.is_current(login):
            return  # nothing changed since the last sync: the roster is right as stored
        # The bind does not wait for the database: the reconciliation runs in its own task,
        # which takes the user's roster lock in its first step (before this hook returns), so
        # the client's first roster request is answered after it, with the directory's items.
        task = asyncio.get_running_loop().create_task(
            self._sync_bound(login), name=f"directory-roster-bind:{login}"
        )
        self._bound_tasks.add(task)
        task.add_done_callback(self._bound_tasks.discard)
        await asyncio.sleep(0)

    async def _sync_bound(self, login: str) -> None:
        try:
            changed = await self.sync(login)
        except Exception:  # logged; the next membership change or session syncs again
            log.exception("directory roster of %s could not be synced at sign-in", login)
            return
        # The contacts' side of what changed (both sides missed the same change).
        self.mark({c.partition("@")[0] for c in changed})

    # -- the worker -------------------------------------------------------------------------

    def _start(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(
                self._run(), name="directory-roster"
            )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                login = next(iter(self._dirty))
                del self._dirty[login]
                try:
                    await self.sync(login)
                except Exception:  # supervisor: one user's failure must not stop the others
                    log.exception("directory roster of %s could not be synced", login)
            self._idle.set()

    async def drain(self) -> None:
        """Return once every sign-in reconciliation and every marked user has been synced."""
        while self._bound_tasks or self._forgets:
            await asyncio.gather(*self._bound_tasks, *self._forgets, return_exceptions=True)
        await self._idle.wait()

    async def stop(self, _payload: object = None) -> None:
        """Hook ``server/stopping``: finish the marked syncs (bounded), then stop the worker."""
        try:
            await asyncio.wait_for(self.drain(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("directory roster: %d syncs abandoned at shutdown", len(self._dirty))
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def _fingerprint(wanted: Wanted) -> str:
    """A short digest of the wanted items (same items, same digest, in any order)."""
    text = repr(sorted(wanted.items()))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _read_list(login: str, stored: str | None) -> Element | None:
    if not stored:
        return None
    try:
        return parse_document(stored)
    except (RemoteProtocolError, ValueError):  # never written so: someone edited the database
        log.warning("directory roster list of %s unreadable: its items count as the user's", login)
        return None


def _directory_item(
    contact: str, name: str | None, groups: tuple[str, ...], old: RosterItem | None
) -> RosterItem:
    """The directory-made item: ``both``, no pending request, the directory's name and groups."""
    new = RosterItem(
        contact=contact, name=name, subscription=StoredSubscription.BOTH, groups=groups
    )
    if old is None:
        return new
    return replace(
        old,
        name=name,
        subscription=StoredSubscription.BOTH,
        is_pending_out=False,
        is_approved=False,
        groups=groups,
    )


def setup(ctx: FeatureContext) -> None:
    """Keep directory contacts in rosters: on directory changes and at a user's first bind."""
    directory = ctx.require(DirectoryService)
    roster = ctx.provide(DirectoryRoster(ctx, directory))
    directory.subscribe(roster.on_change)
    ctx.hooks.on(H.SESSION_BOUND, roster.on_bound)
    ctx.hooks.on(H.SERVER_STARTED, roster.load)
    ctx.hooks.on(H.SERVER_STOPPING, roster.stop)
