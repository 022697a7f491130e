"""Group commit: which queued messages share a transaction, and splitting a failed group."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from carewire.adapters.hl7.ack import AckCode, ErrorCode, Rejected
from carewire.adapters.hl7.adt_group import GroupWriter, Pending, is_groupable
from carewire.adapters.hl7.adt_message import Event
from carewire.adapters.hl7.adt_plan import Merge, PatientWrite, Plan
from carewire.adapters.hl7.message import MessageHeader


def header(control_id: str, app: str = "ADMIT") -> MessageHeader:
    return MessageHeader(sending_application=app, control_id=control_id)


def single(mrn: str) -> Plan:
    return Plan(event=Event.A08, patients=(PatientWrite(mrn=mrn),))


class Recorder:
    """Fake transactions: records the groups and single writes, fails on request."""

    def __init__(self, *, bad: frozenset[str] = frozenset()) -> None:
        self.groups: list[list[str]] = []
        self.singles: list[str] = []
        self.bad = bad

    async def apply_group(self, group: Sequence[Pending]) -> None:
        ids = [p.header.control_id for p in group]
        self.groups.append(ids)
        if self.bad & set(ids):
            raise Rejected(ack=AckCode.AE, error=ErrorCode.UNKNOWN_KEY_IDENTIFIER, reason="x")

    async def apply_one(self, h: MessageHeader, plan: Plan) -> bool:
        self.singles.append(h.control_id)
        if h.control_id in self.bad:
            raise Rejected(ack=AckCode.AE, error=ErrorCode.UNKNOWN_KEY_IDENTIFIER, reason="x")
        return True


async def _run(writer: GroupWriter, items: list[tuple[MessageHeader, Plan]]) -> list[object]:
    task = asyncio.create_task(writer.run())
    try:
        return await asyncio.gather(
            *(writer.submit(h, p) for h, p in items), return_exceptions=True
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_only_single_patient_plans_without_merges_are_grouped() -> None:
    assert is_groupable(single("M1"))
    two = Plan(event=Event.A17, patients=(PatientWrite(mrn="M1"), PatientWrite(mrn="M2")))
    assert not is_groupable(two)
    merge = Plan(
        event=Event.A40,
        patients=(PatientWrite(mrn="M1"),),
        merges=(Merge(prior_mrn="M0", mrn="M1"),),
    )
    assert not is_groupable(merge)


async def test_queued_messages_share_a_transaction_but_never_a_patient_or_sender() -> None:
    rec = Recorder()
    writer = GroupWriter(apply_group=rec.apply_group, apply_one=rec.apply_one)
    items = [
        (header("c1"), single("M1")),
        (header("c2"), single("M2")),
        (header("c3"), single("M1")),  # the same patient: next group
        (header("c4"), single("M3")),
        (header("c5", app="OTHER"), single("M4")),  # another sender: next group
    ]
    assert await _run(writer, items) == [True] * 5
    assert rec.groups == [["c1", "c2"], ["c3", "c4"]]
    assert rec.singles == ["c5"]
    assert (writer.groups, writer.splits) == (2, 0)


async def test_a_failed_group_is_split_and_each_message_gets_its_own_outcome() -> None:
    rec = Recorder(bad=frozenset({"c2"}))
    writer = GroupWriter(apply_group=rec.apply_group, apply_one=rec.apply_one)
    items = [(header(f"c{i}"), single(f"M{i}")) for i in range(1, 4)]
    results = await _run(writer, items)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Rejected)
    assert rec.groups == [["c1", "c2", "c3"]]
    assert rec.singles == ["c1", "c2", "c3"]
    assert writer.splits == 1


async def test_a_handler_gone_while_its_group_commits_does_not_stop_the_writer() -> None:
    gate = asyncio.Event()
    rec = Recorder()

    async def slow_group(group: Sequence[Pending]) -> None:
        await gate.wait()
        await rec.apply_group(group)

    writer = GroupWriter(apply_group=slow_group, apply_one=rec.apply_one)
    task = asyncio.create_task(writer.run())
    try:
        gone = asyncio.create_task(writer.submit(header("c1"), single("M1")))
        stays = asyncio.create_task(writer.submit(header("c2"), single("M2")))
        for _ in range(5):
            await asyncio.sleep(0)
        gone.cancel()  # its connection closed while the transaction ran
        gate.set()
        assert await stays is True
        assert await writer.submit(header("c3"), single("M3")) is True
        assert rec.groups == [["c1", "c2"]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_groups_are_capped() -> None:
    rec = Recorder()
    writer = GroupWriter(apply_group=rec.apply_group, apply_one=rec.apply_one, max_group=2)
    items = [(header(f"c{i}"), single(f"M{i}")) for i in range(5)]
    assert await _run(writer, items) == [True] * 5
    assert [len(g) for g in rec.groups] == [2, 2]
    assert rec.singles == ["c4"]


async def test_stopping_cancels_what_still_waits() -> None:
    never = asyncio.Event()

    async def stuck(h: MessageHeader, plan: Plan) -> bool:
        await never.wait()
        return True

    writer = GroupWriter(apply_group=Recorder().apply_group, apply_one=stuck)
    task = asyncio.create_task(writer.run())
    first = asyncio.create_task(writer.submit(header("c1"), single("M1")))
    second = asyncio.create_task(writer.submit(header("c2"), single("M1")))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for waiting in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await waiting
