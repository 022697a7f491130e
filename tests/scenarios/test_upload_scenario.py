"""A ward story: nurse Alice photographs a wound and shares it with Dr Bob; a week later it is gone.

Every XMPP step is what a client sends and what the clients receive
(XEP-0030, XEP-0363, the link in a message with XEP-0066); the HTTP PUT and
GET are the upload service's calls behind ``/upload/`` (over real TLS in
``tests/web/test_upload.py``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from carewire.features.upload import NS
from carewire.uploads import UploadError, UploadService
from carewire.xmpp import ns
from tests.features.harness import Harness
from tests.features.test_upload import BASE, UPLOAD, upload_harness

OOB = "jabber:x:oob"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    features = ("c2s", "message", "presence", "disco", "upload")
    harness = await upload_harness(tmp_path, features, max_file_size=100_000, quota=1_000_000)
    yield harness
    await harness.close()


async def test_alice_shares_a_photo_with_bob(h: Harness) -> None:
    alice, alice_sees = await h.login("alice", "tablet")
    _, bob_sees = await h.login("bob", "phone")
    files = h.kernel.ctx.require(UploadService)

    # Alice's client looks for an upload service and learns its size limit.
    await h.send(
        alice,
        f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>",
    )
    (items,) = alice_sees.take()
    assert UPLOAD in [i.get("jid") for i in items.iter(f"{{{ns.DISCO_ITEMS}}}item")]

    # It asks for a slot for the photo.
    photo = os.urandom(40_000)
    await h.send(
        alice,
        f"<iq type='get' id='s1' to='{UPLOAD}'><request xmlns='{NS}' filename='wound.jpg'"
        f" size='{len(photo)}' content-type='image/jpeg'/></iq>",
    )
    (slot,) = alice_sees.take()
    put = slot.find(f"{{{NS}}}slot/{{{NS}}}put")
    assert put is not None
    url = put.get("url", "")
    assert url.startswith(f"{BASE}/upload/") and url.endswith("/wound.jpg")
    _, _, token, name = urlsplit(url).path.split("/")

    async def body() -> AsyncIterator[bytes]:
        yield photo

    # The PUT (201 over HTTPS), then the link to Bob.
    await files.receive(
        token, unquote(name), length=len(photo), content_type="image/jpeg", body=body()
    )
    await h.send(
        alice,
        f"<message to='bob@{h.domain}' type='chat' id='m1'><body>{url}</body>"
        f"<x xmlns='{OOB}'><url>{url}</url></x></message>",
    )
    (message,) = [s for s in bob_sees.take() if s.tag == f"{{{ns.CLIENT}}}message"]
    assert message.findtext(f"{{{OOB}}}x/{{{OOB}}}url") == url

    # Bob's client GETs the photo from the link.
    download = await files.download(token, unquote(name))
    assert download.content_type == "image/jpeg"
    assert b"".join([c async for c in download.chunks]) == photo

    # A week later (Alice has no organisation: the default 7 days) the photo is gone.
    h.clock.advance(timedelta(days=7, minutes=1).total_seconds())
    assert await files.sweep() == 1
    with pytest.raises(UploadError) as gone:
        await files.download(token, unquote(name))
    assert gone.value.code == "not-found"
    assert not [p for p in files.settings.directory.rglob("*") if p.is_file()]
