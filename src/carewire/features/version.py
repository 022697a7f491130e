"""XEP-0092 Software Version: the server's name and version, only when configured.

Revealing the exact version helps attackers pick exploits, so the server
answers ``jabber:iq:version`` only when ``version_visible`` is set (off by
default); otherwise the query is unsupported (``service-unavailable`` from
the router) and the namespace is not advertised. The operating system is
never disclosed (XEP-0092 §2: <os/> "is OPTIONAL in a result").
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.xmpp import ns

log = logging.getLogger(__name__)

QUERY = f"{{{ns.VERSION}}}query"


class SoftwareVersion:
    """Answers jabber:iq:version queries to the server."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version

    async def query(self, _req: IqRequest) -> Element | None:
        """XEP-0092 §2: <name/> and <version/> are each "REQUIRED in a result"."""
        result = Element(QUERY)
        SubElement(result, f"{{{ns.VERSION}}}name").text = self.name
        SubElement(result, f"{{{ns.VERSION}}}version").text = self.version
        return result


def setup(ctx: FeatureContext) -> None:
    """Answer and advertise jabber:iq:version if ``config.version_visible``."""
    if not ctx.config.version_visible:
        log.debug("software version is hidden (version_visible = false)")
        return
    handler = SoftwareVersion(ctx.config.server_name, ctx.config.server_version)
    ctx.disco.add_server_feature(ns.VERSION)
    ctx.iq.register(QUERY, handler.query, types=("get",), targets=(IqTarget.HOST,))
