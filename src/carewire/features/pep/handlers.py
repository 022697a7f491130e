"""The pubsub IQs of PEP (XEP-0060 subset for XEP-0163): parse, call the service, answer.

``<pubsub xmlns='http://jabber.org/protocol/pubsub'>`` with ``publish`` (and
``publish-options``), ``retract`` and ``create`` (and ``configure``) to one's own
account; ``items`` to one's own or another account; and the owner's
``<pubsub xmlns='…#owner'>`` ``configure``, ``delete`` and ``purge``. Writes to
another account's service are ``forbidden`` (XEP-0163 §4.1: the account owns it).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.features.pep.model import (
    MAX_ID_LENGTH,
    NODE_CONFIG,
    PUBLISH_OPTIONS,
    PUBSUB,
    PUBSUB_OWNER,
    X,
    config_form,
    form_values,
    pubsub_error,
)
from carewire.features.pep.service import PepService
from carewire.xmpp.errors import StanzaCondition, StanzaError

QUERY = f"{{{PUBSUB}}}pubsub"
OWNER_QUERY = f"{{{PUBSUB_OWNER}}}pubsub"
_UNSUPPORTED = {
    "subscribe": "subscribe",
    "unsubscribe": "subscribe",
    "options": "subscription-options",
    "subscriptions": "retrieve-subscriptions",
    "affiliations": "retrieve-affiliations",
    "default": "retrieve-default",
}


def _local(el: Element) -> str:
    return el.tag.rpartition("}")[2] if isinstance(el.tag, str) else ""


def _node(el: Element) -> str:
    node = el.get("node")
    if not node:
        # XEP-0060 §7.1.3.3: a request without a NodeID.
        raise pubsub_error(StanzaCondition.BAD_REQUEST, "nodeid-required", "a node is required")
    if len(node) > MAX_ID_LENGTH:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "the node id is too long")
    return node


def _item_id(el: Element) -> str | None:
    item_id = el.get("id") or None
    if item_id is not None and len(item_id) > MAX_ID_LENGTH:
        raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, "the item id is too long")
    return item_id


def _form(parent: Element | None, form_type: str) -> dict[str, list[str]]:
    """The submitted form inside ``parent`` (publish-options, configure), checked."""
    if parent is None:
        return {}
    x = parent.find(X)
    if x is None:
        return {}
    if x.get("type") == "cancel":
        return {}
    values = form_values(x)
    if values.get("FORM_TYPE", [form_type])[:1] != [form_type]:
        raise pubsub_error(StanzaCondition.BAD_REQUEST, "invalid-options", "wrong FORM_TYPE")
    return values


def _unsupported(name: str) -> StanzaError:
    return pubsub_error(
        StanzaCondition.FEATURE_NOT_IMPLEMENTED,
        "unsupported",
        "PEP subscriptions are implicit (presence and +notify)",
        feature=_UNSUPPORTED[name],
    )


class PepHandlers:
    """IQ handlers on one :class:`PepService`."""

    def __init__(self, service: PepService) -> None:
        self.service = service

    async def own_set(self, req: IqRequest) -> Element | None:
        """``pubsub`` set to one's own account: publish, retract, create."""
        children = list(req.payload)
        if not children:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "empty pubsub request")
        first, name = children[0], _local(children[0])
        login = req.sender_login
        if name == "publish":
            options = _form(req.payload.find(f"{{{PUBSUB}}}publish-options"), PUBLISH_OPTIONS)
            return await self._publish(login, first, options)
        if name == "retract":
            await self._retract(login, first)
            return None
        if name == "create":
            configure = req.payload.find(f"{{{PUBSUB}}}configure")
            await self.service.create(login, _node(first), _form(configure, NODE_CONFIG))
            return None
        if name in _UNSUPPORTED:
            raise _unsupported(name)
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown pubsub request {name!r}")

    async def _publish(
        self, login: str, publish: Element, options: dict[str, list[str]]
    ) -> Element:
        node = _node(publish)
        items = publish.findall(f"{{{PUBSUB}}}item")
        if not items:
            # XEP-0060 §7.1.3.6: a persistent node needs an item.
            raise pubsub_error(StanzaCondition.BAD_REQUEST, "item-required", "publish one item")
        if len(items) > 1:
            raise pubsub_error(StanzaCondition.BAD_REQUEST, "invalid-payload", "one item at a time")
        payloads = list(items[0])
        if not payloads:
            raise pubsub_error(StanzaCondition.BAD_REQUEST, "payload-required", "the item is empty")
        if len(payloads) > 1:
            # XEP-0060 §7.1.3.5: "more than one payload element ... <invalid-payload/>".
            raise pubsub_error(
                StanzaCondition.BAD_REQUEST, "invalid-payload", "one payload per item"
            )
        item_id = await self.service.publish(
            login, node, _item_id(items[0]), payloads[0], options=options
        )
        out = Element(QUERY)
        SubElement(
            SubElement(out, f"{{{PUBSUB}}}publish", {"node": node}),
            f"{{{PUBSUB}}}item",
            {"id": item_id},
        )
        return out

    async def _retract(self, login: str, retract: Element) -> None:
        node = _node(retract)
        items = retract.findall(f"{{{PUBSUB}}}item")
        item_id = _item_id(items[0]) if len(items) == 1 else None
        if not item_id:
            # XEP-0060 §7.2.3.3: "<bad-request/> ... <item-required/>".
            raise pubsub_error(StanzaCondition.BAD_REQUEST, "item-required", "name one item id")
        notify_attr = retract.get("notify")
        notify = None if notify_attr is None else notify_attr in ("1", "true")
        await self.service.retract(login, node, item_id, notify=notify)

    async def get(self, req: IqRequest) -> Element | None:
        """``pubsub`` get of ``items``, to one's own or another account (XEP-0060 §6.5)."""
        children = list(req.payload)
        if not children or _local(children[0]) != "items":
            name = _local(children[0]) if children else ""
            if name in _UNSUPPORTED:
                raise _unsupported(name)
            raise StanzaError(StanzaCondition.BAD_REQUEST, "only items can be fetched")
        items_el = children[0]
        node = _node(items_el)
        ids = [_item_id(i) or "" for i in items_el.findall(f"{{{PUBSUB}}}item")] or None
        max_items = items_el.get("max_items")
        limit: int | None = None
        if max_items is not None:
            if not max_items.isdigit() or int(max_items) < 1:
                raise StanzaError(
                    StanzaCondition.BAD_REQUEST, "max_items must be a positive integer"
                )
            limit = int(max_items)
        owner = req.to_jid.localpart
        if owner is None:  # pragma: no cover - registered for account addresses only
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND)
        found = await self.service.read(req.from_jid, owner, node, ids=ids, max_items=limit)
        out = Element(QUERY)
        items = SubElement(out, f"{{{PUBSUB}}}items", {"node": node})
        for item_id, payload in found:
            SubElement(items, f"{{{PUBSUB}}}item", {"id": item_id}).append(payload)
        return out

    async def owner_get(self, req: IqRequest) -> Element | None:
        """``pubsub#owner`` get of ``configure``: the node's configuration form."""
        configure = req.payload.find(f"{{{PUBSUB_OWNER}}}configure")
        if configure is None:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, "only configure")
        node = _node(configure)
        config = await self.service.config_of(req.sender_login, node)
        out = Element(OWNER_QUERY)
        SubElement(out, f"{{{PUBSUB_OWNER}}}configure", {"node": node}).append(config_form(config))
        return out

    async def owner_set(self, req: IqRequest) -> Element | None:
        """``pubsub#owner`` set: configure, delete, purge."""
        children = list(req.payload)
        if not children:
            raise StanzaError(StanzaCondition.BAD_REQUEST, "empty pubsub#owner request")
        first, name, login = children[0], _local(children[0]), req.sender_login
        if name == "configure":
            await self.service.configure(login, _node(first), _form(first, NODE_CONFIG))
        elif name == "delete":
            await self.service.delete(login, _node(first))
        elif name == "purge":
            await self.service.purge(login, _node(first))
        else:
            raise StanzaError(StanzaCondition.FEATURE_NOT_IMPLEMENTED, f"{name!r} is not supported")
        return None

    async def forbidden(self, _req: IqRequest) -> Element | None:
        """Writes to another account's PEP service: only the owner may (XEP-0060 §7.1.3.1)."""
        raise StanzaError(
            StanzaCondition.FORBIDDEN, "only the account's owner may change its nodes"
        )
