"""Roster management (RFC 6121 §2): get, set, remove, pushes and versioning.

The :class:`Rosters` service holds each online user's roster in memory
(shared by the user's sessions, written through to ``ctx.stores.roster``)
so logins and presence broadcasts stay off the database; it is dropped when
the user's last session closes. The service is shared with the presence
feature, which applies the subscription state machine of
:mod:`carewire.xmpp.subscription` through it (RFC 6121 §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import AccountEvent, IqRequest, SessionEvent
from carewire.core.feature import FeatureContext, IqTarget, StreamPhase
from carewire.core.stores import RosterItem
from carewire.core.stores import Subscription as StoredSubscription
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.stanza import IQ, PRESENCE
from carewire.xmpp.subscription import StanzaType, State, Subscription
from carewire.xmpp.xml import deep_copy, make

log = logging.getLogger(__name__)

QUERY = f"{{{ns.ROSTER}}}query"
ITEM = f"{{{ns.ROSTER}}}item"
GROUP = f"{{{ns.ROSTER}}}group"

# RFC 6121 §2.3.3: "a server-configured limit" for names and group names.
MAX_NAME_LENGTH = 1023
MAX_GROUP_LENGTH = 1023

# Hook priorities: other features (blocking, …) act before the defaults; the
# cache is dropped after everything else saw the session close.
DROP_PRIORITY = -2000


@dataclass(slots=True, eq=False)
class UserRoster:
    """One user's roster: items by contact, the version, pending inbound requests."""

    version: int
    items: dict[str, RosterItem]
    pending_in: dict[str, str] = field(default_factory=dict)  # contact → request stanza XML

    def state(self, contact: str) -> State:
        """The RFC 6121 §A.1 subscription state with ``contact``."""
        item = self.items.get(contact)
        sub = Subscription.NONE if item is None else Subscription(item.subscription.value)
        pending_out = item is not None and item.is_pending_out
        return State.of(sub, pending_out=pending_out, pending_in=contact in self.pending_in)

    def contacts(self, wanted: Callable[[Subscription], bool]) -> list[str]:
        """Contacts whose subscription satisfies ``wanted`` (e.g. ``has_from``)."""
        return [
            c for c, item in self.items.items() if wanted(Subscription(item.subscription.value))
        ]


class _LoginLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Rosters:
    """The rosters of this server: cache, persistence, pushes (RFC 6121 §2)."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.store = ctx.stores.roster
        self._cache: dict[str, UserRoster] = {}
        self._locks: dict[str, _LoginLock] = {}
        self._push_ids = itertools.count(1)
        self._installed = False
        self._edit_listeners: list[Callable[[str], None]] = []

    @classmethod
    def of(cls, ctx: FeatureContext) -> Rosters:
        """The service of this kernel, created by whichever feature asks first.

        The roster and presence features share it through the context's
        service registry.
        """
        return ctx.find(cls) or ctx.provide(cls(ctx))

    # -- cache and persistence -------------------------------------------------

    def cached(self, login: str) -> UserRoster | None:
        """The in-memory roster of an online user, or None (no I/O)."""
        return self._cache.get(login)

    async def get(self, login: str) -> UserRoster:
        """The user's roster: from memory, or loaded (and kept while the user is online).

        While a read-modify-write of the roster is under way (or queued), the
        roster is read after it, never half done.
        """
        roster = self._cache.get(login)
        if roster is not None and login not in self._locks:
            return roster
        async with self.locked(login) as roster:
            return roster

    async def _load(self, login: str) -> UserRoster:
        # Called with the user's lock held: no write is half done meanwhile.
        roster = self._cache.get(login)
        if roster is not None:
            return roster
        version, items = await self.store.get_roster(login)
        pending = await self.store.list_pending_in(login)
        roster = UserRoster(version, {i.contact: i for i in items}, dict(pending))
        if self.ctx.sessions.local_of_user(login):
            self._cache[login] = roster
        return roster

    def drop(self, login: str) -> None:
        """Forget the in-memory roster of ``login``."""
        if self._cache.pop(login, None) is not None:
            log.debug("roster cache dropped for %s", login)

    @contextlib.asynccontextmanager
    async def locked(self, login: str) -> AsyncIterator[UserRoster]:
        """Serialise read-modify-write of one user's roster; yields the roster.

        Never route stanzas while holding it: delivery may need the contact's
        lock, and the contact's processing may answer back.
        """
        entry = self._locks.get(login)
        if entry is None:
            entry = self._locks[login] = _LoginLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield await self._load(login)
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[login]

    def on_edit(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(login)`` whenever an item of ``login``'s roster is written or removed.

        It is called with the user's roster lock held, before the write is
        pushed; it must not await (the directory roster forgets what it last
        synced there).
        """
        self._edit_listeners.append(listener)

    def _edited(self, login: str) -> None:
        for listener in self._edit_listeners:
            listener(login)
        self._written(login)

    def _written(self, login: str) -> None:
        # Other nodes of a cluster forget their copy of this roster (docs/cluster.md).
        if self.ctx.hooks.has_handlers(H.ROSTER_WRITTEN):
            self.ctx.hooks.fire_sync(H.ROSTER_WRITTEN, AccountEvent(login=login))

    async def save(self, login: str, roster: UserRoster, item: RosterItem) -> None:
        """Write one item through to the store and the in-memory roster."""
        roster.version = await self.store.set_item(login, item)
        roster.items[item.contact] = item
        self._edited(login)

    async def delete(self, login: str, roster: UserRoster, contact: str) -> bool:
        """Remove one item; False if there was none."""
        version = await self.store.remove_item(login, contact)
        roster.items.pop(contact, None)
        if version is None:
            return False
        roster.version = version
        self._edited(login)
        return True

    async def add_pending(self, login: str, roster: UserRoster, contact: str, xml: str) -> None:
        """Remember an inbound subscription request until the user answers it."""
        await self.store.add_pending_in(login, contact, xml)
        roster.pending_in[contact] = xml
        self._written(login)

    async def remove_pending(self, login: str, roster: UserRoster, contact: str) -> None:
        """Forget an inbound subscription request."""
        if roster.pending_in.pop(contact, None) is not None:
            await self.store.remove_pending_in(login, contact)
            self._written(login)

    # -- pushes ------------------------------------------------------------------

    def push(self, login: str, version: int, item: Element) -> None:
        """RFC 6121 §2.1.6: send a roster push to every interested resource."""
        for session in self.ctx.sessions.of_user(login):
            if not session.is_interested:
                continue
            query = make(QUERY, {"ver": str(version)}, deep_copy(item))
            iq = make(
                IQ, {"type": "set", "id": f"push{next(self._push_ids)}", "to": str(session.jid)}
            )
            iq.append(query)
            self.ctx.router.deliver(session, iq)

    # -- presence helpers shared with the presence feature ---------------------------

    async def send_presence_to(self, login: str, contact: JID, *, available: bool) -> None:
        """Send ``contact`` the current (or unavailable) presence of each available resource.

        RFC 6121 §3.1.5 (after approving a subscription) and §3.2.2/§3.3.3
        (after a subscription ends).
        """
        for session in self.ctx.sessions.available_of_user(login):
            if available:
                assert session.presence is not None
                stanza = deep_copy(session.presence)
                stanza.set("to", str(contact))
            else:
                stanza = make(
                    PRESENCE, {"type": "unavailable", "from": str(session.jid), "to": str(contact)}
                )
            await self.ctx.router.route(stanza, from_jid=session.jid, to_jid=contact)

    async def send_subscription(self, login: str, contact: JID, kind: StanzaType) -> None:
        """Route a server-generated subscription stanza from ``login`` to ``contact``."""
        own = JID(login, self.ctx.hosts.domain, None)
        stanza = make(PRESENCE, {"type": kind.value, "from": str(own), "to": str(contact)})
        await self.ctx.router.route(stanza, from_jid=own, to_jid=contact)

    # -- IQ handlers -----------------------------------------------------------------

    async def handle_get(self, req: IqRequest) -> Element | None:
        """RFC 6121 §2.1.3/§2.6: roster get (the resource becomes interested)."""
        login = req.sender_login
        if req.origin is not None and not req.origin.is_interested:
            req.origin.is_interested = True
            await self.ctx.hooks.fire(H.SESSION_CHANGED, SessionEvent(session=req.origin))
        roster = await self.get(login)
        ver = req.payload.get("ver")
        # §2.6.3: the roster did not change since the client's version: an empty
        # IQ result; later changes reach the client as roster pushes.
        if ver is not None and ver == str(roster.version):
            return None
        query = make(QUERY, {"ver": str(roster.version)})
        query.extend(item_element(i) for i in sorted(roster.items.values(), key=_by_contact))
        return query

    async def handle_set(self, req: IqRequest) -> Element | None:
        """RFC 6121 §2.3 and §2.5: add, update or remove one item."""
        login = req.sender_login
        items = [c for c in req.payload if c.tag == ITEM]
        # §2.3.3: "The server MUST return a <bad-request/> stanza error to the client
        # if ... the <query/> element contains more than one <item/> child element."
        if len(items) != 1:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "a roster set has exactly one item")
        el = items[0]
        contact = _item_jid(el, own=req.from_jid.bare)
        # §2.1.2.5: "in a roster set the server MUST ignore all values of the
        # 'subscription' attribute other than "remove"".
        if el.get("subscription") == "remove":
            await self.remove(login, contact)
            return None
        name, groups = _name_and_groups(el)
        async with self.locked(login) as roster:
            old = roster.items.get(str(contact))
            if old is None:
                new = RosterItem(contact=str(contact), name=name, groups=groups)
            else:  # 'ask', 'approved' and 'subscription' are the server's (§2.1.2)
                new = replace(old, name=name, groups=groups)
            await self.save(login, roster, new)
            version = roster.version
        # §2.3.2: "The server MUST also send a roster push containing the new roster
        # item to all of the user's interested resources".
        self.push(login, version, item_element(new))
        return None

    async def remove(self, login: str, contact: JID) -> None:
        """RFC 6121 §2.5: delete an item and end every subscription with the contact."""
        key = str(contact)
        async with self.locked(login) as roster:
            state = roster.state(key)
            # §2.5.3: "If the value of the 'jid' attribute specifies an item that is
            # not in the roster, then the server MUST return an <item-not-found/>".
            if key not in roster.items:
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
            await self.delete(login, roster, key)
            await self.remove_pending(login, roster, key)
            version = roster.version
        self.push(login, version, make(ITEM, {"jid": key, "subscription": "remove"}))
        # §2.5.2: the server MUST send 'unsubscribe' if the user was subscribed to
        # the contact (or asked to be) and 'unsubscribed' if the contact was
        # subscribed to the user (or asked to be).
        if state.subscription.has_to or state.pending_out:
            await self.send_subscription(login, contact, StanzaType.UNSUBSCRIBE)
        if state.subscription.has_from or state.pending_in:
            await self.send_subscription(login, contact, StanzaType.UNSUBSCRIBED)
        if state.subscription.has_from:
            await self.send_presence_to(login, contact, available=False)

    # -- lifecycle ---------------------------------------------------------------

    def install(self) -> None:
        """Register the cache lifecycle hooks (once, whichever feature comes first)."""
        if self._installed:
            return
        self._installed = True
        self.ctx.hooks.on(H.SESSION_CLOSED, self.on_session_closed, priority=DROP_PRIORITY)
        self.ctx.hooks.on(H.ACCOUNT_REMOVED, self.on_account_removed, priority=DROP_PRIORITY)

    def on_session_closed(self, event: SessionEvent) -> None:
        """Drop the cache when the user's last session closed."""
        login = event.session.username
        if not self.ctx.sessions.is_online(login):
            self.drop(login)

    def on_account_removed(self, event: AccountEvent) -> None:
        """The account and its roster are gone."""
        self.drop(event.login)
        self._edited(event.login)


def item_element(item: RosterItem) -> Element:
    """The ``<item/>`` of a roster result or push (RFC 6121 §2.1.2)."""
    attrs = {"jid": item.contact, "subscription": StoredSubscription(item.subscription).value}
    if item.name:
        attrs["name"] = item.name
    # §2.1.2.2: 'ask' only while a subscription request is pending.
    if item.is_pending_out:
        attrs["ask"] = "subscribe"
    if item.is_approved:
        attrs["approved"] = "true"
    return make(ITEM, attrs, *(make(GROUP, text=g) for g in item.groups))


def _by_contact(item: RosterItem) -> str:
    return item.contact


def _item_jid(el: Element, *, own: JID) -> JID:
    """The item's 'jid': a valid bare JID other than the user's own."""
    raw = el.get("jid")
    if not raw:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "the item has no 'jid'")
    try:
        jid = JID.parse(raw)
    except InvalidJID as exc:
        raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
    if jid.resource is not None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "roster items are bare JIDs")
    if jid == own:
        raise StanzaError(StanzaCondition.NOT_ALLOWED, "the own account is not a contact")
    return jid


def _name_and_groups(el: Element) -> tuple[str | None, tuple[str, ...]]:
    name = el.get("name") or None
    # §2.3.3: "The server MUST return a <not-acceptable/> stanza error to the client
    # if ... the length of the 'name' attribute is greater than a server-configured limit."
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "the name is too long")
    groups: list[str] = []
    for g in el:
        if g.tag != GROUP:
            continue
        text = g.text or ""
        # §2.3.3: not-acceptable when "the XML character data of the <group/>
        # element is of zero length" or "larger than a server-configured limit".
        if not text:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "empty group name")
        if len(text) > MAX_GROUP_LENGTH:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "the group name is too long")
        # §2.3.3: bad-request when "there are duplicate groups".
        if text in groups:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "duplicate group")
        groups.append(text)
    return name, tuple(groups)


async def _forbidden(_req: IqRequest) -> Element | None:
    # §2.1.5/§2.3.3: "The server MUST return a <forbidden/> stanza error to the client
    # if the sender of the roster set is not authorized to update the roster".
    raise StanzaError(StanzaCondition.FORBIDDEN, "only the account's own resources")


def setup(ctx: FeatureContext) -> None:
    """Register roster get/set, the versioning stream feature and the cache lifecycle."""
    rosters = Rosters.of(ctx)
    ctx.iq.register(QUERY, rosters.handle_get, types=("get",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(QUERY, rosters.handle_set, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(QUERY, _forbidden, types=("get", "set"), targets=(IqTarget.BARE,))
    # RFC 6121 §2.6.1: advertise roster versioning.
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{ns.ROSTER_VER}}}ver"))
    rosters.install()
