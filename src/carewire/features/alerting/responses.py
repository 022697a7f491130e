"""Responses to clinical alerts: the ``urn:carewire:alert:0`` intake (docs/alerts.md).

A recipient answers an alert with an IQ set to the server (``to=DOMAIN``)::

    <iq type='set' to='example.test' id='r1'>
      <response xmlns='urn:carewire:alert:0' alert='ALERT-ID' action='accept'/>
    </iq>

Theory of operation: the alert is the MESSAGES record whose ``uuid`` is the
alert id; its ``elements`` hold the ``<alert/>`` as sent (offered responses,
expiry). The responder must be one of its recipients (MESSAGES.recipients or
a MESSAGE_DELIVERIES row of the message names one of the responder's
IDENTITIES), the response must be offered, the alert not expired, and the
responder must not have answered before. The DELIVERIES record linked to the
message names the rule and the triggering record; the XMPP adapter's
:class:`~carewire.adapters.xmpp.gateway.AlertResponder` writes the rule's
updates and, in the same transaction, the response itself: a MESSAGES record
from the responder that ``acknowledges`` the alert and carries the
``<response/>`` in its ``elements``, and ``acknowledged`` on the responder's
MESSAGE_DELIVERIES rows. Then the result goes to the responder and a
``<responded/>`` headline to every other session of every recipient (the
responder's other devices included).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element

from carewire.adapters.xmpp.gateway import AlertResponder, ResponseError
from carewire.core import hook_names as H
from carewire.core.events import AlertResponded, IqRequest
from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.datasets.model import Record
from carewire.datasets.paths import PathResolver, parse_path
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query, Sort
from carewire.datasets.registry import Registry
from carewire.datasets.service import Batch, DatasetService
from carewire.xmpp import alert as al
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.xml import make, serialize

log = logging.getLogger(__name__)

MESSAGES = "MESSAGES"
MESSAGE_DELIVERIES = "MESSAGE_DELIVERIES"
DELIVERIES = "DELIVERIES"
IDENTITIES = "IDENTITIES"
USERS = "USERS"
EXPIRED_STATE = "expired"
#: Paths from a MESSAGES record to its recipients' identity names and user logins.
_RECIPIENT_PATHS = (
    "message_deliveries.recipient.name",
    "message_deliveries.recipient.usr.login",
    "recipients.name",
    "recipients.usr.login",
)
_C = StanzaCondition


@dataclass(frozen=True, slots=True, kw_only=True)
class _Responder:
    """Who responds: login, bare JID, IDENTITIES (best match first), MESSAGE_DELIVERIES rows."""

    login: str
    bare: str
    identities: tuple[Record, ...]
    rows: tuple[Record, ...]


class AlertResponses:
    """Checks a response, applies it, and tells the other recipients."""

    def __init__(
        self,
        ctx: FeatureContext,
        *,
        datasets: DatasetService,
        resolver: PathResolver,
        registry: Registry,
        responder: AlertResponder,
    ) -> None:
        self.ctx = ctx
        self.datasets = datasets
        self.resolver = resolver
        self.registry = registry
        self.responder = responder
        # (alert id, login) of responses being applied: a concurrent second one is refused.
        self._in_flight: set[tuple[str, str]] = set()

    async def respond(self, request: IqRequest) -> Element | None:
        """Handle ``<response/>`` (IQ set to the server): an empty result, or a stanza error."""
        login = request.sender_login
        try:
            response = al.parse_response(request.payload)
        except al.AlertFormatError as exc:
            raise StanzaError(_C.BAD_REQUEST, str(exc)) from None
        key = (response.alert_id, login)
        if key in self._in_flight:
            raise StanzaError(_C.CONFLICT, "Your response to this alert is being recorded")
        self._in_flight.add(key)
        try:
            message, alert = await self._apply(request, response)
        finally:
            self._in_flight.discard(key)
        log.info("alert response %s by %s", response.action.value, login)
        await self._notify(request, message, alert, response.action)
        await self.ctx.hooks.fire(
            H.ALERT_RESPONDED,
            AlertResponded(alert_id=alert.id, login=login, action=response.action.value),
        )
        return None

    async def _apply(self, request: IqRequest, response: al.Response) -> tuple[Record, al.Alert]:
        """Check the response, then write the rule's updates and the response together."""
        message, alert = await self._alert(response.alert_id)
        who = await self._responder(message, request.sender_login, str(request.from_jid.bare))
        await self._check(message, alert, response.action, who)
        delivery = await self._delivery(message)
        now = self.ctx.clock.now()

        async def record(batch: Batch) -> None:
            await self._record(batch, message, response, who, now)

        try:
            await self.responder.apply(
                delivery=delivery,
                action=response.action.value,
                responder_login=who.login,
                now=now,
                also=record,
            )
        except ResponseError as exc:
            raise StanzaError(_condition(exc.condition), exc.message) from None
        return message, alert

    async def _alert(self, alert_id: str) -> tuple[Record, al.Alert]:
        """The alert's MESSAGES record and the alert as sent."""
        await self.ctx.durability.flush()  # an alert sent a moment ago may still be queued
        message = await self._one(MESSAGES, Filter(field="uuid", op=FilterOp.EQ, value=alert_id))
        if message is None:
            raise StanzaError(_C.ITEM_NOT_FOUND, "No such alert")
        try:
            alert = al.alert_from_stored(str(message.get("elements") or ""))
        except al.AlertFormatError as exc:
            log.error("stored alert of message %s is malformed: %s", message.id, exc)
            raise StanzaError(_C.INTERNAL_SERVER_ERROR, "The stored alert is unreadable") from None
        if alert is None:
            raise StanzaError(_C.ITEM_NOT_FOUND, "This message is not an alert")
        return message, alert

    async def _one(self, dataset: str, *filters: Filter) -> Record | None:
        page = await self.datasets.query(dataset, Query(filters=filters, limit=1))
        return page.records[0] if page.records else None

    async def _all(self, dataset: str, *filters: Filter) -> list[Record]:
        page = await self.datasets.query(dataset, Query(filters=filters, limit=MAX_LIMIT))
        return list(page.records)

    async def _responder(self, message: Record, login: str, bare: str) -> _Responder:
        """The responder's IDENTITIES (named by JID or login, or linked to their user)."""
        found = {
            int(r.id): r
            for r in await self._all(
                IDENTITIES, Filter(field="name", op=FilterOp.IN, value=[bare, login])
            )
        }
        user = await self._one(USERS, Filter(field="login", op=FilterOp.EQ, value=login))
        if user is not None:
            linked = await self._all(IDENTITIES, Filter(field="usr", op=FilterOp.EQ, value=user.id))
            found |= {int(r.id): r for r in linked}
        identities = sorted(found.values(), key=lambda r: (r.get("name") != bare, int(r.id)))
        ids = [int(r.id) for r in identities]
        rows = []
        if ids:
            rows = await self._all(
                MESSAGE_DELIVERIES,
                Filter(field="message", op=FilterOp.EQ, value=message.id),
                Filter(field="recipient", op=FilterOp.IN, value=ids),
            )
        return _Responder(login=login, bare=bare, identities=tuple(identities), rows=tuple(rows))

    async def _check(
        self, message: Record, alert: al.Alert, action: al.ResponseAction, who: _Responder
    ) -> None:
        """Refuse a response the responder may not give now."""
        if not await self._is_recipient(message, who):
            raise StanzaError(_C.FORBIDDEN, "You are not a recipient of this alert")
        if not alert.offers(action):
            offered = ", ".join(a.label for a in alert.offered) or "none"
            raise StanzaError(
                _C.NOT_ACCEPTABLE,
                f"This alert does not offer {action.label} (offered: {offered})",
            )
        expired = message.get("state") == EXPIRED_STATE
        if expired or alert.is_expired(self.ctx.clock.now()):
            raise StanzaError(_C.NOT_ACCEPTABLE, "The alert has expired")
        if await self._has_responded(message, who):
            raise StanzaError(_C.CONFLICT, "You have already responded to this alert")

    async def _is_recipient(self, message: Record, who: _Responder) -> bool:
        if who.rows:
            return True
        listed = await self.resolver.resolve(
            message, parse_path(self.registry, MESSAGES, "recipients.id")
        )
        ids = {int(r.id) for r in who.identities}
        return isinstance(listed, list) and any(i in ids for i in listed)

    async def _has_responded(self, message: Record, who: _Responder) -> bool:
        """Whether a response message of the responder acknowledges the alert."""
        mine = await self._all(
            MESSAGES,
            Filter(field="acknowledges", op=FilterOp.EQ, value=message.id),
            Filter(field="from", op=FilterOp.IN, value=[int(r.id) for r in who.identities]),
        )
        for rec in mine:
            try:
                if al.response_from_stored(str(rec.get("elements") or "")) is not None:
                    return True
            except al.AlertFormatError:
                continue  # an edited record: not a response
        return False

    async def _record(
        self, batch: Batch, message: Record, response: al.Response, who: _Responder, now: datetime
    ) -> None:
        """Record the response (a MESSAGES record acknowledging the alert) and acknowledge."""
        values: dict[str, object] = {
            "uuid": str(uuid.uuid4()),
            "received_at": now,
            "sent_at": now,
            "message": response.action.label,
            "elements": serialize(al.build_response(response.alert_id, response.action)),
            "state": "valid",
            "acknowledgeable": "f",
            "acknowledges": message.id,
            "from": who.identities[0].id,
        }
        if message.get("conversation") is not None:
            values["conversation"] = message.get("conversation")
        await batch.create(MESSAGES, values)
        for row in who.rows:
            if row.get("acknowledged") is None:
                await batch.update(MESSAGE_DELIVERIES, row.id, {"acknowledged": now})

    async def _delivery(self, message: Record) -> Record:
        """The DELIVERIES record of the firing that sent the alert."""
        page = await self.datasets.query(
            DELIVERIES,
            Query(
                filters=(Filter(field="message", op=FilterOp.EQ, value=message.id),),
                sort=(Sort(field="id", is_descending=True),),
                limit=1,
            ),
        )
        if not page.records:
            raise StanzaError(_C.ITEM_NOT_FOUND, "The rule firing that sent this alert is gone")
        return page.records[0]

    async def _recipient_logins(self, message: Record) -> set[str]:
        """Logins of every recipient of the message (identity names may be logins or JIDs)."""
        paths = [parse_path(self.registry, MESSAGES, p) for p in _RECIPIENT_PATHS]
        values = await self.resolver.resolve_all(message, paths)
        logins: set[str] = set()
        for found in values.values():
            for name in found if isinstance(found, list) else [found]:
                text = str(name or "")
                local, at, domain = text.partition("@")
                if not at:
                    logins.add(text)
                elif domain.partition("/")[0] == self.ctx.hosts.domain:
                    logins.add(local)
        logins.discard("")
        return logins

    async def _notify(
        self, request: IqRequest, message: Record, alert: al.Alert, action: al.ResponseAction
    ) -> None:
        """A ``<responded/>`` headline to every recipient session but the responding one."""
        by = str(request.from_jid.bare)
        notice = al.build_responded(al.Responded(alert_id=alert.id, by=by, action=action))
        body = f"{request.sender_login} responded {action.label}: {alert.subject}"
        for login in sorted(await self._recipient_logins(message)):
            for session in self.ctx.sessions.of_user(login):
                if session is not request.origin:
                    self.ctx.router.deliver(session, _headline(self.ctx, session, notice, body))


def _headline(ctx: FeatureContext, session: Session, notice: Element, body: str) -> Element:
    return make(
        f"{{{ns.CLIENT}}}message",
        {
            "type": "headline",
            "from": ctx.hosts.domain,
            "to": str(session.jid),
            "id": "cw-" + secrets.token_hex(8),
        },
        make(f"{{{ns.CLIENT}}}body", text=body),
        make(notice.tag, dict(notice.attrib)),
    )


def _condition(name: str) -> StanzaCondition:
    try:
        return StanzaCondition(name)
    except ValueError:
        return StanzaCondition.INTERNAL_SERVER_ERROR
