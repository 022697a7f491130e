"""Browser tests: the console served over HTTPS by uvicorn, driven by Chromium through Playwright.

Each test gets its own server (a fresh SQLite platform, a self-signed
certificate, mail to an outbox folder) on 127.0.0.1 and a port the system
picks, and its own headless Chromium (Debian's ``/usr/bin/chromium``).
Without that browser the tests are skipped, loudly; in CI
(``CAREWIRE_TEST_REQUIRE_BROWSER`` set) they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.types import ASGIApp

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import SystemClock
from carewire.mail import OutboxMailer
from carewire.security.cert_manager import CertificateManager
from carewire.security.certificates import ensure_certificate
from carewire.security.console_auth import ConsoleConfig
from carewire.web.console import ConsoleServices, create_console

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
REQUIRE_BROWSER = bool(os.environ.get("CAREWIRE_TEST_REQUIRE_BROWSER"))
MISSING_BROWSER = (
    "!!! /usr/bin/chromium is missing: the console's browser tests are SKIPPED "
    "(apt-get install -y chromium) !!!"
)


def skip_without_browser() -> pytest.MarkDecorator:
    """Skip a module when Chromium is missing (unless CI requires it: then it fails)."""
    return pytest.mark.skipif(not CHROMIUM.exists() and not REQUIRE_BROWSER, reason=MISSING_BROWSER)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (pytest owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def loopback_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free 127.0.0.1 port, and the console's base URL on it."""
    sock = socket.socket(socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"https://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def console_over_tls(
    services: ConsoleServices, cert: Path, key: Path, sock: socket.socket
) -> AsyncIterator[None]:
    """Serve ``create_console(services)`` over TLS 1.2+ on ``sock`` until the block ends."""
    async with app_over_tls(create_console(services), cert, key, sock):
        yield


@contextlib.asynccontextmanager
async def app_over_tls(
    app: ASGIApp, cert: Path, key: Path, sock: socket.socket
) -> AsyncIterator[None]:
    """Serve ``app`` over TLS 1.2+ on ``sock`` until the block ends."""
    config = uvicorn.Config(
        app,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="warning",
        lifespan="off",
        server_header=False,
    )
    config.load()
    assert config.ssl is not None
    config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    server = _Uvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="console-https")
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "the console did not start"
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """A running console.

    Attributes:
        base_url: ``https://127.0.0.1:<port>``.
        platform: The services behind it (create users through ``platform.console``).
        outbox: Where its mail is written.
    """

    base_url: str
    platform: Assembly
    outbox: Path


@contextlib.asynccontextmanager
async def serve_console(tmp_path: Path, session_timeout: timedelta) -> AsyncIterator[Served]:
    """Serve the console over TLS on 127.0.0.1 until the block ends."""
    cert, key = tmp_path / "certs" / "console.pem", tmp_path / "certs" / "console.key"
    ensure_certificate("carewire.test", cert, key)
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}"))
    sock, base_url = loopback_socket()
    outbox = tmp_path / "outbox"
    certificates = CertificateManager(
        tmp_path, "carewire.test", SystemClock(), platform.audit, cert_file=cert, key_file=key
    )
    services = ConsoleServices(
        accounts=platform.console,
        audit=platform.audit,
        mailer=OutboxMailer(outbox, sender="carewire@carewire.test"),
        config=ConsoleConfig(
            session_timeout=session_timeout,
            reset_link_ttl=timedelta(minutes=30),
            domain="carewire.test",
            base_url=base_url,
        ),
        registry=platform.registry,
        datasets=platform.datasets,
        adapters=platform.adapters,
        rules=platform.rules,
        engine=platform.engine,
        certificates=certificates,
        federation=platform.federation,
    )
    try:
        async with console_over_tls(services, cert, key, sock):
            yield Served(base_url=base_url, platform=platform, outbox=outbox)
    finally:
        await platform.close()


ServeFactory = Callable[[timedelta], Awaitable[Served]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[ServeFactory]:
    """``await serve(timeout)``: start a console with that session timeout (stopped afterwards)."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(session_timeout: timedelta = timedelta(minutes=20)) -> Served:
            return await stack.enter_async_context(serve_console(tmp_path, session_timeout))

        yield start


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    """Headless Chromium until the block ends (for fixtures of a wider scope)."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium."""
    async with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
