"""DEVICES.priority follows the latest message each device got (clinical_presence/priority.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.adapters.xmpp.gateway import AlertRequest, ChatGateway
from carewire.assembly import Assembly
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.features.clinical_presence.priority import priority_of
from carewire.features.clinical_presence.service import ClinicalPresence
from tests.features.harness import Harness, make_harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, with_platform=True)
    yield harness
    await harness.close()


def _platform(h: Harness) -> Assembly:
    assert h.platform is not None
    return h.platform


async def _priority(h: Harness, name: str) -> object:
    await h.kernel.ctx.durability.flush()
    for _ in range(3):  # the writes are queued behind the device's registration
        presence = h.kernel.ctx.find(ClinicalPresence)
        assert presence is not None
        await presence.drain()
    page = await _platform(h).datasets.query(
        "DEVICES", Query(filters=(Filter(field="name", op=FilterOp.EQ, value=name),))
    )
    [device] = page.records
    return device.values.get("priority")


def test_priority_names() -> None:
    assert [priority_of(p) for p in ("urgent", "CRITICAL", "", None)] == [
        "Urgent",
        "Critical",
        "Normal",
        "Normal",
    ]


async def test_an_alert_then_a_chat_message_set_the_devices_priority(h: Harness) -> None:
    await h.login("ann", resource="phone")
    bob, _ = await h.login("bob")
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None
    delivery = await _platform(h).datasets.create(
        "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
    )
    await gateway.send_alert(
        AlertRequest(
            recipients=(f"ann@{h.domain}",),
            source="NURSE_CALLS/1",
            delivery_id=delivery.id,
            subject="Call",
            message="Bed 4",
            ttl=10,
            priority="Critical",
        )
    )
    assert await _priority(h, "ann/phone") == "Critical"
    await h.send(
        bob,
        f"<message type='chat' to='ann@{h.domain}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    )
    assert await _priority(h, "ann/phone") == "Critical"  # no content: not a message that counts
    await h.send(bob, f"<message type='chat' to='ann@{h.domain}'><body>thanks</body></message>")
    assert await _priority(h, "ann/phone") == "Normal"
