"""PEP against slixmpp over TLS: an avatar reaches a contact and the vCard; bookmarks both ways."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import slixmpp
from slixmpp.plugins.xep_0402.stanza import Conference

from tests.interop.slix import SlixClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

Factory = Callable[..., Awaitable[SlixClient]]
PEP_PLUGINS = (
    "xep_0054",
    "xep_0060",
    "xep_0115",
    "xep_0163",
    "xep_0084",
    "xep_0049",
    "xep_0048",
    "xep_0402",
)
METADATA = "urn:xmpp:avatar:metadata"
BOOKMARKS = "urn:xmpp:bookmarks:1"
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def _plugins(xmpp: slixmpp.ClientXMPP) -> None:
    for name in PEP_PLUGINS:
        xmpp.register_plugin(name)


async def _befriend(a: SlixClient, b: SlixClient) -> None:
    for x, y in ((a, b), (b, a)):
        y_bare = y.jid.bare

        def from_y(p: Any, y_bare: str = y_bare) -> bool:
            return bool(p["from"].bare == y_bare)

        x.xmpp.send_presence(pto=y_bare, ptype="subscribe")
        await y.next(y.subscribes)
        y.xmpp.send_presence(pto=x.jid.bare, ptype="subscribed")
        await x.next_matching(x.subscribeds, from_y)


@pytest.mark.slow
async def test_avatar_and_bookmarks_with_slixmpp(server: RunningServer, slix: Factory) -> None:
    a_login, a_pw = server.account()
    b_login, b_pw = server.account()
    a = await slix(server, a_login, a_pw, resource="a", configure=_plugins)
    b = await slix(server, b_login, b_pw, resource="b", configure=_plugins)
    for client in (a, b):
        await client.xmpp.get_roster(timeout=10)
    # B wants avatar notifications: '+notify' in its entity capabilities (XEP-0115).
    b.plugin["xep_0163"].add_interest(METADATA)
    await asyncio.sleep(0.2)  # slixmpp recomputes its caps in a task
    notes: asyncio.Queue[Any] = asyncio.Queue()
    b.xmpp.add_event_handler("avatar_metadata_publish", notes.put_nowait)
    a.xmpp.send_presence()
    b.xmpp.send_presence()
    await _befriend(a, b)
    # Whether B's capabilities are resolved before or after A publishes, B hears of it:
    # as a notification, or as the last item once its '+notify' is known.

    # A publishes an avatar (data, then metadata); B is notified; the vCard carries it.
    digest = hashlib.sha1(IMAGE).hexdigest()
    await a.plugin["xep_0084"].publish_avatar(IMAGE, timeout=10)
    await a.plugin["xep_0084"].publish_avatar_metadata(
        {"id": digest, "type": "image/png", "bytes": len(IMAGE)}, timeout=10
    )
    note = await asyncio.wait_for(notes.get(), 10)
    assert note["from"].bare == a.jid.bare
    assert note["pubsub_event"]["items"]["item"]["id"] == digest
    vcard = await b.plugin["xep_0054"].get_vcard(a.jid.bare, local=False, timeout=10)
    assert vcard["vcard_temp"]["PHOTO"]["BINVAL"] == IMAGE

    # Bookmarks: private storage (XEP-0048/0049) → PEP (XEP-0402) …
    room = f"ward7@chat.{server.domain}"
    storage = a.plugin["xep_0048"].stanza.Bookmarks()
    storage.add_conference(room, "Ana", name="Ward 7", autojoin=True)
    await a.plugin["xep_0048"].set_bookmarks(storage, method="xep_0049", timeout=10)
    got = await a.plugin["xep_0060"].get_items(a.jid.bare, BOOKMARKS, timeout=10)
    [item] = list(got["pubsub"]["items"])
    assert item["id"] == room and item["conference"]["name"] == "Ward 7"
    assert item["conference"]["nick"] == "Ana"
    # … and PEP → private storage.
    other = f"theatre@chat.{server.domain}"
    conference = Conference()
    conference["name"] = "Theatre"
    conference["autojoin"] = True
    await a.plugin["xep_0060"].publish(
        a.jid.bare, BOOKMARKS, id=other, payload=conference, timeout=10
    )
    stored = await a.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=10)
    jids = {str(c["jid"]) for c in stored["private"]["bookmarks"]["conferences"]}
    assert jids == {room, other}
