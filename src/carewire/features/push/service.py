"""``push.DOMAIN``: the XMPP face of the server's own push app server (XEP-0357 §5, XEP-0050).

A device registers its APNs or FCM token with an ad-hoc command,
``register-push-apns`` or ``register-push-fcm`` (fields ``token`` and, for
APNs, an optional ``app-id``), and gets back ``jid``, ``node`` and
``secret``, which it then enables on its own account (XEP-0357 §5).
``unregister-push`` (field ``node``) removes a registration. The service
answers disco#info (identity ``pubsub/push``) and lists its commands; it
accepts pubsub publishes only from the server itself. See docs/push.md.
"""

from __future__ import annotations

import logging
import secrets
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.errors import NotFoundError, UnavailableError, ValidationError
from carewire.features.push import stanzas as ps
from carewire.push.appserver import Publish, PushAppServer
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

INFO: Final = f"{{{ns.DISCO_INFO}}}query"
ITEMS: Final = f"{{{ns.DISCO_ITEMS}}}query"
PUBSUB: Final = f"{{{ps.PUBSUB}}}pubsub"


def _info(identity: tuple[str, str, str], features: tuple[str, ...], node: str | None) -> Element:
    query = make(INFO, {"node": node} if node else None)
    category, type_, name = identity
    SubElement(
        query, f"{{{ns.DISCO_INFO}}}identity", {"category": category, "type": type_, "name": name}
    )
    for var in features:
        SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
    return query


class PushAppService:
    """Serves ``push.DOMAIN`` (a router service)."""

    def __init__(self, ctx: FeatureContext, app: PushAppServer) -> None:
        self.ctx = ctx
        self.app = app
        self.jid = ctx.hosts.push_domain

    async def __call__(
        self, stanza: Element, from_jid: JID, to: JID, origin: Session | None
    ) -> None:
        """Router entry point: every stanza addressed to ``push.DOMAIN``."""
        if stanza.tag != st.IQ:
            if stanza.tag == st.MESSAGE:
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            return  # presence: nothing to say
        if stanza.get("type") not in ("get", "set") or len(stanza) == 0:
            return  # responses: we never ask
        if to.localpart is not None or to.resource is not None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "address push.DOMAIN itself")
        payload = stanza[0]
        if payload.tag == PUBSUB and stanza.get("type") == "set":
            self.accept_publish(payload, from_jid, origin)
            return
        if origin is None or from_jid.localpart is None:
            raise StanzaError(StanzaCondition.FORBIDDEN)
        result = await self._answer(stanza.get("type", ""), payload, from_jid)
        reply = st.iq_result(stanza, result)
        reply.set("from", self.jid)
        self.ctx.router.deliver(origin, reply)

    def accept_publish(self, pubsub: Element, from_jid: JID, origin: Session | None) -> None:
        """A XEP-0357 §7 publish: only the server publishes, on behalf of an account."""
        if origin is not None or from_jid.localpart is None:
            raise StanzaError(StanzaCondition.FORBIDDEN, "only the server publishes notifications")
        node, secret, note = ps.parse_publish(pubsub)
        self.app.submit(Publish(node=node, secret=secret, note=note))

    async def _answer(self, iq_type: str, payload: Element, from_jid: JID) -> Element | None:
        node = payload.get("node")
        if iq_type == "get" and payload.tag == INFO:
            return self._disco_info(node)
        if iq_type == "get" and payload.tag == ITEMS:
            return self._disco_items(node)
        if iq_type == "set" and payload.tag == ps.COMMAND:
            return await self._command(payload, from_jid)
        raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)

    def _commands(self) -> list[tuple[str, str]]:
        found = [
            (f"{ps.REGISTER_PREFIX}{s.value}", f"Register a {s.value} device")
            for s in sorted(self.app.services)
        ]
        return [*found, (ps.UNREGISTER, "Unregister a device")]

    def _disco_info(self, node: str | None) -> Element:
        if node is None:
            features = (ps.PUSH, ps.COMMANDS, ns.DISCO_INFO, ns.DISCO_ITEMS)
            return _info(("pubsub", "push", "Carewire push"), features, None)
        if node == ps.COMMANDS or node in dict(self._commands()):
            return _info(
                ("automation", "command-node" if node != ps.COMMANDS else "command-list", node),
                (ps.COMMANDS, "jabber:x:data"),
                node,
            )
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown node")

    def _disco_items(self, node: str | None) -> Element:
        query = make(ITEMS, {"node": node} if node else None)
        if node is None:
            return query
        if node != ps.COMMANDS:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown node")
        for name, label in self._commands():
            SubElement(
                query, f"{{{ns.DISCO_ITEMS}}}item", {"jid": self.jid, "node": name, "name": label}
            )
        return query

    async def _command(self, command: Element, from_jid: JID) -> Element:
        node = command.get("node", "")
        session_id = command.get("sessionid") or secrets.token_hex(8)
        if command.get("action") == "cancel":
            return make(ps.COMMAND, {"node": node, "sessionid": session_id, "status": "canceled"})
        submitted = command.find(ps.X)
        values = ps.form_values(submitted) if submitted is not None else None
        assert from_jid.localpart is not None
        if node == ps.UNREGISTER:
            if values is None:
                raise StanzaError(
                    StanzaCondition.BAD_REQUEST, "unregister-push: the 'node' field is required"
                )
            if not await self.app.unregister(from_jid.localpart, values.get("node", "")):
                raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such registration")
            return ps.command_result(node, session_id, {})
        if not node.startswith(ps.REGISTER_PREFIX):
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown command")
        service = node.removeprefix(ps.REGISTER_PREFIX)
        if values is None:
            if service not in {s.value for s in self.app.services}:
                raise StanzaError(
                    StanzaCondition.ITEM_NOT_FOUND, f"unknown push service {service[:32]!r}"
                )
            return ps.command_form(node, session_id, service)
        return await self._register(node, session_id, service, values, from_jid)

    async def _register(
        self, node: str, session_id: str, service: str, values: dict[str, str], from_jid: JID
    ) -> Element:
        assert from_jid.localpart is not None
        try:
            reg, secret = await self.app.register(
                from_jid.localpart,
                from_jid.resource or "",
                service=service,
                token=values.get("token", ""),
                topic=values.get("app-id", ""),
            )
        except ValidationError as exc:
            condition = (
                StanzaCondition.ITEM_NOT_FOUND
                if exc.code == "unknown-service"
                else StanzaCondition.BAD_REQUEST
            )
            raise StanzaError(condition, str(exc)) from None
        except UnavailableError as exc:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE, str(exc)) from None
        except NotFoundError:
            raise StanzaError(StanzaCondition.FORBIDDEN) from None
        return ps.command_result(
            node, session_id, {"jid": self.jid, "node": reg.node, "secret": secret}
        )
