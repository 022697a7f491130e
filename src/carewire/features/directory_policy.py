"""Who may message whom across organisations: the directory's policy on every stanza a user sends.

Theory of operation: the organisation directory (:mod:`carewire.directory`)
decides who may message whom (``DirectoryIndex.may_message``: same
organisation, or affiliated organisations whose permissions let both users
through; accounts without a directory profile are never restricted). This
feature asks it on what a local session *sends*, before routing, at a
priority above blocking, tracking and delivery so that a refused stanza is
neither recorded nor delivered:

- ``pre-message``: messages to another account, and mediated room invitations
  (XEP-0045 §7.8.2, ``<x xmlns='…muc#user'><invite to='…'/></x>``) for each
  invitee; XEP-0249 direct invitations are messages to the invitee;
- ``pre-presence``: subscription requests and approvals, probes and directed
  available presence to another account (unavailable presence and the
  ending of subscriptions always pass: ending a relation is never refused);
- ``pre-iq``: any IQ to another account's bare or full JID.

A refusal is the stanza error ``forbidden`` (type auth) with the text "You may
not message users of <Organisation name>". The common case costs two dict
lookups in the index: both users in one organisation, or either without a
profile.

Sessions end at once when the directory says a user's login was disabled or
the user was deleted (its change events); changes made by another process
(the command line) reach the index through a periodic reload, and the
account check of :mod:`carewire.features.c2s` ends the sessions of disabled
accounts within ``xmpp.account_check_interval``.
"""

from __future__ import annotations

import logging
from typing import Final

from carewire.core import hook_names as H
from carewire.core.events import SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.directory.model import DirectoryEvent, UserDeleted, UserDisabled
from carewire.directory.service import DirectoryService
from carewire.features.muc.model import MUC_USER
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

#: Before blocking (1000) and tracking (500), after the activity observer (2000).
PRIORITY: Final = 1500
#: Before the directory roster reconciles a user's first session (priority 0).
BOUND_PRIORITY: Final = 100
#: Presence types that only end something (and errors): never refused.
ENDING_PRESENCE: Final = frozenset({"unavailable", "unsubscribe", "unsubscribed", "error"})
INVITE: Final = f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite"


class DirectoryPolicy:
    """The directory's messaging rule, applied to what local sessions send."""

    def __init__(self, ctx: FeatureContext, directory: DirectoryService) -> None:
        self.ctx = ctx
        self.directory = directory
        self.index = directory.index
        self.domain = ctx.hosts.domain
        self.chat_domain = ctx.hosts.chat_domain

    def check(self, sender: str | None, recipient: str | None) -> None:
        """Refuse a stanza from user ``sender`` to user ``recipient`` when the policy says no.

        Raises:
            StanzaError: ``forbidden`` (auth), "You may not message users of <Org>".
        """
        if sender is None or recipient is None or sender == recipient:
            return
        if self.index.may_message(sender, recipient):
            return
        text = self.index.refusal(sender, recipient) or ""
        log.debug("refused: %s may not message %s", sender, recipient)
        raise StanzaError(StanzaCondition.FORBIDDEN, text)

    # -- hooks ------------------------------------------------------------------------

    def on_message(self, event: StanzaEvent) -> None:
        """Hook ``pre-message``: messages to users, invitations to rooms."""
        to = event.to_jid
        if to is None:
            return
        if to.domain == self.domain:
            self.check(event.from_jid.localpart, to.localpart)
        elif to.domain == self.chat_domain:
            for invite in event.stanza.iterfind(INVITE):
                self.check(event.from_jid.localpart, self._local_login(invite.get("to")))

    def on_presence(self, event: StanzaEvent) -> None:
        """Hook ``pre-presence``: subscriptions, probes and directed presence to users."""
        to = event.to_jid
        if to is None or to.domain != self.domain:
            return
        if event.stanza.get("type") in ENDING_PRESENCE:
            return
        self.check(event.from_jid.localpart, to.localpart)

    def on_iq(self, event: StanzaEvent) -> None:
        """Hook ``pre-iq``: IQs to another user's bare or full JID."""
        to = event.to_jid
        if to is not None and to.domain == self.domain:
            self.check(event.from_jid.localpart, to.localpart)

    def _local_login(self, raw: str | None) -> str | None:
        if not raw:
            return None
        try:
            jid = JID.parse(raw)
        except InvalidJID:
            return None  # the room service answers a malformed invitee itself
        return jid.localpart if jid.domain == self.domain else None

    # -- directory changes -------------------------------------------------------------

    async def on_bound(self, event: SessionEvent) -> None:
        """Hook ``session/bound``: a user made by another process is read in before it acts.

        Runs before the directory roster's reconciliation, so a user created a
        moment ago (``carewire demo`` next to a running server) gets their
        contacts and their organisation's policy at once, not at the next
        periodic reload.
        """
        await self.directory.reload_for(event.session.username)

    async def on_change(self, event: DirectoryEvent) -> None:
        """End the sessions of users whose login was disabled, or who were deleted."""
        if isinstance(event, UserDisabled):
            self._end(event.login, "login disabled")
        elif isinstance(event, UserDeleted):
            self._end(event.login, "account removed")

    def _end(self, login: str, text: str) -> None:
        closed = self.ctx.accounts.end_sessions(login, text=text)
        if closed:
            log.info("%s: %d session(s) of %s ended", text, closed, login)


def setup(ctx: FeatureContext) -> None:
    """Enforce the directory's policy, end sessions on its changes, re-read it periodically."""
    directory = ctx.require(DirectoryService)
    policy = DirectoryPolicy(ctx, directory)
    ctx.hooks.on(H.PRE_MESSAGE, policy.on_message, priority=PRIORITY)
    ctx.hooks.on(H.PRE_PRESENCE, policy.on_presence, priority=PRIORITY)
    ctx.hooks.on(H.PRE_IQ, policy.on_iq, priority=PRIORITY)
    ctx.hooks.on(H.SESSION_BOUND, policy.on_bound, priority=BOUND_PRIORITY)
    directory.subscribe(policy.on_change)
    # Changes made by another process (the command line) reach the index here.
    interval = directory.config.index_reload_interval.total_seconds()
    ctx.every("directory-reload", interval, directory.reload)
