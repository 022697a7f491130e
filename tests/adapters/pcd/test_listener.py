"""The PCD listener over real MLLP connections: records, ACKs after commit, bad input, PCD-05.

Messages are sent with the ``hl7`` package's MLLP client (and raw sockets for
broken framing); the PCD-05 endpoint is the ``hl7`` package's MLLP server.
"""

from __future__ import annotations

import asyncio

import pytest

from carewire.adapters.hl7.mllp import frame
from carewire.assembly import Assembly
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.security.audit import AuditEntry
from tests.adapters.pcd.conftest import (
    TIMEOUT,
    StatusReceiver,
    exchange,
    msa,
    running,
    sample,
    sample_bytes,
    start_instance,
)


async def _world(p: Assembly) -> None:
    facility = await p.datasets.create("FACILITIES", {"name": "Main General"})
    room = await p.datasets.create("ROOMS", {"room_number": "101", "facility": facility.id})
    await p.datasets.create("BEDS", {"bed_number": "A", "room": room.id})
    await p.datasets.create("PATIENTS", {"mrn": "000123", "last_name": "Moreau"})


async def _audited(p: Assembly, action: str) -> list[AuditEntry]:
    entries, _ = await p.audit.store.entries(action=action)
    return entries


async def _alarms(p: Assembly) -> list[dict[str, object]]:
    page = await p.datasets.query("DEVICE_ALARMS", Query())
    return [dict(r.values) for r in page.records]


async def test_an_alarm_becomes_a_record_and_is_acknowledged(pcd_platform: Assembly) -> None:
    p = pcd_platform
    await _world(p)
    rt = await start_instance(p)
    assert rt.port is not None
    reply = await exchange(rt.port, sample("spo2_low_start"))
    assert msa(reply) == ("AA", "MSG00001", "")
    assert str(reply.segment("MSH")(9)) == "ACK^R40^ACK"
    [alarm] = await _alarms(p)  # the ACK came after the commit
    assert alarm["alarm_id"] == "ALM-0001" and alarm["state"] == "active"
    assert (alarm["priority"], alarm["alert_priority"], alarm["status"]) == ("PM", "Urgent", "Open")
    assert alarm["patient"] is not None and alarm["bed"] is not None
    assert alarm["interface_name"] == "Monitors"

    reply = await exchange(rt.port, sample("spo2_low_end"))
    assert msa(reply)[0] == "AA"
    [alarm] = await _alarms(p)
    assert (alarm["state"], alarm["phase"], alarm["status"]) == ("ended", "end", "Open")
    assert alarm["ended_at"] is not None
    assert rt.intake.alarms_created == 1 and rt.intake.alarms_updated == 1
    health = p.adapters.health("Monitors")
    assert "messages 2 (AA 2, AE 0, AR 0)" in health.note


async def test_a_resent_message_is_not_applied_twice(pcd_platform: Assembly) -> None:
    p = pcd_platform
    rt = await start_instance(p)
    assert rt.port is not None
    for _ in range(2):
        assert msa(await exchange(rt.port, sample("hr_high_ph")))[0] == "AA"
    assert rt.intake.duplicates == 1
    assert len(await _alarms(p)) == 1


async def test_a_resent_message_after_a_restart_is_recognised_by_the_record(
    pcd_platform: Assembly,
) -> None:
    p = pcd_platform
    rt = await start_instance(p)
    assert rt.port is not None
    await exchange(rt.port, sample("hr_high_ph"))
    await p.adapters.disable("Monitors")
    await p.adapters.enable("Monitors")
    rt = await running(p)
    assert rt.port is not None
    reply = await exchange(rt.port, sample("hr_high_ph"))
    assert msa(reply)[0] == "AA" and "duplicate" in msa(reply)[2]
    assert rt.intake.duplicates == 1 and rt.intake.alarms_updated == 0


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [
        ("wrong_version", "AR", "unsupported version"),
        ("unknown_event", "AR", "unsupported event R01"),
        ("missing_control_id", "AR", "missing MSH-10"),
        ("out_of_order", "AR", "out of order"),
    ],
)
async def test_bad_messages_are_answered_and_audited(
    pcd_platform: Assembly, name: str, code: str, reason: str
) -> None:
    p = pcd_platform
    rt = await start_instance(p)
    assert rt.port is not None
    reply = await exchange(rt.port, sample(name))
    assert msa(reply)[0] == code and reason in msa(reply)[2]
    assert str(reply.segment("ERR")(3)).split("^")[0] in ("100", "101", "201", "203")
    assert await _alarms(p) == []
    [entry] = await _audited(p, "pcd.message.reject")
    assert reason in str(entry.event.details["reason"])
    # the listener is still up
    assert msa(await exchange(rt.port, sample("hr_high_ph")))[0] == "AA"


async def _raw(port: int, data: bytes) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        got = await reader.read()  # until the listener closes the connection
        writer.close()
        return got


async def test_broken_framing_closes_only_that_connection(pcd_platform: Assembly) -> None:
    rt = await start_instance(pcd_platform)
    assert rt.port is not None
    assert await _raw(rt.port, b"MSH|no start block\r\x1c\r") == b""
    assert await _raw(rt.port, b"\x0bMSH|^~\\&|A\x0bB\x1c\r") == b""
    assert rt.mllp.framing_errors == 2
    assert msa(await exchange(rt.port, sample("hr_high_ph")))[0] == "AA"


async def test_an_oversize_message_is_refused(pcd_platform: Assembly) -> None:
    rt = await start_instance(pcd_platform, max_message_kb=1)
    assert rt.port is not None
    big = sample_bytes("spo2_low_start").replace(b"SpO2 low 85", b"x" * 2000)
    got = await _raw(rt.port, frame(big))
    assert b"MSA|AR|MSG00001|message larger than 1024 bytes" in got
    assert rt.mllp.oversize == 1
    assert msa(await exchange(rt.port, sample("hr_high_ph")))[0] == "AA"


async def test_a_flood_beyond_the_rate_limit_is_refused_and_the_listener_stays_up(
    pcd_platform: Assembly,
) -> None:
    p = pcd_platform
    rt = await start_instance(p, rate_limit=3)
    assert rt.port is not None
    codes = []
    for n in range(8):
        message = sample("hr_high_ph").replace("MSG00003", f"F{n}")
        codes.append(msa(await exchange(rt.port, message))[0])
    assert codes == ["AA"] * 3 + ["AR"] * 5  # the fake clock never refills the bucket
    assert rt.intake.rate_limited == 5
    assert len(await _audited(p, "pcd.message.reject")) == 1  # the flood's start only
    assert "rate-limited 5" in p.adapters.health("Monitors").note


async def test_responses_go_back_as_pcd05(
    pcd_platform: Assembly, receiver: tuple[StatusReceiver, int]
) -> None:
    p = pcd_platform
    endpoint, port = receiver
    rt = await start_instance(p, status_host="127.0.0.1", status_port=port)
    assert rt.port is not None
    await exchange(rt.port, sample("spo2_low_start"))
    [alarm] = (await p.datasets.query("DEVICE_ALARMS", Query())).records
    await p.datasets.update(
        "DEVICE_ALARMS", alarm.id, {"status": "Accepted", "responder": "nurse.adams"}
    )
    [status] = await endpoint.wait_for(1)
    async with asyncio.timeout(TIMEOUT):
        await rt.relay.drain()
    assert str(status.segment("MSH")(9)) == "ORA^R41^ORA_R41"
    assert str(status.segment("OBR")(3)) == "ALM-0001^MONITOR_GW"
    obx = status.segments("OBX")
    assert [str(o(5)) for o in obx] == ["accepted", "nurse.adams"]
    assert rt.relay_counters.status_sent == 1
    # the same response written again is not reported twice
    await p.datasets.update("DEVICE_ALARMS", alarm.id, {"status": "Open"})
    await p.datasets.update("DEVICE_ALARMS", alarm.id, {"status": "Declined"})
    await endpoint.wait_for(2)
    assert str(endpoint.received[1].segments("OBX")[0](5)) == "rejected"


async def test_an_unreachable_status_endpoint_is_retried_then_reported(
    pcd_platform: Assembly,
) -> None:
    p = pcd_platform
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()  # nothing listens there now
    rt = await start_instance(p, status_host="127.0.0.1", status_port=port)
    assert rt.port is not None
    await exchange(rt.port, sample("spo2_low_start"))
    [alarm] = (await p.datasets.query("DEVICE_ALARMS", Query())).records
    await p.datasets.update("DEVICE_ALARMS", alarm.id, {"status": "Accepted"})
    async with asyncio.timeout(TIMEOUT):
        await rt.relay.drain()
    assert rt.relay_counters.status_failed == 1
    assert rt.relay_counters.status_retries == 4
    assert "PCD-05 accepted not delivered" in p.adapters.health("Monitors").note
    assert len(await _audited(p, "pcd.status.failed")) == 1


async def test_a_refused_status_is_not_retried(
    pcd_platform: Assembly, receiver: tuple[StatusReceiver, int]
) -> None:
    p = pcd_platform
    endpoint, port = receiver
    endpoint.answer = "AR"
    rt = await start_instance(p, status_host="127.0.0.1", status_port=port)
    assert rt.port is not None
    await exchange(rt.port, sample("spo2_low_start"))
    page = await p.datasets.query(
        "DEVICE_ALARMS",
        Query(filters=(Filter(field="alarm_id", op=FilterOp.EQ, value="ALM-0001"),)),
    )
    await p.datasets.update("DEVICE_ALARMS", page.records[0].id, {"status": "Accepted"})
    await endpoint.wait_for(1)
    async with asyncio.timeout(TIMEOUT):
        await rt.relay.drain()
    assert (rt.relay_counters.status_failed, rt.relay_counters.status_retries) == (1, 0)


async def test_listener_start_and_stop_are_audited(pcd_platform: Assembly) -> None:
    p = pcd_platform
    await start_instance(p)
    await p.adapters.disable("Monitors")
    assert len(await _audited(p, "pcd.listener.start")) == 1
    assert len(await _audited(p, "pcd.listener.stop")) == 1
