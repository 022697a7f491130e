"""XEP-0357 Push Notifications: enable/disable, and publishing when a device cannot be reached.

Theory of operation
-------------------
The server hosts its own app server (:mod:`carewire.push`) at
``push.DOMAIN`` (:mod:`.service`): a device registers its APNs/FCM token
there and gets a node and a secret. It then sends ``<enable/>`` to its own
account (XEP-0357 §5) from the resource it runs as; the enable is stored and
kept in memory with that resource. Only ``push.DOMAIN`` can be enabled
(federation is off), and only a node of the account's own, with its secret.

A message is *push-worthy* when it has a body or an alert (not an error,
headline or chat state). It is published (XEP-0357 §7) to:

- every enabled node of the account when it went to offline storage
  (``message/stored``: no available session at all); for an alert, as soon as
  it is built (``alert/notifying``: coverage has chosen the recipients), for
  all its recipients without an available session at once, rather than as
  each one's copy is stored, and that copy is then not pushed again;
- the nodes enabled from a session's resource when it is delivered to that
  session while the session is detached (XEP-0198, waiting for resumption) or
  inactive (XEP-0352), the states a phone's app is in when the OS suspended it;
  for an alert, when it is built, as above.

The summary carries the count of push-worthy messages since the device was
last active, the priority (an Urgent or Critical alert is ``urgent``) and an
opaque id; never a sender, a body or a patient. The count starts again when a
session of that resource becomes available or active. A node whose token the
provider rejects is disabled (XEP-0357 §7.1). Without the push app server
(``[push]`` not enabled) the feature does nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import (
    AccountEvent,
    AlertNotifying,
    DeliveryEvent,
    IqRequest,
    SessionEvent,
    StanzaEvent,
)
from carewire.core.feature import FeatureContext, IqTarget
from carewire.core.sessions import Session
from carewire.features.csi import CSI_STATE
from carewire.features.push import stanzas as ps
from carewire.features.push.service import PushAppService
from carewire.push.appserver import PushAppServer
from carewire.push.model import Notification, PushPriority, RegistrationState
from carewire.push.records import PushEnable, PushStore, Registration
from carewire.security.audit import AuditEvent, AuditTrail, Channel
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.alert import ALERT
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID

__all__ = ["PushNotifier", "is_unreachable", "push_priority", "setup"]

log = logging.getLogger(__name__)

#: After blocking, carbons and CSI: only what is really written to the session is pushed.
DELIVER_PRIORITY: Final = -200
_URGENT_ALERTS: Final = frozenset({"urgent", "critical"})
_BODY: Final = f"{{{ns.CLIENT}}}body"
#: Alerts whose early pushes are remembered (an alert's copies are stored within its send).
PUSHED_ALERTS_KEPT: Final = 256

EnableKey = tuple[str, str]  # (jid, node)


def push_priority(stanza: Element) -> PushPriority | None:
    """The priority a message is pushed with, or None when it is not worth a push."""
    if stanza.tag != st.MESSAGE or stanza.get("type") in ("error", "headline"):
        return None
    alert = stanza.find(ALERT)
    if alert is not None:
        is_urgent = alert.get("priority", "").lower() in _URGENT_ALERTS
        return PushPriority.URGENT if is_urgent else PushPriority.NORMAL
    return PushPriority.NORMAL if stanza.find(_BODY) is not None else None


def is_unreachable(session: Session) -> bool:
    """Detached (XEP-0198) or inactive (XEP-0352): the app may be suspended."""
    return (session.sm is not None and session.sm.is_detached) or session.data.get(
        CSI_STATE
    ) == "inactive"


class PushNotifier:
    """The XMPP server's side of XEP-0357."""

    def __init__(
        self,
        ctx: FeatureContext,
        app: PushAppServer,
        service: PushAppService,
        audit: AuditTrail | None,
    ) -> None:
        self.ctx = ctx
        self.app = app
        self.store: PushStore = app.store
        self.service = service
        self.audit = audit
        self.enables: dict[str, dict[EnableKey, PushEnable]] = {}
        self.counts: dict[tuple[str, str], int] = {}  # (login, node) → messages since active
        # Alert id → logins pushed when it was raised, whose stored copy is not pushed again.
        self.pushed_alerts: OrderedDict[str, set[str]] = OrderedDict()

    async def load(self, _payload: object = None) -> None:
        """Hook ``server/started``: the enables, from the store."""
        self.enables.clear()
        for enable in await self.store.enables():
            self.enables.setdefault(enable.login, {})[(enable.jid, enable.node)] = enable

    # -- XEP-0357 §5, §6 ------------------------------------------------------------------

    async def on_enable(self, req: IqRequest) -> Element | None:
        """``<enable/>`` to the own account: only push.DOMAIN, a node of ours, its secret."""
        login = req.sender_login
        enable = ps.parse_enable(req.payload)
        if str(enable.jid) != self.service.jid:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, f"push notifications go only to {self.service.jid}"
            )
        reg = await self.app.check_secret(login, enable.node, enable.secret)
        if reg is None:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "unknown node or wrong secret")
        if reg.state is RegistrationState.INVALID:
            raise StanzaError(
                StanzaCondition.NOT_ACCEPTABLE, "the device token was rejected: register again"
            )
        record = PushEnable(
            login=login,
            resource=req.from_jid.resource or "",
            jid=str(enable.jid),
            node=enable.node,
            secret=enable.secret,
            enabled_at=self.ctx.clock.now(),
        )
        await self.store.add_enable(record)
        self.enables.setdefault(login, {})[(record.jid, record.node)] = record
        await self._audit(login, "push.enable", record.node)
        return None

    async def on_disable(self, req: IqRequest) -> Element | None:
        """``<disable/>``: one node at the JID, or all of them."""
        login = req.sender_login
        disable = ps.parse_disable(req.payload)
        jid = str(disable.jid)
        await self.store.remove_enables(login, jid, disable.node)
        mine = self.enables.get(login, {})
        for key in [k for k in mine if k[0] == jid and disable.node in (None, k[1])]:
            del mine[key]
            self.counts.pop((login, key[1]), None)
        await self._audit(login, "push.disable", disable.node or "*")
        return None

    async def on_gone(self, reg: Registration) -> None:
        """A registration was rejected by its provider (XEP-0357 §7.1), replaced or removed."""
        await self.store.remove_enables(reg.login, self.service.jid, reg.node)
        self.enables.get(reg.login, {}).pop((self.service.jid, reg.node), None)
        self.counts.pop((reg.login, reg.node), None)

    # -- when to publish ------------------------------------------------------------------

    def on_alert(self, event: AlertNotifying) -> None:
        """Hook ``alert/notifying``: the recipients' phones that no session reaches, at once.

        A recipient without an available session (its copy goes to offline storage): every
        enabled node; one whose copy goes to detached or inactive sessions: the nodes
        enabled from those sessions' resources (as :meth:`on_deliver` would). The push does
        not wait for the copy (an alert's copies are routed one recipient after another),
        and the copy's ``message/stored`` or ``session/deliver`` is then not pushed again.
        """
        priority = push_priority(event.stanza)
        if priority is None:
            return
        pushed: set[str] = set()
        for jid in event.recipients:
            login = jid.localpart
            mine = self.enables.get(login) if login is not None else None
            if not mine or login is None:
                continue
            targets = self.ctx.sessions.top_priority(login)
            if any(not is_unreachable(s) for s in targets):
                continue  # a session reads it now: no push, as at delivery
            resources = {s.resource for s in targets}
            pushed.add(login)
            for enable in mine.values():
                if not targets or enable.resource in resources:
                    self._publish(enable, priority)
        if pushed:
            self.pushed_alerts[event.alert_id] = pushed
            while len(self.pushed_alerts) > PUSHED_ALERTS_KEPT:
                self.pushed_alerts.popitem(last=False)

    def _was_pushed(self, stanza: Element, login: str) -> bool:
        """Whether this copy's push left when its alert was raised (:meth:`on_alert`)."""
        pushed = self.pushed_alerts.get(stanza.get("id", ""))
        return pushed is not None and login in pushed

    def on_stored(self, event: StanzaEvent) -> None:
        """Hook ``message/stored``: no session is available; every enabled node hears of it."""
        priority = push_priority(event.stanza)
        login = None if event.to_jid is None else event.to_jid.localpart
        if priority is None or login is None:
            return
        if self._was_pushed(event.stanza, login):
            self.pushed_alerts[event.stanza.get("id", "")].discard(login)  # stored once
            return
        for enable in self.enables.get(login, {}).values():
            self._publish(enable, priority)

    def on_deliver(self, event: DeliveryEvent) -> None:
        """Hook ``session/deliver``: a detached or inactive session's device hears of it."""
        priority: PushPriority | None = None
        is_known = False  # the priority is worked out at the first session with pushes enabled
        for target in event.targets:
            if target is None:
                continue
            session, copy = target
            mine = self.enables.get(session.username)
            if not mine or not is_unreachable(session):
                continue
            if not is_known:
                priority, is_known = push_priority(event.stanza), True
            if priority is not None and not self._was_pushed(copy, session.username):
                for enable in mine.values():
                    if enable.resource == session.resource:
                        self._publish(enable, priority)
        # never drops a stanza

    def on_active(self, event: SessionEvent) -> None:
        """Available, active again or resumed: the device's count starts again."""
        session = event.session
        if is_unreachable(session):
            return
        for enable in self.enables.get(session.username, {}).values():
            if enable.resource == session.resource:
                self.counts.pop((enable.login, enable.node), None)

    def on_removed(self, event: AccountEvent) -> None:
        """Hook ``account/removed``: its rows went with it."""
        for key in self.enables.pop(event.login, {}):
            self.counts.pop((event.login, key[1]), None)

    def _publish(self, enable: PushEnable, priority: PushPriority) -> None:
        key = (enable.login, enable.node)
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        note = Notification(count=count, priority=priority, opaque_id=secrets.token_hex(16))
        pubsub = ps.build_publish(enable.node, enable.secret, note)
        self.service.accept_publish(
            pubsub, JID.parse(f"{enable.login}@{self.ctx.hosts.domain}"), None
        )

    async def _audit(self, login: str, action: str, node: str) -> None:
        if self.audit is not None:
            await self.audit.record(
                AuditEvent(
                    actor=f"xmpp:{login}",
                    channel=Channel.XMPP,
                    action=action,
                    target=login,
                    details={"node": node},
                )
            )


def setup(ctx: FeatureContext) -> None:
    """Serve push.DOMAIN and XEP-0357 when the push app server is configured."""
    app = ctx.find(PushAppServer)
    if app is None:
        log.debug("push notifications are off ([push] not enabled)")
        return
    service = PushAppService(ctx, app)
    notifier = ctx.provide(PushNotifier(ctx, app, service, ctx.find(AuditTrail)))
    app.on_gone.append(notifier.on_gone)
    ctx.router.add_service(ctx.hosts.push_domain, service)
    # XEP-0357 §4: "If a server supports push notifications, it MUST report that by
    # including 'urn:xmpp:push:0' in response to a service discovery information request".
    ctx.disco.add_account_feature(ps.PUSH)
    ctx.iq.register(ps.ENABLE, notifier.on_enable, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(ps.DISABLE, notifier.on_disable, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.hooks.on(H.SERVER_STARTED, notifier.load)
    ctx.hooks.on(H.MESSAGE_STORED, notifier.on_stored)
    ctx.hooks.on(H.ALERT_NOTIFYING, notifier.on_alert)
    ctx.hooks.on(H.SESSION_DELIVER, notifier.on_deliver, priority=DELIVER_PRIORITY)
    ctx.hooks.on(H.SESSION_INITIAL_PRESENCE, notifier.on_active)
    ctx.hooks.on(H.SESSION_CLIENT_STATE, notifier.on_active)
    ctx.hooks.on(H.SESSION_RESUMED, notifier.on_active)
    ctx.hooks.on(H.ACCOUNT_REMOVED, notifier.on_removed)
