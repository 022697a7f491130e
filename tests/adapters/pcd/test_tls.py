"""The PCD listener with TLS on: the server's certificate, verified by the client; no plaintext."""

from __future__ import annotations

import asyncio
import ssl
from functools import partial
from pathlib import Path

import hl7
import hl7.mllp

from carewire.adapters.hl7.mllp import frame
from carewire.adapters.manager import State
from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.net.tls import server_context
from carewire.security.certificates import create_self_signed
from tests.adapters.pcd.conftest import NAME, TIMEOUT, msa, sample, sample_bytes, start_instance
from tests.storage.conftest import db_url  # noqa: F401
from tests.templates import prefill

DOMAIN = "carewire.test"


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "xmpp.pem", tmp_path / "xmpp.key"
    create_self_signed(DOMAIN, cert, key)
    return cert, key


async def _exchange_tls(port: int, message: str, cafile: Path) -> hl7.Message:
    client = ssl.create_default_context(cafile=str(cafile))  # verifies chain and host name
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await hl7.mllp.open_hl7_connection(
            "127.0.0.1", port, ssl=client, server_hostname=DOMAIN
        )
        try:
            writer.writemessage(hl7.parse(message))
            await writer.drain()
            return await reader.readmessage()
        finally:
            writer.close()
            await writer.wait_closed()


async def _plaintext(port: int) -> bytes:
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(sample_bytes("hr_high_ph")))
        await writer.drain()
        try:
            return await reader.read()  # until the listener gives up on the handshake
        except ConnectionResetError:
            return b""
        finally:
            writer.close()


async def test_tls_on_takes_tls_with_the_servers_certificate_and_refuses_plaintext(
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    cert, key = _certificate(tmp_path)
    # what `carewire serve` passes: the server's certificate, read when a listener starts
    options = Options(
        url=await prefill(db_url), clock=FakeClock(), tls=partial(server_context, cert, key)
    )
    p = await assemble(options)
    try:
        await p.adapters.start()
        rt = await start_instance(p, tls=True)
        assert rt.port is not None
        reply = await _exchange_tls(rt.port, sample("hr_high_ph"), cert)
        assert msa(reply)[0] == "AA"
        assert await _plaintext(rt.port) == b""  # no ACK, nothing stored from it
        assert rt.intake.alarms_created == 1 and rt.mllp.messages == 1
        assert f"127.0.0.1:{rt.port} (TLS);" in rt.health()
    finally:
        await p.close()


async def test_tls_on_without_a_certificate_does_not_listen(pcd_platform: Assembly) -> None:
    p = pcd_platform
    await p.adapters.create(
        "PCD Alarms", NAME, is_enabled=True, settings={"listen_port": 0, "tls": True}
    )
    async with asyncio.timeout(TIMEOUT):
        while not p.adapters.health(NAME).last_error:
            await asyncio.sleep(0.01)
    health = p.adapters.health(NAME)
    assert health.state is State.RESTARTING
    assert "no server certificate" in health.last_error
