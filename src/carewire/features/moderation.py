"""Moderated message retraction in rooms (XEP-0425 ``urn:xmpp:message-moderate:1``, v0.3).

A room moderator asks the room to retract an occupant's message, naming it by
the XEP-0359 stanza id the room gave it::

    <iq type='set' to='ward3@chat.example.test' id='m1'>
      <moderate xmlns='urn:xmpp:message-moderate:1' id='STANZA-ID'>
        <retract xmlns='urn:xmpp:message-retract:1'/>
        <reason>Wrong patient</reason>
      </moderate>
    </iq>

The room then (1) drops the message from the history it replays to joiners,
(2) replaces it in the room's archive with a tombstone (XEP-0425 §4: its body
and elements become ``<retracted/>`` holding ``<moderated by=''/>`` and the
reason), so MAM never returns the text again, (3) broadcasts the moderated
retraction to every occupant, (4) records ``muc.moderate`` in the audit trail
(room, message id, moderator; never the text or the reason), and (5) answers
with an empty result. Errors:
``forbidden`` for anyone not a moderator of the room now, ``item-not-found``
for an id that names no message of this room, ``bad-request`` without an id,
``feature-not-implemented`` for a moderation other than a retraction.
See ``docs/muc.md``.
"""

from __future__ import annotations

import logging
import secrets
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.model import Origin
from carewire.datasets.service import DatasetService
from carewire.features.muc.model import Role, Room
from carewire.features.muc.service import MucService
from carewire.features.tracking import MessageTracker, archive, stanzas
from carewire.features.tracking.ops import room_key
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import make, serialize

log = logging.getLogger(__name__)

MODERATE = ns.MODERATE
RETRACT = ns.RETRACT
MAX_REASON_LENGTH = 1024


def retraction(room: JID, target: str, *, by: str, reason: str) -> Element:
    """The moderated retraction the room broadcasts (no ``to``: delivery adds each occupant's)."""
    message = make(
        f"{{{ns.CLIENT}}}message",
        {"type": "groupchat", "from": str(room), "id": f"moderate-{secrets.token_hex(6)}"},
    )
    retract = SubElement(message, f"{{{RETRACT}}}retract", {"id": target})
    SubElement(retract, f"{{{MODERATE}}}moderated", {"by": by})
    if reason:
        SubElement(retract, f"{{{RETRACT}}}reason").text = reason
    # XEP-0334: archives should keep it, so clients that were away learn of it.
    SubElement(message, f"{{{ns.HINTS}}}store")
    return message


def tombstone(*, by: str, reason: str, stamp: str) -> Element:
    """What the archive keeps of a moderated message (XEP-0425 §4, "Tombstones")."""
    retracted = make(f"{{{RETRACT}}}retracted", {"stamp": stamp})
    SubElement(retracted, f"{{{MODERATE}}}moderated", {"by": by})
    if reason:
        SubElement(retracted, f"{{{RETRACT}}}reason").text = reason
    return retracted


class Moderation:
    """The ``<moderate/>`` IQ handler of every room."""

    def __init__(
        self,
        ctx: FeatureContext,
        muc: MucService,
        datasets: DatasetService | None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.ctx = ctx
        self.muc = muc
        self.datasets = datasets
        self.audit = audit

    async def moderate(self, iq: IqRequest) -> Element | None:
        """Retract a message of the room as its moderator (see the module's docstring)."""
        room = self.muc.room(iq.to_jid)
        target = (iq.payload.get("id") or "").strip()
        if not target:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "<moderate/> needs the message's id")
        if iq.payload.find(f"{{{RETRACT}}}retract") is None:
            raise StanzaError(
                StanzaCondition.FEATURE_NOT_IMPLEMENTED, "only retraction can be moderated"
            )
        moderator = self._moderator(room, iq.from_jid)
        reason = (iq.payload.findtext(f"{{{MODERATE}}}reason") or "").strip()
        reason = reason[:MAX_REASON_LENGTH]
        in_archive = await self._tombstone(
            room.jid, target, by=moderator, reason=reason, login=iq.from_jid.localpart or ""
        )
        in_history = self.muc.forget_messages(room.jid, {target}) > 0
        if not (in_archive or in_history):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such message in this room")
        self.muc.broadcast(room, retraction(room.jid, target, by=moderator, reason=reason))
        log.info("room %s: a message was retracted by moderator %s", room.jid, moderator)
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor=f"xmpp:{iq.from_jid.localpart}",
                    channel=Channel.XMPP,
                    action="muc.moderate",
                    target=str(room.jid),
                    details={"message": target, "moderator": moderator, "archived": in_archive},
                )
            )
        return None

    def _moderator(self, room: Room, requester: JID) -> str:
        """The requester's occupant JID if it is a moderator of the room now."""
        occupant = room.occupant_of(requester)
        if occupant is None or occupant.role is not Role.MODERATOR:
            raise StanzaError(
                StanzaCondition.FORBIDDEN,
                "Only moderators are allowed to moderate other participants' messages",
            )
        return str(JID(room.name, self.muc.domain, occupant.nick))

    async def _tombstone(self, room: JID, target: str, *, by: str, reason: str, login: str) -> bool:
        """Replace the archived message with its tombstone; False if it is not archived here."""
        if self.datasets is None:
            return False
        tracker = self.ctx.find(MessageTracker)
        if tracker is not None:
            await tracker.flush()  # a message broadcast just before is in the archive
        found = await archive.find_message(self.datasets, target)
        if found is None or found.get("state") == "expired":
            return False
        conversation = await archive.find_conversation(self.datasets, room_key(str(room.bare)))
        if conversation is None or found.get("conversation") != conversation.id:
            return False
        stamp = stanzas.format_datetime(self.ctx.clock.now())
        changes = {
            "message": "",
            "elements": serialize(tombstone(by=by, reason=reason, stamp=stamp), None),
        }
        origin = Origin(adapter=None, actor=f"xmpp:{login}", depth=0)
        await self.datasets.update("MESSAGES", found.id, changes, origin=origin)
        return True


def setup(ctx: FeatureContext) -> None:
    """Answer ``<moderate/>`` in every room and advertise it in the rooms' disco#info."""
    muc = ctx.require(MucService)
    moderation = Moderation(ctx, muc, ctx.find(DatasetService), ctx.find(AuditTrail))
    ctx.iq.register(
        f"{{{MODERATE}}}moderate", moderation.moderate, types=("set",), targets=(IqTarget.ROOM,)
    )
    muc.add_room_feature(MODERATE)
