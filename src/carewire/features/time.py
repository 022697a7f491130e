"""XEP-0202 Entity Time: the server's current time, always reported in UTC.

The answer uses the XEP-0082 DateTime profile: ``<tzo>+00:00</tzo>`` and
``<utc>CCYY-MM-DDThh:mm:ss[.sss]Z</utc>``; the time comes from the
injected clock, so tests control it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement

from carewire.clock import Clock
from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.xmpp import ns

log = logging.getLogger(__name__)

TIME = f"{{{ns.TIME}}}time"


def format_utc(when: datetime) -> str:
    """XEP-0082 §3.3 DateTime in UTC: seconds, plus milliseconds when not zero."""
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond // 1000:03d}"
    return text + "Z"


class EntityTime:
    """Answers urn:xmpp:time queries to the server."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def query(self, _req: IqRequest) -> Element | None:
        """XEP-0202 §3: <tzo/> and <utc/> are REQUIRED.

        <utc/>: "The format MUST conform to the dateTime profile specified in
        XEP-0082 and MUST be expressed in UTC."
        """
        result = Element(TIME)
        # The server reports UTC: its offset is zero.
        SubElement(result, f"{{{ns.TIME}}}tzo").text = "+00:00"
        SubElement(result, f"{{{ns.TIME}}}utc").text = format_utc(self.clock.now())
        return result


def setup(ctx: FeatureContext) -> None:
    """Answer and advertise urn:xmpp:time at the server's JID."""
    handler = EntityTime(ctx.clock)
    # XEP-0202 (Determining Support): an entity that supports the protocol
    # "MUST report that by including a service discovery feature of "urn:xmpp:time"".
    ctx.disco.add_server_feature(ns.TIME)
    ctx.iq.register(TIME, handler.query, types=("get",), targets=(IqTarget.HOST,))
