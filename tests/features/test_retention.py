"""The retention purge (carewire.directory.retention) on the assembly, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from carewire.datasets.query import Query
from carewire.directory.model import (
    SYSTEM_CALLER,
    Organisation,
    OrganisationUpdate,
    RetentionUnit,
)
from carewire.directory.retention import RetentionPurge
from carewire.features.tracking import MessageTracker
from tests.features import directory_setup
from tests.features.directory_setup import Directory

directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

DAY = 86400


async def set_retention(d: Directory, org: Organisation, days: int | None) -> None:
    settings = replace(
        org.settings,
        retention_value=days,
        retention_unit=None if days is None else RetentionUnit.DAYS,
    )
    await d.svc.organisations.update(SYSTEM_CALLER, org.id, OrganisationUpdate(settings=settings))


def purge(d: Directory) -> RetentionPurge:
    assert d.h.platform is not None
    return d.h.platform.retention


async def messages(d: Directory) -> list[dict[str, object]]:
    await d.h.kernel.ctx.require(MessageTracker).flush()
    assert d.h.platform is not None
    page = await d.h.platform.datasets.query("MESSAGES", Query(limit=100))
    return [dict(r.values) for r in page.records]


async def setup_chat(d: Directory) -> tuple[Organisation, Organisation]:
    """Abelard (alice; retention 10 days) and Bellwood (bob; never); messages both ways."""
    abelard = await d.hospital("Abelard Medical Center")
    bellwood = await d.practice(abelard, "Bellwood Practice")
    await d.user(abelard, "alice", "Alice", "Able")
    await d.user(abelard, "amy", "Amy", "Adams")
    await d.user(bellwood, "bob", "Bob", "Brown")
    await set_retention(d, abelard, 10)
    alice, _ = await d.h.login("alice")
    bob, _ = await d.h.login("bob")
    await d.h.login("amy")
    # alice starts the conversation with bob: Abelard's retention applies to all of it.
    for n in range(5):
        await d.h.send(
            alice, f"<message to='bob@{d.domain}' type='chat'><body>old {n}</body></message>"
        )
        await d.h.send(
            bob, f"<message to='alice@{d.domain}' type='chat'><body>re {n}</body></message>"
        )
    # bob starts one with amy: Bellwood never purges.
    await d.h.send(bob, f"<message to='amy@{d.domain}' type='chat'><body>kept</body></message>")
    d.h.clock.advance(11 * DAY)
    await d.h.send(alice, f"<message to='bob@{d.domain}' type='chat'><body>new</body></message>")
    await d.settle()
    return abelard, bellwood


async def test_dry_run_counts_and_changes_nothing_then_the_purge_keeps_metadata(
    d: Directory,
) -> None:
    abelard, _ = await setup_chat(d)
    before = await messages(d)
    (plan,) = await purge(d).dry_run()
    assert (plan.organisation_id, plan.messages) == (abelard.id, 10)
    assert await messages(d) == before

    (done,) = await purge(d).run()
    assert done.messages == 10
    after = {str(m["uuid"]): m for m in await messages(d)}
    for m in before:
        now = after[str(m["uuid"])]
        # Metadata stays: who, to whom, when, state; deliveries are untouched records.
        for key in ("from", "received_at", "sent_at", "state", "conversation", "expires_at"):
            assert now[key] == m[key]
        body = str(m["message"])
        if body.startswith(("old", "re")):
            assert now["message"] is None and now["elements"] is None
        else:
            assert now["message"] == body  # "new" (too recent) and "kept" (Bellwood's)
    assert (await purge(d).run())[0].messages == 0  # idempotent
    # One audit entry per run, with counts and no content.
    assert d.h.platform is not None
    entries, _ = await d.h.platform.audit.store.entries(action="retention.purge", limit=5)
    assert len(entries) == 2
    details = json.dumps(dict(entries[-1].event.details))
    assert "old 0" not in details and '"messages": 10' in details


class Interrupted(Exception):
    pass


async def test_an_interrupted_purge_resumes_where_it_stopped(d: Directory) -> None:
    await setup_chat(d)
    real = purge(d)

    class FailingStore:
        def __init__(self) -> None:
            self.calls = 0

        async def conversation_starters(self) -> dict[int, str | None]:
            return await real.store.conversation_starters()

        async def count_bodies(self, conversations: Sequence[int], before: datetime) -> int:
            return await real.store.count_bodies(conversations, before)

        async def count_offline(self, owners: Sequence[str], before: datetime) -> int:
            return await real.store.count_offline(owners, before)

        async def purge_offline(self, owners: Sequence[str], before: datetime) -> int:
            return await real.store.purge_offline(owners, before)

        async def purge_bodies(
            self, conversations: Sequence[int], before: datetime, *, limit: int, after: int = 0
        ) -> tuple[int, int]:
            self.calls += 1
            if self.calls == 3:
                raise Interrupted
            return await real.store.purge_bodies(conversations, before, limit=limit, after=after)

    broken = RetentionPurge(
        FailingStore(), real.directory, real.audit, real.clock, domain=d.domain, batch=3
    )
    with pytest.raises(Interrupted):
        await broken.run()
    left = [m for m in await messages(d) if str(m["message"]).startswith(("old", "re"))]
    assert len(left) == 4  # two batches of 3 committed
    (plan,) = await real.dry_run()
    assert plan.messages == 4
    resumed = RetentionPurge(
        real.store, real.directory, real.audit, real.clock, domain=d.domain, batch=3
    )
    assert (await resumed.run())[0].messages == 4
    assert [m for m in await messages(d) if m["message"] is None].__len__() == 10


async def test_the_nightly_purge_runs_once_after_two_in_the_organisations_zone(
    d: Directory,
) -> None:
    abelard, _ = await setup_chat(d)
    settings = replace(
        (await d.svc.organisations.get(SYSTEM_CALLER, abelard.id)).settings,
        default_time_zone="America/Chicago",
    )
    await d.svc.organisations.update(
        SYSTEM_CALLER, abelard.id, OrganisationUpdate(settings=settings)
    )
    # 01:59 in Chicago (CST, UTC-6) is 07:59 UTC.
    clock = d.h.clock
    clock.advance((datetime(2026, 1, 13, 7, 59, tzinfo=UTC) - clock.now()).total_seconds())
    assert await purge(d).run_scheduled() == []
    clock.advance(60)
    (done,) = await purge(d).run_scheduled()
    assert done.messages == 10
    clock.advance(3600)
    assert await purge(d).run_scheduled() == []  # once a day
    clock.advance(DAY)
    assert len(await purge(d).run_scheduled()) == 1  # the next night


async def test_a_room_is_purged_by_the_organisation_of_its_first_message_sender(
    d: Directory,
) -> None:
    from tests.features.test_muc_helpers import CHAT, join, make_room

    abelard, _ = await setup_chat(d)
    # A room records no member on its conversation's first history row: the sender of its
    # first message (alice, of Abelard) started it, whoever spoke after.
    alice, _ = await make_room(d.h, "alice", "ward5")
    bob, _ = await d.h.login("bob")
    await join(d.h, bob, "ward5", "bob")
    for session, body in ((alice, "room 1"), (bob, "room 2")):
        await d.h.send(
            session, f"<message to='ward5@{CHAT}' type='groupchat'><body>{body}</body></message>"
        )
    await d.settle()
    d.h.clock.advance(11 * DAY)
    (plan,) = await purge(d).dry_run()
    assert (plan.organisation_id, plan.messages) == (abelard.id, 13)  # 10 + "new" + the room's
    await purge(d).run()
    bodies = {str(m["message"]) for m in await messages(d)}
    assert not bodies & {"room 1", "room 2"} and "kept" in bodies
