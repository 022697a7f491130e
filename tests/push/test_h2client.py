"""The push providers' HTTP/2 client against the local HTTP/2 server (real TLS, ALPN h2)."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from carewire.push import jwt
from carewire.push.h2client import H2Client, Response
from tests.push import pushserver as fx
from tests.push.pushserver import PushServer

TOKENS = [f"{i:064x}" for i in range(1, 41)]
KEY = ec.generate_private_key(ec.SECP256R1())
BEARER = "bearer " + jwt.es256(KEY, key_id="K1", claims={"iss": "TEAM", "iat": int(time.time())})


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[PushServer]:
    """A server that allows only 3 streams at once."""
    server = PushServer(folder=tmp_path, max_streams=3, apns_key=KEY.public_key(), apns_key_id="K1")
    await server.start()
    yield server
    await server.close()


def client(server: PushServer) -> H2Client:
    return H2Client(server.url, ssl.create_default_context(cafile=str(server.cert_file)))


def push(token: str) -> tuple[str, list[tuple[str, str]], bytes]:
    headers = [
        ("apns-topic", "org.example"),
        ("apns-push-type", "alert"),
        ("authorization", BEARER),
    ]
    return f"/3/device/{token}", headers, b'{"aps": {"badge": 1}}'


async def one(h2: H2Client, token: str) -> Response:
    path, headers, body = push(token)
    return await h2.request("POST", path, headers=headers, body=body)


async def test_a_batch_beyond_the_stream_limit_is_answered_in_full(small: PushServer) -> None:
    h2 = client(small)
    try:
        answers = await h2.request_many("POST", [push(t) for t in TOKENS], timeout=10)
    finally:
        await h2.aclose()
    assert all(isinstance(a, Response) and a.status == 200 for a in answers)
    assert sorted(r.path for r in small.pushes()) == sorted(f"/3/device/{t}" for t in TOKENS)
    assert all(isinstance(a, Response) and a.headers.get("apns-id") for a in answers)


async def test_a_hanging_request_times_out_alone(small: PushServer) -> None:
    small.script(TOKENS[0], fx.HANG)
    h2 = client(small)
    started = time.monotonic()
    try:
        answers = await h2.request_many("POST", [push(t) for t in TOKENS[:6]], timeout=0.5)
        later = await one(h2, TOKENS[7])
    finally:
        await h2.aclose()
    assert time.monotonic() - started < 5
    assert isinstance(answers[0], TimeoutError)
    assert all(isinstance(a, Response) for a in answers[1:])
    assert later.status == 200  # the connection still serves (the stream was reset)


async def test_a_connection_that_goes_away_is_replaced(tmp_path: Path) -> None:
    server = PushServer(folder=tmp_path, apns_key=KEY.public_key(), apns_key_id="K1")
    await server.start()
    h2 = client(server)
    try:
        first = await one(h2, TOKENS[0])
        for writer in list(server._writers):
            writer.close()  # the server drops the connection
        for _ in range(50):
            answers = await h2.request_many("POST", [push(TOKENS[1])], timeout=2)
            if isinstance(answers[0], Response):
                break
        else:
            pytest.fail("no new connection was opened")
    finally:
        await h2.aclose()
        await server.close()
    assert first.status == 200 and isinstance(answers[0], Response)
