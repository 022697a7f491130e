"""The ADT adapter's listener over real sockets: the hl7 package's MLLP clients, TLS, bad
framing and oversize messages, counters in the adapter's health, the audit trail."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import hl7
from hl7.client import MLLPClient
from hl7.mllp import open_hl7_connection

from carewire.adapters.hl7.adt import AdtRuntime, AdtServices
from carewire.adapters.hl7.adt_settings import COMPONENT
from carewire.adapters.hl7.mllp import MllpFramer
from carewire.assembly import Assembly
from carewire.datasets.query import Query
from carewire.net.tls import server_context
from carewire.security.certificates import create_self_signed
from carewire.storage.hl7 import SqlControlIdStore
from tests.adapters.hl7.hospital import build_hospital, replace_field, sample

NAME = "ADT Feed"
EVENTS = ["a01_admit", "a08_update", "a02_transfer", "a12_cancel_transfer", "a03_discharge"]


async def _listening(platform: Assembly, settings: dict[str, object]) -> AdtRuntime:
    """Create and enable an instance under the running manager; wait for its port."""
    await build_hospital(platform)
    await platform.adapters.start()
    await platform.adapters.create(COMPONENT, NAME, is_enabled=True, settings=settings)
    for _ in range(200):
        view = platform.adapters.view(NAME)
        runtime = view.runtime if view is not None else None
        if isinstance(runtime, AdtRuntime) and runtime.address is not None:
            return runtime
        await asyncio.sleep(0.01)
    raise AssertionError(f"the listener did not start: {platform.adapters.health(NAME)}")


def _msa1(reply: str | bytes) -> str:
    text = reply.decode() if isinstance(reply, bytes) else reply
    return str(hl7.parse(text.strip("\x0b\x1c\r")).segment("MSA")(1))


async def test_the_hl7_clients_bad_input_and_the_listener_staying_up(platform: Assembly) -> None:
    runtime = await _listening(platform, {"port": 0, "max_message_bytes": 2048})
    assert runtime.address is not None
    host, port = runtime.address

    def blocking_client() -> list[str]:
        with MLLPClient(host, port) as client:
            return [_msa1(client.send_message(sample(name))) for name in EVENTS]

    assert await asyncio.to_thread(blocking_client) == ["AA"] * len(EVENTS)
    # Broken framing: that connection is closed, nothing is answered.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"MSH|^~\\&|no start block\r\x1c\r")
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""
    writer.close()
    # Oversize with a readable MSH: AR, then closed.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"\x0b" + sample("a13_cancel_discharge") + b"NTE|1||" + b"x" * 4096)
    replies = MllpFramer().feed(await asyncio.wait_for(reader.read(), timeout=5))
    assert [_msa1(r) for r in replies] == ["AR"]
    writer.close()
    # The asyncio client of the hl7 package, on a new connection: AE, AR, then AA again.
    reader2, writer2 = await open_hl7_connection(host, port)
    answers = []
    for name in ["bad_unknown_bed", "bad_unknown_event", "a13_cancel_discharge"]:
        writer2.writemessage(hl7.parse(sample(name).decode()))
        await writer2.drain()
        answers.append(_msa1(str(await asyncio.wait_for(reader2.readmessage(), timeout=5))))
    writer2.close()
    assert answers == ["AE", "AR", "AA"]

    health = platform.adapters.health(NAME)
    assert health.note == f"listening on 127.0.0.1:{port}, 8 messages, 3 rejected"
    counters = health.counters
    assert {k: counters[k] for k in ("messages", "acked_aa", "acked_ae", "acked_ar")} == {
        "messages": 8,
        "acked_aa": 6,
        "acked_ae": 1,
        "acked_ar": 2,
    }
    assert (counters["framing_errors"], counters["oversize"]) == (2, 1)
    await platform.adapters.disable(NAME)
    entries, _ = await platform.audit.store.entries(actor=f"adapter:{NAME}")
    assert [e.event.action for e in reversed(entries)] == [
        "hl7.listener.start",
        "hl7.listener.stop",
    ]


async def test_tls_with_the_servers_certificate(platform: Assembly, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    create_self_signed("carewire.localhost", cert, key)
    await build_hospital(platform)
    config = await platform.adapters.create(COMPONENT, NAME, settings={"port": 0, "use_tls": True})
    services = AdtServices(
        datasets=platform.datasets,
        audit=platform.audit,
        clock=platform.clock,
        control_ids=SqlControlIdStore(platform.db),
        default_tz=platform.engine.config.tz,
        tls=lambda: server_context(cert, key),
    )
    runtime = AdtRuntime(config, services)
    task = asyncio.create_task(runtime.run())
    try:
        for _ in range(200):
            if runtime.address is not None:
                break
            await asyncio.sleep(0.01)
        assert runtime.address is not None
        client = ssl.create_default_context(cafile=str(cert))
        client.check_hostname = False
        reader, writer = await open_hl7_connection(*runtime.address, ssl=client)
        writer.writemessage(hl7.parse(sample("a01_admit").decode()))
        await writer.drain()
        assert _msa1(str(await asyncio.wait_for(reader.readmessage(), timeout=5))) == "AA"
        writer.close()
        assert runtime.health().endswith("(TLS), 1 messages, 0 rejected")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_tls_without_a_certificate_is_a_crash_the_manager_reports(
    platform: Assembly,
) -> None:
    await platform.adapters.start()
    await platform.adapters.create(
        COMPONENT, NAME, is_enabled=True, settings={"port": 0, "use_tls": True}
    )
    for _ in range(200):
        if platform.adapters.health(NAME).last_error:
            break
        await asyncio.sleep(0.01)
    assert "no server certificate" in platform.adapters.health(NAME).last_error


async def _send(host: str, port: int, messages: list[bytes]) -> list[tuple[str, str]]:
    """Send in order on one connection; (MSA-1, MSA-3) of each ACK."""
    reader, writer = await open_hl7_connection(host, port)
    out = []
    try:
        for raw in messages:
            writer.writemessage(hl7.parse(raw.decode()))
            await writer.drain()
            msa = (await asyncio.wait_for(reader.readmessage(), timeout=10)).segment("MSA")
            out.append((str(msa(1)), str(msa(3)) if len(msa) > 3 else ""))
    finally:
        writer.close()
    return out


def _admit(n: int, *, bed: bytes = b"ICU^101^A") -> bytes:
    raw = replace_field(sample("a01_admit"), b"MRN2001", f"MRN3{n:03d}".encode())
    raw = replace_field(raw, b"|A01-0001|", f"|C-{n}|".encode())
    return replace_field(raw, b"ICU^101^A", bed)


async def test_concurrent_connections_share_transactions_and_keep_their_answers(
    platform: Assembly,
) -> None:
    runtime = await _listening(platform, {"port": 0})
    assert runtime.address is not None
    host, port = runtime.address
    feeds = [[_admit(c * 10 + i) for i in range(5)] for c in range(8)]
    feeds[3][2] = _admit(32, bed=b"ICU^101^Z")  # an unknown bed in the middle
    feeds.append([_admit(0), _admit(0)])  # a resend, racing the first copy of C-0
    answers = await asyncio.gather(*(_send(host, port, feed) for feed in feeds))
    flat = [a for feed in answers for a in feed]
    assert sum(1 for a in flat if a[0] == "AE") == 1
    assert answers[3][2][0] == "AE"
    assert all(a[0] in ("AA", "AE") for a in flat)
    assert [a[1] for a in flat].count("duplicate") == 2  # C-0 was sent three times
    page = await platform.datasets.query("PATIENTS", Query(limit=100))
    assert page.total == 39  # 8 x 5 - the unknown bed
