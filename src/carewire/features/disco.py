"""XEP-0030 Service Discovery: disco#info and disco#items for the server and accounts.

The server (``to=DOMAIN``) answers with its identity and every feature the
loaded features registered through :class:`~carewire.core.feature.DiscoRegistry`;
an account's bare JID is answered by the server on the account's behalf
(XEP-0030 §3.1: "the server itself MUST reply on behalf of the hosted
account", with "a category of "account" [and] most likely, a type of
"registered""). The registry is read
at request time, so features loaded after this one are advertised too.

The XMPP adapter's "Disable Acknowledgments" setting is read at request time
too: while it is on, the acknowledgement feature (``ns.ACK``) is not
advertised ("this checkbox only prevents detection of the feature"; storing
acknowledgeable messages goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement

from carewire.adapters.xmpp.gateway import ChatSettingsSource
from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

log = logging.getLogger(__name__)

INFO_QUERY = f"{{{ns.DISCO_INFO}}}query"
ITEMS_QUERY = f"{{{ns.DISCO_ITEMS}}}query"

# XEP-0030 §3.1: "every entity MUST support at least the
# 'http://jabber.org/protocol/disco#info' feature".
_DISCO_FEATURES = (ns.DISCO_INFO, ns.DISCO_ITEMS)
#: The acknowledgement feature, hidden while the XMPP adapter disables acknowledgements
#: (kept as a name of this module for its importers).
ACK_FEATURE = ns.ACK
#: XEP-0157's FORM_TYPE for the server's contact addresses.
SERVERINFO = "http://jabber.org/network/serverinfo"


def _info(identities: Iterable[tuple[str, str, str]], features: Iterable[str]) -> Element:
    query = Element(INFO_QUERY)
    for category, type_, name in identities:
        attrs = {"category": category, "type": type_}
        if name:
            attrs["name"] = name
        SubElement(query, f"{{{ns.DISCO_INFO}}}identity", attrs)
    for var in sorted(set(features)):
        SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
    return query


def serverinfo_form(addresses: Iterable[tuple[str, tuple[str, ...]]]) -> Element:
    """XEP-0157: the contact addresses as an XEP-0128 form in the server's disco#info.

    "This information MUST be scoped using a FORM_TYPE of
    "http://jabber.org/network/serverinfo"".
    """
    form = Element(f"{{{ns.DATA_FORMS}}}x", {"type": "result"})
    form_type = SubElement(
        form, f"{{{ns.DATA_FORMS}}}field", {"var": "FORM_TYPE", "type": "hidden"}
    )
    SubElement(form_type, f"{{{ns.DATA_FORMS}}}value").text = SERVERINFO
    for var, uris in addresses:
        field = SubElement(form, f"{{{ns.DATA_FORMS}}}field", {"var": var, "type": "list-multi"})
        for uri in uris:
            SubElement(field, f"{{{ns.DATA_FORMS}}}value").text = uri
    return form


def _check_node(req: IqRequest) -> None:
    """No node of ours exists yet: a query naming one gets <item-not-found/>.

    XEP-0030 §7 (Error Conditions) lists <item-not-found/> for "the JID or
    JID+NodeID of the specified target entity does not exist".
    """
    if req.payload.get("node") is not None:
        raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown node")


class Disco:
    """The disco#info / disco#items handlers."""

    def __init__(self, ctx: FeatureContext, settings: ChatSettingsSource) -> None:
        self.ctx = ctx
        self.settings = settings

    async def server_info(self, req: IqRequest) -> Element | None:
        """disco#info to the server: identity server/im plus the server features."""
        _check_node(req)
        identities = [("server", "im", self.ctx.config.server_name)]
        identities.extend(self.ctx.disco.server_identities)
        query = _info(identities, self._visible(self.ctx.disco.server_features))
        if self.ctx.config.contact_addresses:
            query.append(serverinfo_form(self.ctx.config.contact_addresses))
        return query

    async def server_items(self, req: IqRequest) -> Element | None:
        """disco#items to the server: the sub-services that answer (chat.DOMAIN for rooms)."""
        _check_node(req)
        query = Element(ITEMS_QUERY)
        domains = self.ctx.router.service_domains
        if self.ctx.router.is_remote(req.from_jid):
            # Another domain sees the rooms' service only: the others answer nobody
            # from outside (carewire.features.federation).
            domains = tuple(d for d in domains if d == self.ctx.hosts.chat_domain)
        for domain in domains:
            query.append(Element(f"{{{ns.DISCO_ITEMS}}}item", {"jid": domain}))
        return query

    async def account_info(self, req: IqRequest) -> Element | None:
        """disco#info to an account's bare JID (own or another's).

        XEP-0030 §8 (Security Considerations): "In response to a disco#info
        request, the server MUST return a <service-unavailable/> error if ...
        The target entity does not exist (no matter if the request specifies a
        node or not)". Other accounts of this server count as "otherwise
        trusted" requesters, so no presence subscription is required; an
        entity of another domain must have one (checked by the federation
        gate, :mod:`carewire.features.federation`).
        """
        if not await self._exists(req):
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        _check_node(req)
        identities = [("account", "registered", ""), *self.ctx.disco.account_identities]
        query = _info(identities, self._visible(self.ctx.disco.account_features))
        for build in self.ctx.disco.account_forms:
            query.append(build())
        return query

    async def account_items(self, req: IqRequest) -> Element | None:
        """disco#items to an account's bare JID: what features list (PEP nodes), if anything.

        XEP-0030 §8: "In response to a disco#items request, the server MUST
        return an empty result set if ... The target entity does not exist (no
        matter if the request specifies a node or not)".
        """
        query = Element(ITEMS_QUERY)
        login = req.to_jid.localpart
        if login is not None and await self._exists(req):
            _check_node(req)
            for items in self.ctx.disco.account_items:
                query.extend(await items(req.from_jid, login))
        return query

    def _visible(self, features: set[str]) -> set[str]:
        """The features to advertise now (the adapter's settings may hide some)."""
        if ns.ACK in features and self.settings.current().acknowledgements_disabled:
            return features - {ns.ACK}
        return features

    async def _exists(self, req: IqRequest) -> bool:
        login = req.to_jid.localpart
        return login is not None and await self.ctx.stores.accounts.exists(login)


def setup(ctx: FeatureContext) -> None:
    """Register the disco#info and disco#items handlers and advertise them."""
    disco = Disco(ctx, ctx.require(ChatSettingsSource))
    for var in _DISCO_FEATURES:
        ctx.disco.add_server_feature(var)
        ctx.disco.add_account_feature(var)
    ctx.iq.register(INFO_QUERY, disco.server_info, types=("get",), targets=(IqTarget.HOST,))
    ctx.iq.register(ITEMS_QUERY, disco.server_items, types=("get",), targets=(IqTarget.HOST,))
    ctx.iq.register(
        INFO_QUERY,
        disco.account_info,
        types=("get",),
        targets=(IqTarget.ACCOUNT, IqTarget.BARE),
    )
    ctx.iq.register(
        ITEMS_QUERY,
        disco.account_items,
        types=("get",),
        targets=(IqTarget.ACCOUNT, IqTarget.BARE),
    )
