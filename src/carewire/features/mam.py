"""Message archive management (XEP-0313 ``urn:xmpp:mam:2``) with result set management (XEP-0059).

The archive is the tracking datasets (MESSAGES in CONVERSATIONS), read
through :class:`DatasetService`: an account's archive is its two-person
conversations; a room's archive (IQs to the room's JID, dispatched by the
multi-user chat service) is the room's conversation. The writer is flushed
before each query, so a message routed before the query is in its results.
Without the data platform the feature does nothing. See ``docs/tracking.md``.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Protocol, runtime_checkable
from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.model import Record
from carewire.datasets.service import DatasetService
from carewire.features.tracking import MessageTracker, archive, stanzas
from carewire.features.tracking.archive import ArchiveFilter, ArchivePage, Paging
from carewire.features.tracking.ops import ConvKey, pair_key, room_key
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID, InvalidJID
from carewire.xmpp.xml import child, make, text_of

log = logging.getLogger(__name__)

MAM = "urn:xmpp:mam:2"
MAM_EXTENDED = "urn:xmpp:mam:2#extended"
RSM = "http://jabber.org/protocol/rsm"
FORWARD = "urn:xmpp:forward:0"
XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate"
DEFAULT_MAX = 50
MAX_PAGE = 100  # larger requests are capped (XEP-0313 §5.1: the server MAY limit)
MAX_IDS = 100
FIELDS = {"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"}

_X = f"{{{ns.DATA_FORMS}}}x"
_FIELD = f"{{{ns.DATA_FORMS}}}field"
_VALUE = f"{{{ns.DATA_FORMS}}}value"


@runtime_checkable
class RoomArchiveAccess(Protocol):
    """What the multi-user chat service may offer: who may read a room's archive."""

    def may_read_archive(self, room: JID, requester: JID) -> bool:
        """XEP-0313 §7.1.2: whether ``requester`` has the right to enter ``room`` now."""


def _bad(text: str) -> StanzaError:
    return StanzaError(StanzaCondition.BAD_REQUEST, text)


def _form_values(query: Element) -> dict[str, list[str]]:
    form = child(query, _X)
    if form is None:
        return {}
    if form.get("type", "submit") != "submit":
        raise _bad("the query form must be of type submit")
    values: dict[str, list[str]] = {}
    for field in form.iter(_FIELD):
        var = field.get("var", "")
        if var not in FIELDS:
            # XEP-0313 §4.1.5: "If a client includes a form field that the server does not
            # recognise, the server MUST respond with a 'feature-not-implemented' error."
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, f"unknown field {var!r}")
        values[var] = [v.text or "" for v in field.findall(_VALUE)]
    form_type = values.get("FORM_TYPE")
    if form_type is not None and form_type != [MAM]:
        raise _bad(f"FORM_TYPE must be {MAM}")
    return values


def _single(values: dict[str, list[str]], var: str) -> str | None:
    got = values.get(var)
    if not got or not got[0].strip():
        return None
    if len(got) > 1:
        raise _bad(f"{var} takes one value")
    return got[0].strip()


def _date(values: dict[str, list[str]], var: str) -> datetime | None:
    text = _single(values, var)
    if text is None:
        return None
    value = stanzas.parse_datetime(text)
    if value is None:
        raise _bad(f"{var} must be an XEP-0082 DateTime with a time zone")
    return value


def _max(rsm: Element) -> int:
    text = text_of(rsm, f"{{{RSM}}}max")
    if text is None:
        return DEFAULT_MAX
    try:
        value = int(text.strip())
    except ValueError:
        raise _bad("max must be a number") from None
    if value < 0:
        raise _bad("max must not be negative")
    return min(value, MAX_PAGE)


class Archive:
    """The MAM IQ handlers."""

    def __init__(self, ctx: FeatureContext, svc: DatasetService, tracker: MessageTracker) -> None:
        self.ctx = ctx
        self.svc = svc
        self.tracker = tracker

    # -- the archive's conversations ------------------------------------------

    async def _account(self, iq: IqRequest, with_: str | None) -> dict[int, ConvKey]:
        me = str(iq.from_jid.bare)
        if with_ is None:
            return await archive.account_conversations(self.svc, me)
        key = pair_key(me, with_)
        found = await archive.find_conversation(self.svc, key)
        return {found.id: key} if found is not None else {}

    async def _room(self, iq: IqRequest) -> dict[int, ConvKey]:
        room = iq.to_jid.bare
        if not await self._may_read_room(room, iq.from_jid):
            raise StanzaError(StanzaCondition.FORBIDDEN, "only the room's members may read it")
        key = room_key(str(room))
        found = await archive.find_conversation(self.svc, key)
        return {found.id: key} if found is not None else {}

    async def _may_read_room(self, room: JID, requester: JID) -> bool:
        for service in self.ctx.services.values():
            if isinstance(service, RoomArchiveAccess):
                return service.may_read_archive(room, requester)
        decided = _muc_decision(self.ctx, room, requester)
        if decided is not None:
            return decided
        bare = str(requester.bare)
        if self.tracker.is_room_participant(str(room), bare):
            return True
        found = await archive.find_conversation(self.svc, room_key(str(room)))
        login = requester.localpart
        if found is None or login is None or requester.domain != self.ctx.hosts.domain:
            return False
        return await archive.is_member(self.svc, found.id, login)

    # -- queries ------------------------------------------------------------

    async def query(self, iq: IqRequest) -> Element | None:
        """``<query/>``: get → the form; set → results as messages, then ``<fin/>``."""
        if iq.type == "get":
            return self._form()
        values = _form_values(iq.payload)
        is_room = iq.to_jid.domain == self.ctx.hosts.chat_domain
        with_ = self._with(values)
        await self.tracker.flush()
        if is_room:
            convs = await self._room(iq)
        else:
            convs = await self._account(iq, with_)
        f = await self._filter(values, convs, with_ if is_room else None)
        paging = await self._paging(iq.payload, f)
        page = await archive.fetch(self.svc, f, paging)
        await self._send(iq, page, convs, is_room=is_room)
        return self._fin(page, is_backward=paging.is_backward)

    def _with(self, values: dict[str, list[str]]) -> str | None:
        text = _single(values, "with")
        if text is None:
            return None
        try:
            # A full JID is matched as its bare JID: resources are not archived.
            return str(JID.parse(text).bare)
        except InvalidJID:
            raise StanzaError(StanzaCondition.JID_MALFORMED, "with is not a JID") from None

    async def _filter(
        self, values: dict[str, list[str]], convs: dict[int, ConvKey], sender: str | None
    ) -> ArchiveFilter:
        sender_id = None
        if sender is not None:
            found = await archive.find_identity(self.svc, sender)
            if found is None:
                return ArchiveFilter(conversations=())
            sender_id = found.id
        uuids = tuple(v.strip() for v in values.get("ids", []) if v.strip())
        if len(uuids) > MAX_IDS:
            raise StanzaError(StanzaCondition.POLICY_VIOLATION, f"at most {MAX_IDS} ids")
        for uid in uuids:
            await self._position(uid, convs)
        after_id, before_id = _single(values, "after-id"), _single(values, "before-id")
        return ArchiveFilter(
            conversations=tuple(convs),
            sender=sender_id,
            start=_date(values, "start"),
            end=_date(values, "end"),
            after=await self._position(after_id, convs) if after_id else None,
            before=await self._position(before_id, convs) if before_id else None,
            uuids=uuids,
        )

    async def _position(self, uid: str, convs: dict[int, ConvKey]) -> datetime:
        """When an archived message was received (its place in the archive).

        XEP-0313 §4.1.3: "If any UID requested by the client [...] is not present in the
        archive, the server MUST return an item-not-found error".
        """
        rec = await archive.find_message(self.svc, uid)
        at = rec.get("received_at") if rec is not None else None
        if (
            rec is None
            or rec.get("conversation") not in convs
            or rec.get("state") == "expired"
            or not isinstance(at, datetime)
        ):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such message in this archive")
        return at

    async def _paging(self, query: Element, f: ArchiveFilter) -> Paging:
        rsm = child(query, f"{{{RSM}}}set")
        if rsm is None:
            return Paging(max=DEFAULT_MAX)
        if child(rsm, f"{{{RSM}}}index") is not None:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "paging by index")
        after = text_of(rsm, f"{{{RSM}}}after")
        before = text_of(rsm, f"{{{RSM}}}before")
        if after is not None and before is not None:
            raise _bad("use after-id and before-id to ask for a range")
        convs = dict.fromkeys(f.conversations, ("", ""))
        return Paging(
            max=_max(rsm),
            after=await self._position(after.strip(), convs) if after else None,
            before=await self._position(before.strip(), convs) if before else None,
            is_backward=before is not None,
        )

    # -- results ------------------------------------------------------------

    async def _send(
        self, iq: IqRequest, page: ArchivePage, convs: dict[int, ConvKey], *, is_room: bool
    ) -> None:
        session = iq.origin
        if session is None or not page.records:
            return
        names = await archive.identity_names(self.svc, page.records)
        flip = child(iq.payload, f"{{{MAM}}}flip-page") is not None
        records = reversed(page.records) if flip else page.records
        queryid = iq.payload.get("queryid")
        for rec in records:
            if is_room:
                original = self._room_message(rec, str(iq.to_jid.bare))
            else:
                original = self._account_message(rec, convs, names)
            result_attrs = {"id": str(rec.get("uuid"))}
            if queryid is not None:
                result_attrs["queryid"] = queryid
            at = rec.get("received_at")
            stamp = stanzas.format_datetime(at) if isinstance(at, datetime) else ""
            result = make(
                f"{{{MAM}}}result",
                result_attrs,
                make(
                    f"{{{FORWARD}}}forwarded",
                    None,
                    make(f"{{{ns.DELAY}}}delay", {"stamp": stamp}),
                    original,
                ),
            )
            attrs = {"to": str(session.jid), "from": str(iq.to_jid.bare), "id": _id()}
            self.ctx.router.send_from_server(
                session, make(f"{{{ns.CLIENT}}}message", attrs, result)
            )

    @staticmethod
    def _content(message: Element, rec: Record) -> Element:
        body = rec.get("message")
        if body:
            message.append(make(stanzas.BODY, None, text=str(body)))
        message.extend(stanzas.elements_from(str(rec.get("elements") or "")))
        return message

    def _account_message(
        self, rec: Record, convs: dict[int, ConvKey], names: dict[int, str]
    ) -> Element:
        key = convs.get(int(str(rec.get("conversation"))), ("", ""))
        sender = names.get(int(str(rec.get("from") or 0)), "")
        to = key[1] if sender == key[0] else key[0]
        attrs = {"type": "chat", "to": to}
        if sender:
            attrs["from"] = sender
        return self._content(make(f"{{{ns.CLIENT}}}message", attrs), rec)

    def _room_message(self, rec: Record, room: str) -> Element:
        # XEP-0313 §7.1.2: "the forwarded stanza MUST NOT have a 'to' attribute, and the
        # 'from' MUST be the occupant JID of the sender".
        nick = str(rec.get("nick") or "")
        attrs = {"type": "groupchat", "from": f"{room}/{nick}" if nick else room}
        return self._content(make(f"{{{ns.CLIENT}}}message", attrs), rec)

    @staticmethod
    def _fin(page: ArchivePage, *, is_backward: bool) -> Element:
        rsm = make(f"{{{RSM}}}set")
        if page.records:
            first = make(f"{{{RSM}}}first", None, text=str(page.records[0].get("uuid")))
            if page.first_index is not None and not _ends_the_set(page, is_backward):
                first.set("index", str(page.first_index))
            rsm.append(first)
            rsm.append(make(f"{{{RSM}}}last", None, text=str(page.records[-1].get("uuid"))))
        rsm.append(make(f"{{{RSM}}}count", None, text=str(page.count)))
        attrs = {"complete": "true"} if page.is_complete else None
        return make(f"{{{MAM}}}fin", attrs, rsm)

    @staticmethod
    def _form() -> Element:
        def field(var: str, type_: str, *children: Element) -> Element:
            return make(_FIELD, {"var": var, "type": type_}, *children)

        ids = field(
            "ids",
            "list-multi",
            make(
                f"{{{XDATA_VALIDATE}}}validate",
                {"datatype": "xs:string"},
                make(f"{{{XDATA_VALIDATE}}}open"),
            ),
        )
        form = make(
            _X,
            {"type": "form"},
            field("FORM_TYPE", "hidden", make(_VALUE, None, text=MAM)),
            field("with", "jid-single"),
            field("start", "text-single"),
            field("end", "text-single"),
            field("before-id", "text-single"),
            field("after-id", "text-single"),
            ids,
        )
        return make(f"{{{MAM}}}query", None, form)

    # -- metadata and preferences ---------------------------------------------

    async def metadata(self, iq: IqRequest) -> Element:
        """``<metadata/>`` (urn:xmpp:mam:2#extended): the first and last archived message."""
        await self.tracker.flush()
        if iq.to_jid.domain == self.ctx.hosts.chat_domain:
            convs = await self._room(iq)
        else:
            convs = await self._account(iq, None)
        out = make(f"{{{MAM}}}metadata")
        first = await archive.edge(self.svc, list(convs), last=False)
        last = await archive.edge(self.svc, list(convs), last=True)
        for tag, rec in (("start", first), ("end", last)):
            if rec is not None:
                at = rec.get("received_at")
                stamp = stanzas.format_datetime(at) if isinstance(at, datetime) else ""
                out.append(
                    make(f"{{{MAM}}}{tag}", {"id": str(rec.get("uuid")), "timestamp": stamp})
                )
        return out

    async def prefs(self, iq: IqRequest) -> Element:
        """``<prefs/>``: every message is archived (the clinical record); it cannot be changed."""
        if iq.type == "set":
            raise StanzaError(
                StanzaCondition.NOT_ALLOWED, "every conversation is archived; this cannot change"
            )
        return make(
            f"{{{MAM}}}prefs",
            {"default": "always"},
            make(f"{{{MAM}}}always"),
            make(f"{{{MAM}}}never"),
        )


def _ends_the_set(page: ArchivePage, is_backward: bool) -> bool:
    """Whether a page paged backwards ends at the end of the result set (its index is left out).

    COMPAT(#14): XEP-0059 §2.4 says the index "SHOULD" be there, and for the last
    page "SHOULD be the specified count minus the number of items in the last
    page"; a client paging backwards (slixmpp's ResultIterator, used by poezio)
    reads exactly that as "the set is exhausted" and stops after the first page
    of ``<before/>``. The spec allows the attribute to be left out ("MAY be
    omitted"), so on that page only it is: clients then page on until the page
    that reaches the start (``complete='true'``, index 0) or an empty page.
    """
    index = page.first_index
    return is_backward and index is not None and index + len(page.records) >= page.count


def _muc_decision(ctx: FeatureContext, room: JID, requester: JID) -> bool | None:
    """Ask the multi-user chat service, if loaded and the room exists (None: cannot tell).

    XEP-0313 §7.1.2: "A MUC archive MUST check that the user requesting the archive has
    the right to enter it at the time of the query". We are stricter than open rooms
    need: members (owner, admin, member) and current occupants only.
    """
    try:
        from carewire.features.muc.model import MEMBER_AFFILIATIONS, Affiliation
        from carewire.features.muc.service import MucService
    except ImportError:  # COMPAT: the multi-user chat feature is optional
        return None
    muc = ctx.find(MucService)
    found = muc.find(room) if muc is not None else None
    if found is None:
        return None
    bare = str(requester.bare)
    affiliation = found.affiliation(bare)
    if affiliation is Affiliation.OUTCAST:
        return False
    return affiliation in MEMBER_AFFILIATIONS or any(True for _ in found.occupants_of(bare))


def _add_room_feature(ctx: FeatureContext) -> None:
    try:
        from carewire.features.muc.service import MucService
    except ImportError:  # COMPAT: the multi-user chat feature is optional
        return
    muc = ctx.find(MucService)
    if muc is not None:
        muc.add_room_feature(MAM)


def _id() -> str:
    return "mam-" + secrets.token_hex(6)


def setup(ctx: FeatureContext) -> None:
    """Register the archive (it reads the MESSAGES that message tracking records)."""
    mam = Archive(ctx, ctx.require(DatasetService), ctx.require(MessageTracker))
    both = (IqTarget.ACCOUNT, IqTarget.ROOM)
    ctx.iq.register(f"{{{MAM}}}query", mam.query, types=("get", "set"), targets=both)
    ctx.iq.register(f"{{{MAM}}}metadata", mam.metadata, types=("get",), targets=both)
    ctx.iq.register(f"{{{MAM}}}prefs", mam.prefs, types=("get", "set"), targets=(IqTarget.ACCOUNT,))
    ctx.disco.add_account_feature(MAM)
    ctx.disco.add_account_feature(MAM_EXTENDED)
    _add_room_feature(ctx)
