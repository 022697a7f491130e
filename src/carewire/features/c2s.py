"""Client session odds and ends (RFC 6121 / RFC 3921 legacy session establishment).

RFC 6121 removed session establishment, but older clients still send
``<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>``; we advertise it as
optional (in the stream core) and answer it with an empty result.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.xmpp import ns


async def _session(_req: IqRequest) -> Element | None:
    return None


def setup(ctx: FeatureContext) -> None:
    """Register the legacy session IQ."""
    ctx.iq.register(
        f"{{{ns.SESSION}}}session",
        _session,
        types=("set",),
        targets=(IqTarget.HOST, IqTarget.ACCOUNT),
    )
