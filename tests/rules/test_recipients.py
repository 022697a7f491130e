"""Who a delivery notified: its message's recipients and their furthest state (both databases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from carewire.assembly import Assembly, Options, assemble
from carewire.rules.recipients import recipients_of, summary
from tests.templates import prefill

AT = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Assembly]:
    p = await assemble(Options(url=await prefill(db_url)))
    try:
        yield p
    finally:
        await p.close()


async def test_recipients_and_their_states(platform: Assembly) -> None:
    ds = platform.datasets
    first = await ds.create("MESSAGES", {"uuid": "m-1", "received_at": AT, "sent_at": AT})
    second = await ds.create("MESSAGES", {"uuid": "m-2", "received_at": AT, "sent_at": AT})
    quiet = await ds.create("MESSAGES", {"uuid": "m-3", "received_at": AT, "sent_at": AT})
    later = AT + timedelta(minutes=1)
    for message, name, extra in (
        (first, "adams@h.example", {"received_at": AT, "displayed_at": later}),
        (first, "baker@h.example", {"failed_at": later, "failure": "remote-server-timeout"}),
        (first, "chen@h.example", {"held_at": AT}),
        (second, "adams@h.example", {"acknowledged": later, "received_at": AT}),
    ):
        who = await ds.upsert("IDENTITIES", {"name": name})
        values = {"message": message.id, "recipient": who.id, "sent_at": AT} | extra
        await ds.create("MESSAGE_DELIVERIES", values)
    got = await recipients_of(ds, [first.id, second.id, quiet.id, first.id])
    assert set(got) == {first.id, second.id}  # a message that reached no one is absent
    assert summary(got[first.id]) == (
        "adams@h.example (Displayed), baker@h.example (Failed), chen@h.example (Held)"
    )
    baker = got[first.id][1]
    assert baker.failure == "remote-server-timeout" and baker.at == later
    assert set(baker.times) == {"sent_at", "failed_at"}
    assert summary(got[second.id]) == "adams@h.example (Acknowledged)"
    assert await recipients_of(ds, []) == {}
