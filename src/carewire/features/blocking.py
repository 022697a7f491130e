"""XEP-0191 Blocking Command: block lists, their pushes, and enforcing them.

Theory of operation
-------------------
Block lists live in :class:`~carewire.core.stores.BlockingStore`; the list of
every account with a bound session is cached here (loaded on
``session/bound``, dropped when its last session closes) so the synchronous
delivery path can consult it. Enforcement happens at three points:

* ``pre-message`` / ``pre-presence`` / ``pre-iq`` (what a local client
  sends): a stanza to a JID the sender blocked is refused (XEP-0191 §3.3:
  ``not-acceptable`` with ``<blocked xmlns='urn:xmpp:blocking:errors'/>``;
  presence is dropped silently); an IQ get/set to an account that blocked
  the sender gets ``service-unavailable`` (also covers IQs to a bare JID
  that the server answers on the account's behalf).
* ``message/…`` and ``presence/…`` for bare and full JIDs: stanzas from a
  blocked entity never reach the account, online or offline.
* ``session/deliver``: the last check before a stanza is written to a
  session, in both directions (this catches presence broadcasts, which have
  no single addressee when they are sent).

Stanzas between an account and itself and from or to the server's own JID
are never blocked, so a user who blocks their own domain can still talk to
the server (and unblock it).
"""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement

from carewire.core import hook_names as H
from carewire.core.events import AccountEvent, DeliveryEvent, IqRequest, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext, IqTarget
from carewire.core.stores import Subscription
from carewire.errors import NotFoundError
from carewire.xmpp import ns, stanza
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

BLOCKLIST = f"{{{ns.BLOCKING}}}blocklist"
BLOCK = f"{{{ns.BLOCKING}}}block"
UNBLOCK = f"{{{ns.BLOCKING}}}unblock"
ITEM = f"{{{ns.BLOCKING}}}item"
BLOCKED_ERROR = f"{{{ns.BLOCKING_ERRORS}}}blocked"

# session.data key: this resource requested the block list and gets pushes.
INTERESTED = "blocking.interested"

# Enforcement runs before the delivery features (message, presence, offline).
PRIORITY = 1000

#: The block list of an account that blocks nothing (one shared empty set, not one per user).
NOTHING: frozenset[str] = frozenset()
# Forget a closed account's list only after the other features reacted to the close.
CLOSE_PRIORITY = -2000

# The contact receives the user's presence / the user receives the contact's.
_HAS_FROM = frozenset({Subscription.FROM, Subscription.BOTH})
_HAS_TO = frozenset({Subscription.TO, Subscription.BOTH})


def matches(blocked: frozenset[str], jid: JID) -> bool:
    """Whether ``jid`` is covered by a block list.

    XEP-0191 §4 (JID Matching): items match in the order
    <user@domain/resource> (only that resource), <user@domain> (any
    resource), <domain/resource> (only that resource), <domain> ("the domain
    itself matches, as does any user@domain, domain/resource, or address
    containing a subdomain"). A <domain/resource> item also covers
    <user@domain/resource>, as in XEP-0016 implementations.
    """
    if not blocked:
        return False
    if str(jid) in blocked:
        return True
    if jid.localpart is not None and f"{jid.localpart}@{jid.domain}" in blocked:
        return True
    if jid.resource is not None and f"{jid.domain}/{jid.resource}" in blocked:
        return True
    labels = jid.domain.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels)))


def _blocked_error() -> StanzaError:
    # XEP-0191 §3.3: "the user's server MUST NOT route the stanza to the contact
    # but instead MUST return a <not-acceptable/> error containing an
    # application-specific error condition of <blocked/>" (type as in Example 10).
    return StanzaError(
        StanzaCondition.NOT_ACCEPTABLE,
        error_type="cancel",
        app_condition=Element(BLOCKED_ERROR),
    )


def _parse_items(payload: Element) -> list[JID]:
    """The <item jid='…'/> children as JIDs (jid-malformed for invalid ones)."""
    jids: list[JID] = []
    for item in payload:
        if item.tag != ITEM:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "unexpected child element")
        value = item.get("jid")
        if value is None:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "item without a jid")
        try:
            jids.append(JID.parse(value))
        except InvalidJID as exc:
            raise StanzaError(StanzaCondition.JID_MALFORMED, str(exc)) from None
    return list({str(j): j for j in jids}.values())


def _items(tag: str, jids: Iterable[str]) -> Element:
    el = Element(tag)
    for jid in jids:
        SubElement(el, ITEM, {"jid": jid})
    return el


class Blocking:
    """Block list commands, pushes, presence side effects and enforcement."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx
        self.domain = ctx.hosts.domain
        # login -> blocked JIDs, for accounts with at least one bound session.
        self.cache: dict[str, frozenset[str]] = {}
        # Logins known to block something; None until loaded (then: always ask the store).
        self.owners: set[str] | None = None

    async def load_owners(self, _payload: object = None) -> None:
        """Remember who blocks anything so most logins skip the database."""
        self.owners = await self.ctx.stores.blocking.owners()

    # -- lists ------------------------------------------------------------------

    async def blocklist(self, login: str) -> frozenset[str]:
        """The account's block list (from the cache when it is online)."""
        cached = self.cache.get(login)
        if cached is not None:
            return cached
        if self.owners is not None and login not in self.owners:
            return NOTHING  # blocks nothing: no query per message to an offline account
        return frozenset(await self.ctx.stores.blocking.list(login))

    async def _reload(self, login: str) -> frozenset[str]:
        blocked = frozenset(await self.ctx.stores.blocking.list(login))
        if self.owners is not None and blocked:
            self.owners.add(login)
        if self.ctx.sessions.is_online(login):
            self.cache[login] = blocked
        return blocked

    async def on_bound(self, event: SessionEvent) -> None:
        """Load the list of an account that just came online."""
        login = event.session.username
        if login not in self.cache:
            if self.owners is not None and login not in self.owners:
                self.cache[login] = NOTHING
                return
            blocked = frozenset(await self.ctx.stores.blocking.list(login))
            # A block command may have refreshed the cache while we waited.
            self.cache.setdefault(login, blocked)

    def on_closed(self, event: SessionEvent) -> None:
        """Forget the list once the account's last session is gone."""
        login = event.session.username
        if not self.ctx.sessions.is_online(login):
            self.cache.pop(login, None)

    def on_account_removed(self, event: AccountEvent) -> None:
        """A removed account blocks nothing any more."""
        self.cache.pop(event.login, None)

    # -- the IQ commands ----------------------------------------------------------

    async def get(self, req: IqRequest) -> Element | None:
        """XEP-0191 §3.2: return the block list; the resource now receives pushes."""
        login = req.sender_login
        if req.origin is not None:
            req.origin.data[INTERESTED] = True
        # "If the user has no contacts in its blocklist, the server MUST return
        # an IQ-result containing an empty <blocklist/> element".
        return _items(BLOCKLIST, sorted(await self.blocklist(login)))

    async def block(self, req: IqRequest) -> Element | None:
        """XEP-0191 §3.3: block one or more JIDs."""
        login = req.sender_login
        jids = _parse_items(req.payload)
        if not jids:
            # "If the <block/> element does not contain at least one <item/>
            # child element, the server MUST return a <bad-request/> error."
            raise StanzaError(StanzaCondition.BAD_REQUEST, "block needs at least one item")
        before = await self.blocklist(login)
        added = [j for j in jids if str(j) not in before]
        try:
            await self.ctx.stores.blocking.add(login, [str(j) for j in jids])
        except NotFoundError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such account") from None
        # "the user's server MUST send unavailable presence information to the
        # contact (but only if the contact is allowed to receive presence
        # notifications from the user" — sent before the new list takes effect,
        # or the delivery filter would swallow it.
        await self._send_presence(login, added, unavailable=True)
        await self._reload(login)
        log.info("%s blocked %d JIDs", login, len(added))
        # "The server MUST also send an IQ-set to all of the user's resources
        # that have requested the blocklist, containing the blocked item(s)".
        self._push(login, _items(BLOCK, [str(j) for j in jids]))
        return None

    async def unblock(self, req: IqRequest) -> Element | None:
        """XEP-0191 §3.4/§3.5: unblock some JIDs, or all of them (no items)."""
        login = req.sender_login
        jids = _parse_items(req.payload)
        before = await self.blocklist(login)
        if jids:
            removed = [j for j in jids if str(j) in before]
            await self.ctx.stores.blocking.remove(login, [str(j) for j in jids])
        else:
            removed = [JID.parse(j) for j in sorted(before)]
            await self.ctx.stores.blocking.clear(login)
        await self._reload(login)
        log.info("%s unblocked %d JIDs", login, len(removed))
        # §3.4: "the user's server MUST send the user's current presence
        # information to the contact (but only if the contact is allowed to
        # receive presence notifications from the user ...)".
        await self._send_presence(login, removed, unavailable=False)
        await self._probe(login, removed)
        self._push(login, _items(UNBLOCK, [str(j) for j in jids]))
        return None

    def _push(self, login: str, payload: Element) -> None:
        for session in self.ctx.sessions.of_user(login):
            if not session.data.get(INTERESTED):
                continue
            iq = Element(
                stanza.IQ,
                {"type": "set", "id": "block-" + secrets.token_hex(6), "to": str(session.jid)},
            )
            iq.append(copy.deepcopy(payload))
            self.ctx.router.send_from_server(session, iq)

    async def _send_presence(self, login: str, changed: list[JID], *, unavailable: bool) -> None:
        """Presence from each available resource to the affected contacts that may see it."""
        available = self.ctx.sessions.available_of_user(login)
        if not changed or not available:
            return
        targets = await self._affected_contacts(login, changed, _HAS_FROM)
        for session in available:
            for target in targets:
                if unavailable or session.presence is None:
                    presence = Element(stanza.PRESENCE, {"type": "unavailable"})
                else:
                    presence = copy.deepcopy(session.presence)
                    presence.attrib.pop("id", None)
                presence.set("from", str(session.jid))
                presence.set("to", str(target))
                await self.ctx.router.route(presence, from_jid=session.jid, to_jid=target)

    async def _probe(self, login: str, changed: list[JID]) -> None:
        """Ask unblocked contacts for their presence (it was dropped while they were blocked).

        Not required by XEP-0191, but without it the user would see the contact
        offline until the contact's next presence change (RFC 6121 §4.3 probes
        go out from the user's bare JID).
        """
        if not changed or not self.ctx.sessions.available_of_user(login):
            return
        user = JID(login, self.domain, None)
        contacts = await self._affected_contacts(login, changed, _HAS_TO)
        for contact in {c.bare for c in contacts}:
            probe = Element(
                stanza.PRESENCE, {"type": "probe", "from": str(user), "to": str(contact)}
            )
            await self.ctx.router.route(probe, from_jid=user, to_jid=contact)

    async def _affected_contacts(
        self, login: str, changed: list[JID], wanted: frozenset[Subscription]
    ) -> list[JID]:
        """Local roster contacts covered by ``changed`` whose subscription is in ``wanted``.

        A user or resource item is returned as given (a full JID stays full);
        a domain item expands to the matching contacts' bare JIDs.
        """
        _version, items = await self.ctx.stores.roster.get_roster(login)
        contacts: dict[str, JID] = {}
        for item in items:
            if item.subscription not in wanted:
                continue
            try:
                contact = JID.parse(item.contact)
            except InvalidJID:
                continue
            if contact.domain == self.domain and contact.localpart is not None:
                contacts[str(contact)] = contact
        targets: dict[str, JID] = {}
        for jid in changed:
            if jid.localpart is not None:
                if f"{jid.localpart}@{jid.domain}" in contacts:
                    targets[str(jid)] = jid
                continue
            rule = frozenset({str(jid)})
            for key, contact in contacts.items():
                if matches(rule, contact):
                    targets[key] = contact
        return list(targets.values())

    # -- enforcement --------------------------------------------------------------

    def _exempt(self, a: JID, b: JID) -> bool:
        """An account talking to itself, or anything to or from the server's own JID."""
        if a.localpart is not None and a.localpart == b.localpart and a.domain == b.domain:
            return True
        return self._is_server(a) or self._is_server(b)

    def _is_server(self, jid: JID) -> bool:
        return jid.localpart is None and jid.resource is None and jid.domain == self.domain

    def _local_login(self, jid: JID) -> str | None:
        return jid.localpart if jid.domain == self.domain else None

    async def _sender_blocked(self, sender: JID, recipient: JID) -> bool:
        """Whether the (local) sender blocked the recipient."""
        login = self._local_login(sender)
        return login is not None and matches(await self.blocklist(login), recipient)

    async def _recipient_blocked(self, sender: JID, recipient: JID) -> bool:
        """Whether the (local) recipient blocked the sender."""
        login = self._local_login(recipient)
        return login is not None and matches(await self.blocklist(login), sender)

    async def outbound(self, event: StanzaEvent) -> bool:
        """``pre-*``: what a local client sends to a JID it blocked, or that blocked it."""
        to = event.to_jid
        if to is None or self._exempt(event.from_jid, to):
            return False  # presence broadcast: filtered per recipient on delivery
        kind = stanza.stanza_kind(event.stanza)
        if await self._sender_blocked(event.from_jid, to):
            if kind == "presence":
                # Presence is dropped rather than bounced (errors for presence
                # confuse clients); messages and IQs get the §3.3 error.
                return True
            raise _blocked_error()
        if kind == "iq" and await self._recipient_blocked(event.from_jid, to):
            return self._refuse_iq(event.stanza)
        return False

    async def inbound(self, event: StanzaEvent) -> bool:
        """``message/…``, ``presence/…``: stanzas to an account that blocked the sender."""
        to = event.to_jid
        if to is None or self._exempt(event.from_jid, to):
            return False
        if await self._recipient_blocked(event.from_jid, to):
            if event.stanza.tag == stanza.MESSAGE and event.stanza.get("type") != "error":
                # XEP-0191 §3.3: "For message stanzas, the server SHOULD return
                # an error, which SHOULD be <service-unavailable/>."
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            # "For presence stanzas (including notifications, subscriptions,
            # and probes), the server MUST NOT respond and MUST NOT return an error."
            return True
        # Server-routed stanzas on behalf of a user who blocked the recipient.
        return await self._sender_blocked(event.from_jid, to)

    def on_deliver(self, event: DeliveryEvent) -> None:
        """``session/deliver`` (synchronous): the last check before writing a stanza."""
        sender_attr = event.stanza.get("from")
        if sender_attr is None:
            return
        try:
            sender = JID.parse(sender_attr)
        except InvalidJID:
            return
        login = self._local_login(sender)
        sender_list = self.cache.get(login) if login is not None else None
        targets = event.targets
        for i, target in enumerate(targets):
            if target is None:
                continue
            session, copy = target
            recipient = session.jid
            if self._exempt(sender, recipient):
                continue
            recipient_list = self.cache.get(session.username)
            if recipient_list is not None and matches(recipient_list, sender):
                if copy.tag == stanza.IQ:
                    self._refuse_iq(copy)
                targets[i] = None
            elif sender_list is not None and matches(sender_list, recipient):
                targets[i] = None

    def _refuse_iq(self, iq: Element) -> bool:
        # XEP-0191 §3.3: "For IQ stanzas of type "get" or "set", the server MUST
        # return an error, which SHOULD be <service-unavailable/>. IQ stanzas of
        # other types MUST be silently dropped by the server."
        if iq.get("type") in ("get", "set"):
            self.ctx.router.reply_error(iq, StanzaError(StanzaCondition.SERVICE_UNAVAILABLE))
        return True


def setup(ctx: FeatureContext) -> None:
    """Register the blocking commands, advertise urn:xmpp:blocking and enforce the lists."""
    blocking = Blocking(ctx)
    # XEP-0191 §3.1: "If the server supports the protocol defined herein, it
    # MUST return a feature of "urn:xmpp:blocking"".
    ctx.disco.add_server_feature(ns.BLOCKING)
    ctx.iq.register(BLOCKLIST, blocking.get, types=("get",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(BLOCK, blocking.block, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(UNBLOCK, blocking.unblock, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.hooks.on(H.SESSION_BOUND, blocking.on_bound, priority=PRIORITY)
    ctx.hooks.on(H.SERVER_STARTED, blocking.load_owners)
    ctx.hooks.on(H.SESSION_CLOSED, blocking.on_closed, priority=CLOSE_PRIORITY)
    ctx.hooks.on(H.ACCOUNT_REMOVED, blocking.on_account_removed)
    for name in (H.PRE_MESSAGE, H.PRE_PRESENCE, H.PRE_IQ):
        ctx.hooks.on(name, blocking.outbound, priority=PRIORITY)
    for name in (H.MESSAGE_BARE, H.MESSAGE_FULL, H.PRESENCE_BARE, H.PRESENCE_FULL):
        ctx.hooks.on(name, blocking.inbound, priority=PRIORITY)
    ctx.hooks.on(H.SESSION_DELIVER, blocking.on_deliver, priority=PRIORITY)
