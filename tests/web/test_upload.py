"""File sharing's HTTP side (carewire.web.upload) on a real server: TLS, uvicorn, httpx.

A whole server runs in the test's process on free loopback ports with its
HTTPS listener; slots are asked of its upload service directly (the slot IQ
is tested in ``tests/features/test_upload.py``), then PUT and GET go over
real TLS. The server's clock is a fake one, so slots and files expire when
the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from carewire.clock import FakeClock
from carewire.config import CONFIG_FILE, load, render_default
from carewire.server import Server
from carewire.uploads import UploadService, UploadState
from carewire.uploads.sealing import CHUNK
from carewire.uploads.service import token_hash
from tests.templates import prefill

DOMAIN = "carewire.test"
LIMIT = 300_000


@dataclass
class Served:
    server: Server
    client: httpx.AsyncClient
    clock: FakeClock

    @property
    def uploads(self) -> UploadService:
        assert self.server.assembly is not None and self.server.assembly.uploads is not None
        return self.server.assembly.uploads

    def local(self, url: str) -> str:
        """``url`` (on the domain, as clients are given it) on the loopback address."""
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname == DOMAIN
        assert parts.port == self.server.ports["https"]
        return f"https://127.0.0.1:{parts.port}{parts.path}"

    async def slot(
        self,
        name: str = "scan.png",
        size: int = 1000,
        ctype: str = "image/png",
        owner: str = "alice",
    ) -> str:
        slot = await self.uploads.request_slot(
            owner=owner, filename=name, size=size, content_type=ctype, lifetime=timedelta(days=7)
        )
        assert slot.put_url == slot.get_url
        return self.local(slot.put_url)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **https: object) -> AsyncIterator[Served]:
    """A started server with file sharing (``LIMIT``-byte files) and these ``[https]`` values."""
    (tmp_path / CONFIG_FILE).write_text(render_default(DOMAIN), encoding="utf-8")
    await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    config = load(
        tmp_path,
        env={},
        overrides={
            "server": {"c2s_port": 0, "c2s_tls_port": 0, "https_port": 0},
            "https": https,
            "upload": {"max_file_size": LIMIT, "quota": 3 * LIMIT},
        },
    )
    clock = FakeClock(datetime.now(UTC))
    server = Server(config, clock=clock)
    await server.start()
    try:
        async with httpx.AsyncClient(verify=False, timeout=10) as client:
            yield Served(server, client, clock)
    finally:
        await server.stop()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as s:
        yield s


def files_on_disk(served: Served) -> list[Path]:
    return [p for p in (served.server.config.data_dir / "uploads").rglob("*") if p.is_file()]


async def test_put_then_get_the_same_bytes_encrypted_on_disk(served: Served) -> None:
    marker = b"PATIENT Jane Roe MRN-0042 " * 40
    data = marker + os.urandom(2 * CHUNK + 123)  # three chunks
    url = await served.slot("x-ray report.png", len(data))
    put = await served.client.put(url, content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 201, put.text
    got = await served.client.get(url)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["content-disposition"] == (
        "inline; filename=\"x-ray report.png\"; filename*=UTF-8''x-ray%20report.png"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    assert got.headers["cache-control"] == "no-store"
    head = await served.client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    (on_disk,) = files_on_disk(served)
    sealed = on_disk.read_bytes()
    assert b"Jane Roe" not in sealed and data[-1000:] not in sealed
    assert on_disk.stat().st_mode & 0o777 == 0o600
    assert "x-ray" not in on_disk.name
    entries, _ = await served.uploads.audit.store.entries(action="upload.store")  # type: ignore[union-attr]
    assert [e.event.details for e in entries] == [{"size": len(data), "content_type": "image/png"}]
    assert "x-ray" not in str(entries[0].event)


async def test_html_is_served_as_an_attachment_that_cannot_run(served: Served) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    url = await served.slot("page.html", len(page), "text/html")
    assert (
        await served.client.put(url, content=page, headers={"Content-Type": "text/html"})
    ).status_code == 201
    got = await served.client.get(url)
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-security-policy"].startswith("default-src 'none'; sandbox")


async def test_put_errors_leave_the_slot_and_other_uploads_alone(served: Served) -> None:
    data = os.urandom(1000)
    url = await served.slot(size=1000)
    other = await served.slot("other.png", size=10, owner="bob")
    shorter = await served.client.put(
        url, content=data[:999], headers={"Content-Type": "image/png"}
    )
    assert (shorter.status_code, shorter.json()["code"]) == (400, "size-mismatch")
    longer = await served.client.put(
        url, content=data + b"x", headers={"Content-Type": "image/png"}
    )
    assert (longer.status_code, longer.json()["code"]) == (413, "too-large")
    wrong = await served.client.put(url, content=data, headers={"Content-Type": "text/html"})
    assert (wrong.status_code, wrong.json()["code"]) == (415, "type-mismatch")

    async def chunked() -> AsyncIterator[bytes]:
        yield data

    no_length = await served.client.put(
        url, content=chunked(), headers={"Content-Type": "image/png"}
    )
    assert (no_length.status_code, no_length.json()["code"]) == (411, "length-required")
    assert (
        await served.client.put(other, content=b"0123456789", headers={"Content-Type": "image/png"})
    ).status_code == 201
    ok = await served.client.put(url, content=data, headers={"Content-Type": "image/png; q=1"})
    assert ok.status_code == 201  # the slot survived every refusal
    again = await served.client.put(url, content=data, headers={"Content-Type": "image/png"})
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert (await served.client.get(url)).content == data
    assert (await served.client.get(other)).content == b"0123456789"
    post = await served.client.post(url, content=b"x")
    assert post.status_code == 405


async def test_two_puts_racing_for_one_slot_one_wins(served: Served) -> None:
    data = os.urandom(200_000)
    url = await served.slot(size=len(data))
    headers = {"Content-Type": "image/png"}
    async with httpx.AsyncClient(verify=False, timeout=10) as second:
        a, b = await asyncio.gather(
            served.client.put(url, content=data, headers=headers),
            second.put(url, content=data, headers=headers),
        )
    assert sorted([a.status_code, b.status_code]) == [201, 409]
    assert (await served.client.get(url)).content == data


async def test_gets_of_unknown_wrong_name_pending_or_expired_are_404(served: Served) -> None:
    data = b"hello"
    url = await served.slot("a.txt", 5, "text/plain")
    assert (await served.client.get(url)).status_code == 404  # not uploaded yet
    base, _, name = url.rpartition("/")
    assert (
        await served.client.put(url, content=data, headers={"Content-Type": "text/plain"})
    ).status_code == 201
    assert (await served.client.get(f"{base}/b.txt")).status_code == 404  # the name is part of it
    token = base.rpartition("/")[2]
    forged = base.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert (await served.client.get(f"{forged}/{name}")).status_code == 404
    assert (await served.client.get(f"{base}/../{name}")).status_code == 404
    missing = await served.client.get(
        f"https://127.0.0.1:{served.server.ports['https']}/upload/x/y"
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "not-found")
    served.clock.advance(timedelta(days=7, seconds=1).total_seconds())
    assert (await served.client.get(url)).status_code == 404  # expired, not yet swept
    assert await served.uploads.sweep() == 1
    assert files_on_disk(served) == []
    assert (await served.client.get(url)).status_code == 404
    entries, _ = await served.uploads.audit.store.entries(action="upload.expire")  # type: ignore[union-attr]
    assert [e.event.details for e in entries] == [{"count": 1}]


async def test_put_after_the_slot_expired_is_403(served: Served) -> None:
    url = await served.slot("a.txt", 5, "text/plain")
    served.clock.advance(timedelta(minutes=5, seconds=1).total_seconds())
    late = await served.client.put(url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert (late.status_code, late.json()["code"]) == (403, "expired")
    served.clock.advance(timedelta(minutes=10).total_seconds())
    assert await served.uploads.sweep() == 1  # the unused slot goes too
    late = await served.client.put(url, content=b"hello", headers={"Content-Type": "text/plain"})
    assert late.status_code == 404


async def test_a_damaged_file_is_never_served(served: Served) -> None:
    data = os.urandom(1000)
    url = await served.slot(size=1000)
    assert (
        await served.client.put(url, content=data, headers={"Content-Type": "image/png"})
    ).status_code == 201
    (on_disk,) = files_on_disk(served)
    sealed = bytearray(on_disk.read_bytes())
    sealed[100] ^= 1
    on_disk.write_bytes(bytes(sealed))
    got = await served.client.get(url)
    assert (got.status_code, got.json()["code"]) == (500, "damaged")
    assert data[:100] not in got.content


async def test_a_client_gone_mid_body_frees_the_slot(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="carewire.web.upload")
    data = os.urandom(200_000)
    url = await served.slot(size=len(data))
    path = urlsplit(url).path
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    _, writer = await asyncio.open_connection(
        "127.0.0.1", served.server.ports["https"], ssl=context
    )
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + data[:100_000])
    await writer.drain()
    token = path.split("/")[2]

    async def until(state: UploadState) -> None:
        for _ in range(200):
            record = await served.uploads.store.by_token(token_hash(token))
            if record is not None and record.state is state:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the slot never became {state}")

    await until(UploadState.RECEIVING)  # the server is reading the body
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
    await until(UploadState.SLOT)  # the client went away: the slot is free again
    assert files_on_disk(served) == []
    put = await served.client.put(url, content=data, headers={"Content-Type": "image/png"})
    assert put.status_code == 201
    assert (await served.client.get(url)).content == data
    assert "upload PUT abandoned by the client" in caplog.messages
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.slow  # its own server and a 1.5 s pause: about 3.5 s
async def test_an_upload_body_may_take_longer_than_other_bodies(tmp_path: Path) -> None:
    """``https.body_timeout`` (1 s here) cuts slow forms; a PUT has ``upload.body_timeout``."""
    async with serving(tmp_path, body_timeout="1s") as served:
        data = os.urandom(100_000)
        url = await served.slot(size=len(data))

        async def slowly() -> AsyncIterator[bytes]:
            yield data[:50_000]
            await asyncio.sleep(1.5)
            yield data[50_000:]

        headers = {"Content-Type": "image/png", "Content-Length": str(len(data))}
        put = await served.client.put(url, content=slowly(), headers=headers)
        assert put.status_code == 201
        assert (await served.client.get(url)).content == data
