"""The security review's findings, on a real server: HTTPS read deadlines, body caps, headers."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from scramp import ScramClient
from websockets.exceptions import InvalidStatus

from tests.interop.helpers import assert_healthy, own_server, raw_login
from tests.interop.rawclient import NS_SASL, RawClient, client_tls_context
from tests.interop.wsclient import WsXmpp
from tests.mailserver import read_mails
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

MAX_BODY = 65_536
MAX_UNAUTHENTICATED = 3
THROTTLE_AFTER = 30
FLOODER = "127.0.0.2"


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "CAREWIRE_HTTPS_HEADER_TIMEOUT": "1s",
        "CAREWIRE_HTTPS_BODY_TIMEOUT": "1s",
        "CAREWIRE_HTTPS_MAX_BODY_BYTES": str(MAX_BODY),
        "CAREWIRE_XMPP_MAX_UNAUTHENTICATED_PER_ADDRESS": str(MAX_UNAUTHENTICATED),
        "CAREWIRE_XMPP_SCRAM_ITERATIONS": "10000",  # the default, not the test servers' 4096
        "CAREWIRE_XMPP_LOGIN_DELAY": "1s",
        "CAREWIRE_THROTTLE_MAX_FAILURES": str(THROTTLE_AFTER),
    }
    with own_server(tmp_path_factory, "hardening", env, accounts=12) as server:
        yield server


@pytest.fixture
async def admin(hard: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    r = hard.cli("token", "create", f"t{time.monotonic_ns()}", "--role", "admin")
    assert r.returncode == 0, r.stderr
    base = f"https://127.0.0.1:{hard.ports['https']}"
    async with httpx.AsyncClient(
        base_url=base,
        verify=False,
        timeout=10,
        headers={"Authorization": f"Bearer {r.stdout.strip()}"},
    ) as client:
        yield client


async def _tls(server: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        "127.0.0.1",
        server.ports["https"],
        ssl=client_tls_context(),
        server_hostname=server.domain,
    )


async def _closed_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: list[bytes]
) -> float:
    """Send ``trickle`` a piece every 0.2 s; the seconds until the server closes."""
    started = time.monotonic()

    async def drip() -> None:
        for piece in trickle:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.2)

    dripping = asyncio.create_task(drip())
    try:
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        dripping.cancel()
        writer.close()
    assert b"200 OK" not in data
    return time.monotonic() - started


async def test_trickled_headers_are_cut_off(hard: RunningServer) -> None:
    reader, writer = await _tls(hard)
    head = [b"GET /healthz HTTP/1.1\r\n", *[f"X-Slow-{i}: x\r\n".encode() for i in range(40)]]
    elapsed = await _closed_after(reader, writer, head)
    assert 0.8 < elapsed < 4, elapsed


async def test_trickled_body_is_cut_off(hard: RunningServer) -> None:
    reader, writer = await _tls(hard)
    head = b"POST /api/v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    elapsed = await _closed_after(reader, writer, [head, *[b"x" * 2] * 40])
    assert 0.8 < elapsed < 4, elapsed


async def test_a_prompt_client_is_served_on_a_kept_alive_connection(
    admin: httpx.AsyncClient,
) -> None:
    for _ in range(2):
        assert (await admin.get("/healthz")).status_code == 200
        await asyncio.sleep(0.6)  # under the deadline each time, over it in total


async def test_bodies_over_the_cap_get_413(admin: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    for kwargs in (
        {"content": big, "headers": {"content-type": "application/json"}},
        # Without a Content-Length: counted as it arrives.
        {"content": (big[i : i + 8192] async for i in _offsets(len(big)))},
    ):
        r = await admin.post("/api/v1/datasets", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "payload-too-large" and str(MAX_BODY) in body["detail"]
    # The server is fine and a body under the cap is handled as usual.
    r = await admin.post("/api/v1/datasets", json={"name": "x"})
    assert r.status_code == 422, r.text


async def _offsets(total: int) -> AsyncIterator[int]:
    for i in range(0, total, 8192):
        yield i


async def test_security_headers_on_api_health_and_console(admin: httpx.AsyncClient) -> None:
    for path in ("/api/v1/datasets", "/api/v1/nowhere", "/healthz", "/signin"):
        r = await admin.get(path)
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["strict-transport-security"].startswith("max-age=31536000"), path


# -- unauthenticated connections per address --------------------------------------------


async def _idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _is_refused(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection without a word (within 3 s)."""
    try:
        return await asyncio.wait_for(reader.read(1), 3) == b""
    except ConnectionError:
        return True


async def test_unauthenticated_connections_per_address_are_capped(hard: RunningServer) -> None:
    idle = [await _idle(hard.ports["c2s"]) for _ in range(MAX_UNAUTHENTICATED)]
    try:
        await asyncio.sleep(0.2)
        for port in (hard.ports["c2s"], hard.ports["c2s_tls"]):
            reader, writer = await _idle(port)
            assert await _is_refused(reader), port
            writer.close()
        with pytest.raises(InvalidStatus):
            async with WsXmpp.connect(hard):
                pass
    finally:
        for _, writer in idle:
            writer.close()
    await asyncio.sleep(0.3)
    # Once they are gone, clients sign in; a bound session no longer counts.
    signed_in = [await raw_login(hard) for _ in range(MAX_UNAUTHENTICATED + 1)]
    try:
        extra = [await _idle(hard.ports["c2s"]) for _ in range(MAX_UNAUTHENTICATED)]
        await asyncio.sleep(0.2)
        reader, writer = extra[0]
        writer.write(b"<?xml version='1.0'?>")
        await writer.drain()
        with pytest.raises(TimeoutError):  # held open, waiting for the stream header
            await asyncio.wait_for(reader.read(1), 0.5)
        for _, w in extra:
            w.close()
        for client in signed_in:
            await assert_healthy(client)
    finally:
        for client in signed_in:
            await client.aclose()


# -- failed logins: same answers for unknown accounts, lockout notices, the throttle ----


async def _connect(server: RunningServer, source: str) -> RawClient:
    """A raw client on the STARTTLS port from the loopback address ``source``."""
    if source == "127.0.0.1":
        return await RawClient.connect(server.ports["c2s"], domain=server.domain)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.ports["c2s"]))
    reader, writer = await asyncio.open_connection(sock=sock)
    return RawClient(reader, writer, domain=server.domain)


async def _wrong_scram(
    server: RunningServer, login: str, source: str = "127.0.0.1"
) -> tuple[str, str]:
    """A SCRAM-SHA-256 attempt with a wrong password: (server-first or "", the failure)."""
    client = await _connect(server, source)
    try:
        await client.open_stream()
        await client.starttls()
        scram = ScramClient(["SCRAM-SHA-256"], login, "not the password")
        first = base64.b64encode(scram.get_client_first().encode()).decode()
        await client.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{first}</auth>")
        found = await client.read_until(
            re.compile(r"</challenge>|<(success|failure)\b.*?(/>|</\1>)", re.S)
        )
        m = re.search(r"<challenge[^>]*>([^<]*)</challenge>", found)
        if m is None:
            return "", re.sub(r"\s+", " ", found[found.index("<failure") :])
        server_first = base64.b64decode(m.group(1)).decode()
        scram.set_server_first(server_first)
        final = base64.b64encode(scram.get_client_final().encode()).decode()
        await client.send(f"<response xmlns='{NS_SASL}'>{final}</response>")
        return server_first, re.sub(r"\s+", " ", await client.sasl_result())
    finally:
        await client.aclose()


def _salt_and_rounds(server_first: str) -> tuple[str, str]:
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    return fields["s"], fields["i"]


async def test_unknown_and_known_accounts_answer_alike(hard: RunningServer) -> None:
    known, _ = hard.account()
    unknown = f"nobody-{time.monotonic_ns()}"
    answers: dict[str, list[str]] = {known: [], unknown: []}
    firsts: dict[str, list[tuple[str, str]]] = {known: [], unknown: []}
    for _ in range(6):
        for login in (known, unknown):
            server_first, failure = await _wrong_scram(hard, login)
            answers[login].append(failure)
            if server_first:
                firsts[login].append(_salt_and_rounds(server_first))
    assert answers[known] == answers[unknown]
    assert "not-authorized" in answers[known][0]
    assert "temporary-auth-failure" in answers[known][-1]  # the delay after 5 failures
    # A stable fake salt per name, and the iteration count real accounts get.
    assert len({salt for salt, _ in firsts[unknown]}) == 1
    assert {rounds for _, rounds in firsts[known]} == {rounds for _, rounds in firsts[unknown]}
    assert {rounds for _, rounds in firsts[known]} == {"10000"}
    assert {len(salt) for salt, _ in firsts[known]} == {len(salt) for salt, _ in firsts[unknown]}


async def test_a_lock_is_mailed_to_the_administrators(hard: RunningServer) -> None:
    victim, password = hard.account()
    for n in range(10):
        _, failure = await _wrong_scram(hard, victim)
        assert "not-authorized" in failure, (n, failure)
        if n >= 4:
            await asyncio.sleep(1.05)  # past the (shortened) delay, so each failure counts
    _, failure = await _wrong_scram(hard, victim)
    assert "account-disabled" in failure
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = [m for m in read_mails(hard.data_dir / "outbox") if victim in m["Subject"]]
        if mails:
            break
        await asyncio.sleep(0.2)
    (mail,) = mails
    assert mail["To"] == f"admin@{hard.domain}"
    assert "127.0.0.1" in mail.get_content() and password not in mail.get_content()


async def test_a_flood_from_one_address_is_throttled(hard: RunningServer) -> None:
    """From 127.0.0.2, so that the other tests' address (127.0.0.1) is not throttled."""
    login, password = hard.account()
    answers = [(await _wrong_scram(hard, f"guess{n}", FLOODER))[1] for n in range(THROTTLE_AFTER)]
    assert all("not-authorized" in a for a in answers), answers
    _, failure = await _wrong_scram(hard, "guess-more", FLOODER)
    assert "temporary-auth-failure" in failure, failure
    # Even the right password is refused from there now, the same way, without counting …
    client = await _connect(hard, FLOODER)
    try:
        await client.open_stream()
        await client.starttls()
        result = await client.auth_scram(login, password)
        assert "temporary-auth-failure" in result, result
    finally:
        await client.aclose()
    assert f"authentication from {FLOODER} throttled after {THROTTLE_AFTER}" in hard.log()
    # … and the account still signs in from its own address.
    client = await RawClient.login(hard.ports["c2s"], login, password, domain=hard.domain)
    await client.aclose()
