"""XEP-0054 vcard-temp (carewire.features.vcard)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.features.vcard import MAX_VCARD_BYTES
from carewire.xmpp import ns
from tests.features.harness import Harness, error_condition, make_harness

VCARD = f"{{{ns.VCARD}}}vCard"
FN = f"{{{ns.VCARD}}}FN"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["disco", "vcard"])
    yield harness
    await harness.close()


def set_vcard(fn: str, to: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return (
        f"<iq type='set' id='v1'{to_attr}><vCard xmlns='{ns.VCARD}'>"
        f"<FN>{fn}</FN><N><FAMILY>House</FAMILY><GIVEN>Greg</GIVEN></N></vCard></iq>"
    )


def get_vcard(to: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return f"<iq type='get' id='v2'{to_attr}><vCard xmlns='{ns.VCARD}'/></iq>"


async def test_own_vcard_is_empty_before_it_is_set(h: Harness) -> None:
    reply = await h.ask("alice", get_vcard())
    assert reply.get("type") == "result"
    vcard = reply.find(VCARD)
    assert vcard is not None
    assert len(vcard) == 0


async def test_set_then_get_own_vcard(h: Harness) -> None:
    reply = await h.ask("alice", set_vcard("Dr. Greg House"))
    assert reply.get("type") == "result"
    assert len(reply) == 0
    reply = await h.ask("alice", get_vcard(f"alice@{h.domain}"))
    vcard = reply.find(VCARD)
    assert vcard is not None
    assert vcard.findtext(FN) == "Dr. Greg House"
    assert vcard.findtext(f"{{{ns.VCARD}}}N/{{{ns.VCARD}}}GIVEN") == "Greg"
    stored = await h.kernel.stores.vcards.get("alice")
    assert stored is not None and "Dr. Greg House" in stored


async def test_set_replaces_the_whole_vcard(h: Harness) -> None:
    await h.ask("alice", set_vcard("First"))
    await h.ask(
        "alice",
        f"<iq type='set' id='v3'><vCard xmlns='{ns.VCARD}'><NICKNAME>n</NICKNAME></vCard></iq>",
    )
    reply = await h.ask("alice", get_vcard())
    vcard = reply.find(VCARD)
    assert vcard is not None
    assert vcard.find(FN) is None
    assert vcard.findtext(f"{{{ns.VCARD}}}NICKNAME") == "n"


async def test_get_another_users_vcard(h: Harness) -> None:
    await h.ask("bob", set_vcard("Bob Kelso"))
    reply = await h.ask("alice", get_vcard(f"bob@{h.domain}"))
    assert reply.get("type") == "result"
    assert reply.get("from") == f"bob@{h.domain}"
    vcard = reply.find(VCARD)
    assert vcard is not None
    assert vcard.findtext(FN) == "Bob Kelso"


async def test_another_users_missing_vcard_is_service_unavailable(h: Harness) -> None:
    await h.account("bob")
    reply = await h.ask("alice", get_vcard(f"bob@{h.domain}"))
    assert reply.get("type") == "error"
    assert error_condition(reply) == "service-unavailable"


async def test_unknown_users_vcard_is_service_unavailable(h: Harness) -> None:
    reply = await h.ask("alice", get_vcard(f"ghost@{h.domain}"))
    assert error_condition(reply) == "service-unavailable"


async def test_setting_another_users_vcard_is_forbidden(h: Harness) -> None:
    await h.ask("bob", set_vcard("Bob Kelso"))
    reply = await h.ask("alice", set_vcard("Mallory", to=f"bob@{h.domain}"))
    assert reply.get("type") == "error"
    assert error_condition(reply) == "forbidden"
    stored = await h.kernel.stores.vcards.get("bob")
    assert stored is not None and "Mallory" not in stored


async def test_oversized_vcard_is_refused(h: Harness) -> None:
    photo = "A" * MAX_VCARD_BYTES
    reply = await h.ask(
        "alice",
        f"<iq type='set' id='v4'><vCard xmlns='{ns.VCARD}'><PHOTO><TYPE>image/png</TYPE>"
        f"<BINVAL>{photo}</BINVAL></PHOTO></vCard></iq>",
    )
    assert error_condition(reply) == "not-acceptable"
    text = reply.findtext(f"{{{ns.CLIENT}}}error/{{{ns.STANZAS_ERR}}}text")
    assert text is not None and "too large" in text
    assert await h.kernel.stores.vcards.get("alice") is None


async def test_vcard_temp_is_advertised(h: Harness) -> None:
    assert ns.VCARD in h.kernel.disco.server_features
    assert ns.VCARD in h.kernel.disco.account_features
