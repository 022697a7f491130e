"""Fixtures of the PCD alarm tests: the sample messages, a platform with a listening instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import hl7.mllp
import pytest

from carewire.adapters import pcd
from carewire.adapters.pcd.runtime import PcdRuntime
from carewire.assembly import Assembly
from carewire.clock import FakeClock
from tests.adapters.conftest import platform  # noqa: F401
from tests.storage.conftest import db_url  # noqa: F401

SAMPLES = Path(__file__).parent / "samples"
NAME = "Monitors"
TIMEOUT = 10.0


def sample(name: str) -> str:
    """A sample message as sent on the wire: segments ended by CR."""
    text = (SAMPLES / f"{name}.hl7").read_text(encoding="utf-8")
    return "\r".join(line for line in text.splitlines() if line) + "\r"


def sample_bytes(name: str) -> bytes:
    """:func:`sample` encoded."""
    return sample(name).encode("utf-8")


def runtime_of(p: Assembly, name: str = NAME) -> PcdRuntime:
    """The running runtime of an instance."""
    view = p.adapters.view(name)
    assert view is not None and isinstance(view.runtime, PcdRuntime)
    return view.runtime


async def start_instance(p: Assembly, name: str = NAME, **settings: object) -> PcdRuntime:
    """Create an enabled PCD instance on a free port and wait until it listens."""
    await p.adapters.create(
        pcd.COMPONENT,
        name,
        is_enabled=True,
        settings={"listen_port": 0, "default_facility": "Main General", **settings},
    )
    return await running(p, name)


async def running(p: Assembly, name: str = NAME) -> PcdRuntime:
    """The instance's runtime once it listens."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            view = p.adapters.view(name)
            if view is not None and isinstance(view.runtime, PcdRuntime):
                await view.runtime.bound.wait()
                return view.runtime
            await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """PCD-05 retries 10 ms apart in the platforms these tests assemble (autouse: before them)."""
    monkeypatch.setattr(pcd, "RETRY_DELAY", 0.01)


@pytest.fixture
async def pcd_platform(platform: Assembly) -> AsyncIterator[Assembly]:  # noqa: F811
    """The platform (the PCD kind registered by the assembly, retries 10 ms apart), started."""
    await platform.adapters.start()
    yield platform


async def exchange(port: int, message: str) -> hl7.Message:
    """Send one message with the ``hl7`` package's MLLP client and return the ACK."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
        try:
            writer.writemessage(hl7.parse(message))
            await writer.drain()
            return await reader.readmessage()
        finally:
            writer.close()
            await writer.wait_closed()


def msa(reply: hl7.Message) -> tuple[str, str, str]:
    """MSA-1, MSA-2 and MSA-3 of an acknowledgement."""
    seg = reply.segment("MSA")
    return str(seg(1)), str(seg(2)), str(seg(3))


@dataclass
class StatusReceiver:
    """A PCD-05 endpoint: an MLLP server (the ``hl7`` package's) that keeps what it gets."""

    received: list[hl7.Message] = field(default_factory=list)
    answer: str = "AA"
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(
        self, reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter
    ) -> None:
        try:
            while not writer.is_closing():
                message = await reader.readmessage()
                self.received.append(message)
                self.arrived.set()
                writer.writemessage(message.create_ack(ack_code=self.answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int) -> list[hl7.Message]:
        async with asyncio.timeout(TIMEOUT):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[StatusReceiver, int]]:
    """A running PCD-05 endpoint on a free port."""
    r = StatusReceiver()
    server = await hl7.mllp.start_hl7_server(r.handle, host="127.0.0.1", port=0)
    try:
        yield r, int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def fake_clock(p: Assembly) -> FakeClock:
    clock = p.clock
    assert isinstance(clock, FakeClock)
    return clock
