"""A remote router for feature tests: records what the router hands to other domains.

It stands in for the server-to-server manager at the seam only
(:class:`carewire.core.federation.RemoteRouter`); stanzas "from" another
domain are injected with :func:`inject`, the way the manager hands inbound
stanzas to :meth:`Router.route`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize
from tests.features.harness import Harness, x

REMOTE = "remote.test"


@dataclass(eq=False)
class RecordingRemote:
    """Keeps (stanza, from, to) of every stanza sent to another domain; refuses some domains."""

    sent: list[Element] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def send(self, stanza: Element, *, from_jid: JID, to_jid: JID) -> None:
        if to_jid.domain in self.refused:
            raise StanzaError(StanzaCondition.REMOTE_SERVER_NOT_FOUND)
        # Round-trip through the serializer: what the stream would carry.
        copy = parse_document(serialize(stanza, None))
        assert copy.get("from") == str(from_jid) and copy.get("to") == str(to_jid)
        self.sent.append(copy)

    def take(self) -> list[Element]:
        """What was sent since the last take()."""
        out, self.sent = self.sent, []
        return out


def attach(h: Harness) -> RecordingRemote:
    """Turn federation on for the harness's router, through a recording remote router."""
    remote = RecordingRemote()
    h.kernel.router.attach_remote(remote)
    return remote


async def inject(h: Harness, xml: str) -> None:
    """A stanza arrives from another domain (its 'from' and 'to' are taken as the stream's)."""
    stanza = x(xml)
    await h.kernel.router.route(
        stanza,
        from_jid=JID.parse(stanza.get("from", "")),
        to_jid=JID.parse(stanza.get("to", "")),
        origin=None,
    )
    await settle()


async def settle() -> None:
    """Let the router's queue for other domains drain."""
    for _ in range(5):
        await asyncio.sleep(0)
