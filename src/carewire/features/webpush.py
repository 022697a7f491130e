"""Web Push for the web client (``urn:carewire:webpush:0``; RFC 8030, RFC 8291, RFC 8292).

Theory of operation
-------------------
The web client, signed in over the XMPP WebSocket, asks its own account
(an IQ without ``to``) for the server's VAPID public key::

    <iq type='get'><vapid xmlns='urn:carewire:webpush:0'/></iq>
    → <vapid xmlns='urn:carewire:webpush:0' key='BCv…(87 characters)'/>

subscribes with the browser's push service (``pushManager.subscribe`` with
that key) and hands the subscription over::

    <iq type='set'><subscribe xmlns='urn:carewire:webpush:0'
        endpoint='https://…' p256dh='B…' auth='…'/></iq>
    <iq type='set'><unsubscribe xmlns='urn:carewire:webpush:0' endpoint='https://…'/></iq>

A malformed subscription is ``bad-request`` with a text naming the fault;
without Web Push on the server (``[push] webpush``) every request is
``service-unavailable``.

When to push follows the phones' policy (:mod:`carewire.features.push`): a
message worth a push (:func:`~carewire.features.push.push_priority`: a body
or an alert) to a user no session reads now (none available, or only
detached or inactive ones). An alert is pushed when it is raised
(``alert/notifying``), its stored copy then not again; a message when it
goes to offline storage (``message/stored``). The push says "alert" or
"message" and how many since the user was last active; nothing else.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import AlertNotifying, IqRequest, SessionEvent, StanzaEvent
from carewire.core.feature import FeatureContext, IqTarget
from carewire.errors import NotFoundError, ValidationError
from carewire.features.push import is_unreachable, push_priority
from carewire.push.model import PushPriority
from carewire.push.webpush import WebPushService
from carewire.push.webpush_model import WebKind
from carewire.xmpp.alert import ALERT
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.xml import make

__all__ = ["NS", "WebPushNotifier", "setup"]

log = logging.getLogger(__name__)

NS: Final = "urn:carewire:webpush:0"
VAPID: Final = f"{{{NS}}}vapid"
SUBSCRIBE: Final = f"{{{NS}}}subscribe"
UNSUBSCRIBE: Final = f"{{{NS}}}unsubscribe"
#: Alerts whose early pushes are remembered (an alert's copies are stored within its send).
PUSHED_ALERTS_KEPT: Final = 256
NOT_ENABLED: Final = "web push is not enabled on this server"


class WebPushNotifier:
    """The XMPP side of Web Push: the IQ namespace and when to push."""

    def __init__(self, ctx: FeatureContext, service: WebPushService) -> None:
        self.ctx = ctx
        self.service = service
        self.counts: dict[str, int] = {}  # login → pushes since last active
        self.pushed_alerts: OrderedDict[str, set[str]] = OrderedDict()

    # -- the IQ namespace -----------------------------------------------------------------

    async def on_vapid(self, req: IqRequest) -> Element | None:
        """``get <vapid/>``: the applicationServerKey (base64url)."""
        _ = req.sender_login  # only accounts ask (forbidden otherwise)
        return make(VAPID, {"key": self.service.public_key})

    async def on_subscribe(self, req: IqRequest) -> Element | None:
        """``set <subscribe endpoint p256dh auth/>``: store the browser's subscription."""
        login = req.sender_login
        attrs = req.payload.attrib
        missing = [a for a in ("endpoint", "p256dh", "auth") if not attrs.get(a)]
        if missing:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"subscribe: '{missing[0]}' is required")
        try:
            await self.service.subscribe(
                login, endpoint=attrs["endpoint"], p256dh=attrs["p256dh"], auth=attrs["auth"]
            )
        except ValidationError as exc:
            raise StanzaError(StanzaCondition.BAD_REQUEST, str(exc)) from None
        except NotFoundError:
            raise StanzaError(StanzaCondition.FORBIDDEN) from None
        return None

    async def on_unsubscribe(self, req: IqRequest) -> Element | None:
        """``set <unsubscribe endpoint/>``: forget that subscription of the account."""
        login = req.sender_login
        endpoint = req.payload.get("endpoint", "")
        if not endpoint:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "unsubscribe: 'endpoint' is required")
        if not await self.service.unsubscribe(login, endpoint):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such subscription")
        return None

    # -- when to push ---------------------------------------------------------------------

    def _is_read_now(self, login: str) -> bool:
        return any(not is_unreachable(s) for s in self.ctx.sessions.top_priority(login))

    def _push(self, login: str, kind: WebKind, priority: PushPriority) -> None:
        count = self.counts.get(login, 0) + 1
        self.counts[login] = count
        self.service.notify(login, kind, count=count, priority=priority)

    def on_alert(self, event: AlertNotifying) -> None:
        """Hook ``alert/notifying``: each recipient no session reads now, at once."""
        priority = push_priority(event.stanza)
        if priority is None:
            return
        pushed: set[str] = set()
        for jid in event.recipients:
            login = jid.localpart
            if login is None or self._is_read_now(login):
                continue
            pushed.add(login)
            self._push(login, WebKind.ALERT, priority)
        if pushed:
            self.pushed_alerts[event.alert_id] = pushed
            while len(self.pushed_alerts) > PUSHED_ALERTS_KEPT:
                self.pushed_alerts.popitem(last=False)

    def on_stored(self, event: StanzaEvent) -> None:
        """Hook ``message/stored``: no session is available (an alert's: pushed already)."""
        priority = push_priority(event.stanza)
        login = None if event.to_jid is None else event.to_jid.localpart
        if priority is None or login is None:
            return
        pushed = self.pushed_alerts.get(event.stanza.get("id", ""))
        if pushed is not None and login in pushed:
            pushed.discard(login)  # the copy is stored once
            return
        kind = WebKind.ALERT if event.stanza.find(ALERT) is not None else WebKind.MESSAGE
        self._push(login, kind, priority)

    def on_active(self, event: SessionEvent) -> None:
        """Available, active again or resumed: the count starts again."""
        if not is_unreachable(event.session):
            self.counts.pop(event.session.username, None)


async def _not_enabled(_req: IqRequest) -> Element | None:
    raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, NOT_ENABLED)


def setup(ctx: FeatureContext) -> None:
    """Answer ``urn:carewire:webpush:0`` and push to browsers when Web Push is configured."""
    service = ctx.find(WebPushService)
    if service is None:
        log.debug("web push is off ([push] webpush not enabled)")
        for tag, kind in ((VAPID, "get"), (SUBSCRIBE, "set"), (UNSUBSCRIBE, "set")):
            ctx.iq.register(tag, _not_enabled, types=(kind,), targets=(IqTarget.ACCOUNT,))
        return
    notifier = ctx.provide(WebPushNotifier(ctx, service))
    ctx.disco.add_account_feature(NS)
    ctx.iq.register(VAPID, notifier.on_vapid, types=("get",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(SUBSCRIBE, notifier.on_subscribe, types=("set",), targets=(IqTarget.ACCOUNT,))
    ctx.iq.register(
        UNSUBSCRIBE, notifier.on_unsubscribe, types=("set",), targets=(IqTarget.ACCOUNT,)
    )
    ctx.hooks.on(H.ALERT_NOTIFYING, notifier.on_alert)
    ctx.hooks.on(H.MESSAGE_STORED, notifier.on_stored)
    ctx.hooks.on(H.SESSION_INITIAL_PRESENCE, notifier.on_active)
    ctx.hooks.on(H.SESSION_CLIENT_STATE, notifier.on_active)
    ctx.hooks.on(H.SESSION_RESUMED, notifier.on_active)
