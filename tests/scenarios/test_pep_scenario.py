"""A shift story on PEP: Dr Ana's new phone sets her photo and bookmarks a room; charge nurse
Bea sees the photo; Ana's old desktop client (private-storage bookmarks) sees the room; the phone
tries to turn on end-to-end encryption and is told why it cannot.

Every step is what a client sends and what the clients receive (XEP-0163, XEP-0084, XEP-0398,
XEP-0402, XEP-0384 policy).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.features.harness import Harness, error_condition, make_harness
from tests.features.pep_helpers import error_text, events, notify, online, publish
from tests.features.test_presence import befriend

DATA, META = "urn:xmpp:avatar:data", "urn:xmpp:avatar:metadata"
BM = "urn:xmpp:bookmarks:1"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"ana" * 40
PHOTO_ID = hashlib.sha1(PHOTO).hexdigest()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    features = ["roster", "presence", "disco", "vcard", "private", "pep"]
    harness = await make_harness(tmp_path, features=features)
    yield harness
    await harness.close()


async def test_a_new_phone_on_shift(h: Harness) -> None:
    # Bea, the charge nurse, is on the ward desktop; her client wants avatar updates.
    bea, bea_sink = await online(h, "bea", "desk", notify(META))
    # Ana's old desktop client knows only private-storage bookmarks; her new phone speaks PEP.
    desktop, desktop_sink = await online(h, "ana", "desktop", notify())
    phone, phone_sink = await online(h, "ana", "phone", notify(META, BM))
    await befriend(h, phone, bea)
    bea_sink.take()

    # The phone sets Ana's photo: the image, then its metadata.
    b64 = base64.b64encode(PHOTO).decode()
    await h.send(phone, publish(DATA, f"<data xmlns='{DATA}'>{b64}</data>", PHOTO_ID))
    info = f"<info id='{PHOTO_ID}' bytes='{len(PHOTO)}' type='image/png'/>"
    await h.send(phone, publish(META, f"<metadata xmlns='{META}'>{info}</metadata>", PHOTO_ID))
    assert len(events(bea_sink)) == 1  # Bea's desktop shows the new photo
    # Clients that read vCards (room members, say) get the same photo.
    vcard = await h.ask(
        "bea", f"<iq type='get' id='v' to='ana@{h.domain}'><vCard xmlns='vcard-temp'/></iq>"
    )
    assert vcard.findtext("{vcard-temp}vCard/{vcard-temp}PHOTO/{vcard-temp}BINVAL") == b64

    # The phone bookmarks the ICU huddle room; the desktop reads its old-style bookmarks.
    room = f"icu-huddle@chat.{h.domain}"
    conference = f"<conference xmlns='{BM}' name='ICU huddle' autojoin='true'/>"
    await h.send(phone, publish(BM, conference, room, {"pubsub#access_model": "whitelist"}))
    desktop_sink.take()
    await h.send(
        desktop,
        "<iq type='get' id='old'><query xmlns='jabber:iq:private'>"
        "<storage xmlns='storage:bookmarks'/></query></iq>",
    )
    [old] = desktop_sink.take()
    [conf] = old.iter("{storage:bookmarks}conference")
    assert conf.get("jid") == room and conf.get("name") == "ICU huddle"

    # The phone tries to publish its OMEMO device: the hospital says no, and why.
    devices = "<list xmlns='eu.siacs.conversations.axolotl'><device id='31415'/></list>"
    phone_sink.take()
    await h.send(phone, publish("eu.siacs.conversations.axolotl.devicelist", devices, "current"))
    [refusal] = phone_sink.take()
    assert error_condition(refusal) == "not-allowed"
    assert "readable for the record" in error_text(refusal)
    assert events(bea_sink) == []  # nothing reached Bea
