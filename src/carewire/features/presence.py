"""Presence (RFC 6121 §4) and presence subscriptions (RFC 6121 §3).

Outbound (what a client sends, hook ``pre-presence``): subscription stanzas
go through the §A.2 table of :mod:`carewire.xmpp.subscription`; presence
without 'to' is broadcast to the contacts subscribed to the user and to the
user's own available resources (initial presence also probes the contacts
the user is subscribed to); directed presence is remembered so the target
hears when the resource goes away. Inbound (``presence/bare`` and
``presence/full``): subscription stanzas go through the §A.3 table, probes
are answered, everything else is delivered by the §8.5 rules.

Rosters are read and written through the shared
:class:`carewire.features.roster.Rosters` service (in memory while the user
is online), so the broadcast paths never touch the database.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import AccountEvent, SessionEvent, StanzaEvent, SubscriptionEvent
from carewire.core.feature import FeatureContext, StreamPhase
from carewire.core.sessions import Session
from carewire.core.stores import RosterItem
from carewire.core.stores import Subscription as StoredSubscription
from carewire.features.roster import Rosters, UserRoster, item_element
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.stanza import PRESENCE
from carewire.xmpp.subscription import StanzaType, Subscription, Transition, inbound, outbound
from carewire.xmpp.xml import deep_copy, make, serialize, text_of

log = logging.getLogger(__name__)

PRIORITY = f"{{{ns.CLIENT}}}priority"
SUBSCRIPTION_TYPES = frozenset(t.value for t in StanzaType)
# Defaults run last so other features (blocking, …) can act on a stanza first.
DEFAULT_PRIORITY = -1000
_PRIORITY_RE = re.compile(r"[+-]?[0-9]+")
_DATA_KEY = "presence"


@dataclass(slots=True)
class _SessionPresence:
    """Per-session presence state kept in ``session.data``."""

    # RFC 6121 §4.6: where the session sent directed available presence.
    directed: set[JID] = field(default_factory=set)


def _session_state(session: Session) -> _SessionPresence:
    state = session.data.get(_DATA_KEY)
    if state is None:
        state = session.data[_DATA_KEY] = _SessionPresence()
    assert isinstance(state, _SessionPresence)
    return state


def sent_directed_presence(session: Session, jid: JID) -> bool:
    """Whether ``session`` holds directed available presence to ``jid``'s bare JID (or a resource).

    RFC 6121 §4.6: a remote room the user joined (any ``room/nick`` counts),
    or anyone the user chose to show its presence to without a subscription.
    """
    state = session.data.get(_DATA_KEY)
    if not isinstance(state, _SessionPresence):
        return False
    return any(t.bare == jid.bare for t in state.directed)


def parse_priority(stanza: Element) -> int:
    """RFC 6121 §4.7.2.3: the <priority/> of a presence (xs:byte, default 0).

    Raises:
        StanzaError: ``bad-request`` when the value is not an integer in -128..127.
    """
    text = text_of(stanza, PRIORITY)
    if text is None:
        return 0
    text = text.strip()
    if _PRIORITY_RE.fullmatch(text) is None:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "priority must be an integer")
    value = int(text)
    # §4.7.2.3: "The value MUST be an integer between -128 and +127."
    if not -128 <= value <= 127:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "priority must be between -128 and 127")
    return value


class Presence:
    """RFC 6121 §3 and §4 for the accounts of this domain."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.router = ctx.router
        self.sessions = ctx.sessions
        self.rosters = Rosters.of(ctx)

    # -- outbound: what a client sends -------------------------------------------------

    async def on_outbound(self, event: StanzaEvent) -> bool:
        """Hook ``pre-presence``: a local session sent a presence stanza."""
        ptype = event.stanza.get("type")
        session = event.origin
        if ptype in SUBSCRIPTION_TYPES:
            return await self.outbound_subscription(event, StanzaType(ptype))
        if ptype in ("probe", "error") or session is None:
            return False  # routed by address; probes are answered by the contact's side
        if ptype not in (None, "unavailable"):
            raise StanzaError(StanzaCondition.BAD_REQUEST, "unknown presence type")
        if event.to_jid is None:
            if ptype is None:
                await self.available(session, event.stanza)
            else:
                await self.unavailable(session, event.stanza)
            return True
        self._track_directed(session, event.to_jid, available=ptype is None)
        return False  # the router delivers directed presence

    async def available(self, session: Session, stanza: Element) -> None:
        """RFC 6121 §4.2 (initial) and §4.4 (subsequent) available presence."""
        session.priority = parse_priority(stanza)
        initial = session.presence is None
        session.presence = deep_copy(stanza)
        await self.ctx.hooks.fire(H.SESSION_CHANGED, SessionEvent(session=session))
        roster = await self.rosters.get(session.username)
        # §4.2.2/§4.4.2: broadcast to contacts with 'from'/'both' and to all of the
        # user's available resources (the sending one included).
        await self._broadcast(session, stanza, roster)
        if not initial:
            return
        # §4.2.2: the user's server probes each contact to which the user has a
        # subscription of type 'to' or 'both'.
        await self._probe_contacts(session, roster)
        # §3.1.3: pending subscription requests are delivered again at each login.
        for xml in list(roster.pending_in.values()):
            self.router.deliver(session, parse_document(xml))
        await self.ctx.hooks.fire(H.SESSION_INITIAL_PRESENCE, SessionEvent(session=session))

    async def unavailable(self, session: Session, stanza: Element) -> None:
        """RFC 6121 §4.5: unavailable presence (sent, or on the session's close)."""
        state = _session_state(session)
        targets = set(state.directed)
        state.directed.clear()
        if session.presence is not None:
            session.presence = None
            await self.ctx.hooks.fire(H.SESSION_CHANGED, SessionEvent(session=session))
            roster = await self.rosters.get(session.username)
            await self._broadcast(session, stanza, roster)
            reached = set(roster.contacts(_has_from))
            targets = {t for t in targets if str(t.bare) not in reached}
        # §4.6.3: the entities the user sent directed presence to hear it too.
        for target in sorted(targets, key=str):
            await self._route_copy(stanza, session.jid, target)

    async def _broadcast(self, session: Session, stanza: Element, roster: UserRoster) -> None:
        for contact in _jids(roster.contacts(_has_from)):
            await self._route_copy(stanza, session.jid, contact)
        await self._route_copy(stanza, session.jid, session.jid.bare)

    async def _route_copy(self, stanza: Element, sender: JID, to: JID) -> None:
        copy = deep_copy(stanza)
        copy.set("from", str(sender))
        copy.set("to", str(to))
        await self.router.route(copy, from_jid=sender, to_jid=to)

    async def _probe_contacts(self, session: Session, roster: UserRoster) -> None:
        """Probe the contacts of a newly available resource (RFC 6121 §4.3.1).

        For a contact of ours the user's server is also the contact's: the
        §4.3.2 answer is computed here instead of sending probe stanzas to
        ourselves. A contact on another domain gets a real probe "from the
        bare JID <user@domainpart> of the user to the bare JID of the
        contact"; its server answers the user's bare JID, which reaches every
        available resource.
        """
        user = session.jid.bare
        for jid in _jids(roster.contacts(_has_to)):
            if jid.domain == self.ctx.hosts.domain and jid.localpart is not None:
                self._send_presence_of(jid.localpart, jid, to=session)
            elif self.router.is_remote(jid) and self.router.remote is not None:
                probe = make(PRESENCE, {"type": "probe", "from": str(user), "to": str(jid)})
                await self.router.route(probe, from_jid=user, to_jid=jid)
        # The user is implicitly subscribed to their own presence.
        for other in self.sessions.available_of_user(session.username):
            if other is not session and other.presence is not None:
                self.router.deliver(session, self._presence_copy(other, session.jid))

    def _send_presence_of(self, login: str, bare: JID, *, to: Session) -> None:
        available = self.sessions.available_of_user(login)
        # §4.3.2: a contact without available resources is answered for with
        # presence of type 'unavailable'.
        if not available:
            attrs = {"type": "unavailable", "from": str(bare), "to": str(to.jid)}
            self.router.deliver(to, make(PRESENCE, attrs))
        for contact_session in available:
            self.router.deliver(to, self._presence_copy(contact_session, to.jid))

    @staticmethod
    def _presence_copy(session: Session, to: JID) -> Element:
        assert session.presence is not None
        copy = deep_copy(session.presence)
        copy.set("from", str(session.jid))
        copy.set("to", str(to))
        return copy

    def _track_directed(self, session: Session, target: JID, *, available: bool) -> None:
        """RFC 6121 §4.6.2: remember directed presence to non-subscribers."""
        state = _session_state(session)
        if not available:
            state.directed.discard(target)
            return
        if target.bare == session.jid.bare:
            return
        roster = self.rosters.cached(session.username)
        item = roster.items.get(str(target.bare)) if roster is not None else None
        if item is not None and Subscription(item.subscription.value).has_from:
            return  # the broadcast reaches subscribers anyway
        state.directed.add(target)

    # -- inbound: presence for an account of ours -----------------------------------

    async def on_bare(self, event: StanzaEvent) -> bool:
        """Hook ``presence/bare`` (RFC 6121 §8.5.2.1.1 for presence)."""
        assert event.to_jid is not None
        ptype = event.stanza.get("type")
        if ptype in SUBSCRIPTION_TYPES:
            await self.inbound_subscription(event, StanzaType(ptype))
        elif ptype == "probe":
            await self.answer_probe(event)
        else:
            # §8.5.2.1.1: presence with no type or of type 'unavailable': "the server
            # MUST deliver it to all available resources".
            login = event.to_jid.localpart
            assert login is not None
            for session in self.sessions.available_of_user(login):
                self.router.deliver(session, event.stanza)
        return True

    async def on_full(self, event: StanzaEvent) -> bool:
        """Hook ``presence/full`` (RFC 6121 §8.5.3)."""
        assert event.to_jid is not None
        ptype = event.stanza.get("type")
        if ptype in SUBSCRIPTION_TYPES or ptype == "probe":
            # §8.5.3.2.2 (and §3.1.3): subscription stanzas and probes to a full
            # JID are handled as if addressed to the bare JID.
            bare = replace(event, to_jid=event.to_jid.bare)
            return await self.on_bare(bare)
        session = self.sessions.get(event.to_jid)
        if session is not None:
            self.router.deliver(session, event.stanza)
        # §8.5.3.2.1: no such resource: presence is silently ignored.
        return True

    async def answer_probe(self, event: StanzaEvent) -> None:
        """RFC 6121 §4.3.2: answer a probe with the presence of each available resource."""
        assert event.to_jid is not None and event.to_jid.localpart is not None
        login, prober = event.to_jid.localpart, event.from_jid
        available = self.sessions.available_of_user(login)
        allowed = prober.bare == event.to_jid.bare
        if not allowed:
            roster = await self.rosters.get(login)
            item = roster.items.get(str(prober.bare))
            allowed = item is not None and Subscription(item.subscription.value).has_from
        if not allowed:
            # §4.3.2: nothing of the contact's presence is revealed to a
            # non-subscriber — except what the contact chose to send it (§4.6).
            available = [s for s in available if {prober, prober.bare} & _session_state(s).directed]
            if not available:
                return
        if not available:
            stanza = make(
                PRESENCE,
                {"type": "unavailable", "from": str(event.to_jid.bare), "to": str(prober)},
            )
            await self.router.route(stanza, from_jid=event.to_jid.bare, to_jid=prober)
            return
        for session in available:
            await self.router.route(
                self._presence_copy(session, prober), from_jid=session.jid, to_jid=prober
            )

    # -- subscriptions (RFC 6121 §3) -------------------------------------------------------

    async def outbound_subscription(self, event: StanzaEvent, kind: StanzaType) -> bool:
        """RFC 6121 §3 and §A.2: the user sent a subscription stanza."""
        if event.to_jid is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "a subscription stanza needs a 'to'")
        user, contact = event.from_jid.bare, event.to_jid.bare
        login = user.localpart
        assert login is not None
        if contact == user:
            return True  # the user is always subscribed to their own presence
        is_account = contact.localpart is not None and contact.domain == self.ctx.hosts.domain
        is_federated = self.router.is_remote(contact) and self.router.remote is not None
        if not is_account and not is_federated:
            # A service of ours, or another domain with federation off: the router
            # answers for the address (remote-server-not-found), the roster stays as it is.
            return False
        stanza = event.stanza
        # §3.1.2: the user's server "MUST stamp the outbound subscription request with
        # the bare JID <user@domainpart> of the user" (likewise §3.2.2, §3.3.2, §3.1.5).
        stanza.set("from", str(user))
        stanza.set("to", str(contact))
        async with self.rosters.locked(login) as roster:
            t = outbound(roster.state(str(contact)), kind)
            pushed = await self._apply(login, roster, str(contact), t)
            version = roster.version
        if pushed is not None:
            self.rosters.push(login, version, pushed)
        if t.forward:
            await self.router.route(stanza, from_jid=user, to_jid=contact)
        await self._follow_up(login, contact, t)
        return True

    async def inbound_subscription(self, event: StanzaEvent, kind: StanzaType) -> None:
        """RFC 6121 §3 and §A.3: a subscription stanza for one of our accounts."""
        assert event.to_jid is not None
        user, contact = event.to_jid.bare, event.from_jid.bare
        login = user.localpart
        assert login is not None
        if contact == user:
            return
        # §8.5.1: subscription stanzas for an account that does not exist are ignored.
        if not self.sessions.is_online(login) and not await self.ctx.stores.accounts.exists(login):
            return
        stanza = event.stanza
        stanza.set("from", str(contact))
        stanza.set("to", str(user))
        key = str(contact)
        async with self.rosters.locked(login) as roster:
            item = roster.items.get(key)
            pre_approved = item is not None and item.is_approved
            t = inbound(roster.state(key), kind, pre_approved=pre_approved)
            request = serialize(stanza, None) if kind is StanzaType.SUBSCRIBE else None
            pushed = await self._apply(login, roster, key, t, request=request)
            version = roster.version
        if pushed is not None:
            self.rosters.push(login, version, pushed)
        if t.forward:
            # §3.1.3: the request goes to all available resources; it is kept
            # (pending) and delivered again at each login until answered.
            for session in self.sessions.available_of_user(login):
                self.router.deliver(session, stanza)
        if t.auto_reply is not None:
            # §3.1.3: "the contact's server MUST auto-reply on behalf of the contact".
            await self.rosters.send_subscription(login, contact, t.auto_reply)
        await self._follow_up(login, contact, t)

    async def _apply(
        self,
        login: str,
        roster: UserRoster,
        contact: str,
        t: Transition,
        request: str | None = None,
    ) -> Element | None:
        """Persist a transition; returns the item to push, if the item changed."""
        old = roster.items.get(contact)
        approved = old is not None and old.is_approved
        if t.pre_approve:
            approved = True
        # §3.4: a pre-approval is used up once the contact is subscribed.
        if t.cancel_pre_approval or t.new.subscription.has_from:
            approved = False
        subscription = StoredSubscription(t.new.subscription.value)
        new: RosterItem | None
        if old is None:
            # No item yet: create one only when the client would see something.
            new = None
            if t.push:
                new = RosterItem(
                    contact=contact,
                    subscription=subscription,
                    is_pending_out=t.new.pending_out,
                    is_approved=approved,
                )
        else:
            new = replace(
                old,
                subscription=subscription,
                is_pending_out=t.new.pending_out,
                is_approved=approved,
            )
            if new == old:
                new = None
        if new is not None:
            await self.rosters.save(login, roster, new)
        if t.new.pending_in and not t.old.pending_in and request is not None:
            await self.rosters.add_pending(login, roster, contact, request)
        elif t.old.pending_in and not t.new.pending_in:
            await self.rosters.remove_pending(login, roster, contact)
        return None if new is None else item_element(new)

    async def _follow_up(self, login: str, contact: JID, t: Transition) -> None:
        if t.from_gained:
            # §3.1.5: "the contact's server MUST then also send current presence to
            # the user from each of the contact's available resources".
            await self.rosters.send_presence_to(login, contact, available=True)
            # XEP-0163 §4.3.2 and others follow the new subscription.
            await self.ctx.hooks.fire(
                H.PRESENCE_SUBSCRIBED, SubscriptionEvent(login=login, contact=contact)
            )
        elif t.from_lost:
            # §3.2.2/§3.3.3: the side whose presence is no longer wanted sends
            # unavailable presence from all of its available resources.
            await self.rosters.send_presence_to(login, contact, available=False)

    # -- lifecycle --------------------------------------------------------------------

    async def on_session_closed(self, event: SessionEvent) -> None:
        """RFC 6121 §4.5.2: a session that closes without unavailable presence."""
        session = event.session
        if session.presence is not None or _session_state(session).directed:
            stanza = make(PRESENCE, {"type": "unavailable", "from": str(session.jid)})
            await self.unavailable(session, stanza)

    async def on_account_removed(self, event: AccountEvent) -> None:
        """A removed account's resources go offline for its contacts."""
        for session in self.sessions.of_user(event.login):
            await self.on_session_closed(SessionEvent(session=session))


def _has_from(sub: Subscription) -> bool:
    return sub.has_from


def _has_to(sub: Subscription) -> bool:
    return sub.has_to


def _jids(contacts: list[str]) -> list[JID]:
    """Parsed contact JIDs; an unparsable stored one is skipped (items are validated when set)."""
    out = []
    for contact in contacts:
        try:
            out.append(JID.parse(contact))
        except InvalidJID:
            log.warning("skipping a roster item whose JID does not parse")
    return out


def setup(ctx: FeatureContext) -> None:
    """Register presence broadcast, probes, directed presence and subscriptions."""
    presence = Presence(ctx)
    presence.rosters.install()
    ctx.hooks.on(H.PRE_PRESENCE, presence.on_outbound, priority=DEFAULT_PRIORITY)
    ctx.hooks.on(H.PRESENCE_BARE, presence.on_bare, priority=DEFAULT_PRIORITY)
    ctx.hooks.on(H.PRESENCE_FULL, presence.on_full, priority=DEFAULT_PRIORITY)
    ctx.hooks.on(H.SESSION_CLOSED, presence.on_session_closed)
    ctx.hooks.on(H.ACCOUNT_REMOVED, presence.on_account_removed)
    # RFC 6121 §3.4: advertise subscription pre-approval.
    ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: make(f"{{{ns.PRE_APPROVAL}}}sub"))
