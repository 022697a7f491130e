"""Tracking of federated conversations: recipients and senders on other domains.

A message one of our users sends to another domain's user is recorded like
any other (:mod:`carewire.features.tracking`); here its MESSAGE_DELIVERIES
row follows the federation: ``sent_at`` when the router hands it to the remote
router (hook ``remote/sent``), ``received_at``/``displayed_at`` when the
remote client's receipt or marker comes back, ``failed_at`` with the stanza
error condition when it is refused at once (hook ``remote/failed``: federation
off, domain not allowed) or bounced later by the remote side or by our own
stream manager (``remote-server-not-found``, ``remote-server-timeout``, an
unknown user's ``service-unavailable``). A message from another domain's user
to one of ours is stamped and recorded on arrival, so both directions are in
the archive (XEP-0313) and receipts our users send back find it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from carewire.core.events import RemoteFailure, StanzaEvent
from carewire.core.feature import FeatureContext
from carewire.features.tracking import stanzas
from carewire.features.tracking.ops import pair_key
from carewire.features.tracking.service import MessageTracker, addressed_to
from carewire.xmpp.jid import JID

log = logging.getLogger(__name__)

MESSAGE = "{jabber:client}message"
#: (marks found, sender bare JID, addressee) → the acknowledged stanza id, if any.
MarkRecorder = Callable[[list[tuple[stanzas.Mark, str]], str, JID], Awaitable[str | None]]


class RemoteTracking:
    """The hook handlers for messages that cross to or from another domain."""

    def __init__(self, ctx: FeatureContext, tracker: MessageTracker, marks: MarkRecorder) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self.record_marks = marks

    def on_sent(self, event: StanzaEvent) -> None:
        """Hook ``remote/sent``: the message was handed to the remote router: ``sent_at``."""
        assert event.to_jid is not None
        if event.stanza.tag != MESSAGE:
            return
        uid = stanzas.stanza_id(event.stanza, str(event.from_jid.bare))
        who = str(event.to_jid.bare)
        if uid is None or not self.tracker.first_delivery(uid, who):
            return
        self.tracker.delivered(uid, who, "sent_at")

    def on_failed(self, event: RemoteFailure) -> None:
        """Hook ``remote/failed``: refused at once, a failed delivery."""
        if event.stanza.tag == MESSAGE:
            uid = stanzas.stanza_id(event.stanza, str(event.from_jid.bare))
            self._fail(uid, str(event.to_jid.bare), event.condition.value)

    async def on_inbound(self, event: StanzaEvent) -> None:
        """Hooks ``message/bare`` and ``message/full``: a message from another domain.

        Never handles the message: delivery, offline storage and carbons go on.
        """
        to = event.to_jid
        if event.origin is not None or to is None or not self.ctx.router.is_remote(event.from_jid):
            return
        stanza = event.stanza
        me, peer = str(to.bare), str(event.from_jid.bare)
        if stanza.get("type") == "error":
            # A bounce of one of our messages: it names our stanza id (by the sender's
            # account) or, at least, the id the sender's client gave it.
            uid = stanzas.stanza_id(stanza, me) or self.tracker.client_ids.get(
                (me, peer, stanza.get("id", ""))
            )
            stanzas.strip_stanza_ids(stanza, self.tracker.is_ours)
            self._fail(uid, peer, stanzas.error_condition(stanza))
            return
        # XEP-0359: a stanza id claiming to be by one of our addresses is a forgery.
        stanzas.strip_stanza_ids(stanza, self.tracker.is_ours)
        await self.tracker.writer.wait_for_room()
        found = stanzas.marks(stanza)
        acknowledges = await self.record_marks(found, peer, to) if found else None
        if to.localpart is None or not stanzas.is_trackable(stanza):
            return
        uid = self.tracker.stamp(stanza, to)
        for cid in stanzas.client_ids(stanza):
            self.tracker.client_ids.put((peer, me, cid), uid)
        self.tracker.enqueue_message(
            key=pair_key(peer, me),
            sender=peer,
            recipients=(me,),
            members=(peer, me),
            stanza=stanza,
            uid=uid,
            is_acknowledgeable=stanzas.is_acknowledgeable(stanza),
            acknowledges=acknowledges,
        )

    def _fail(self, uid: str | None, recipient: str, condition: str) -> None:
        sent = self.tracker.recent.get(uid) if uid else None
        if uid is None or sent is None or not addressed_to(sent, recipient):
            return
        log.info("delivery to a user of %s failed: %s", recipient.partition("@")[2], condition)
        self.tracker.failed(uid, recipient, condition)
