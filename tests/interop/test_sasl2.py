"""SASL2, Bind2 and FAST over real TLS against the server subprocess (raw client; docs/sasl2.md).

slixmpp and aioxmpp have no SASL2: their tests (test_aioxmpp.py, the slixmpp
suites) keep checking that legacy SASL is unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid

import pytest
from scramp import ScramClient

from tests.interop.helpers import assert_healthy, raw_login
from tests.interop.rawclient import RawClient
from tests.serverproc import RunningServer

pytestmark = pytest.mark.interop

SASL2 = "urn:xmpp:sasl:2"
FAST = "urn:xmpp:fast:0"
NUL = b"\x00"
SASL2_END = re.compile(r"<(success|failure|challenge)\b.*?</\1>", re.S)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def end_point(client: RawClient) -> bytes:
    """tls-server-end-point (RFC 5929): SHA-256 of the server certificate (signed with SHA-256)."""
    assert client.ssl_object is not None
    der = client.ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).digest()


async def sasl2_reply(client: RawClient) -> str:
    found = await client.read_until(SASL2_END)
    match = SASL2_END.search(found)
    assert match is not None
    return match.group(0)


async def connect(server: RunningServer) -> tuple[RawClient, str]:
    client = await RawClient.connect(server.ports["c2s_tls"], domain=server.domain, direct_tls=True)
    return client, await client.open_stream()


async def test_scram_plus_bind2_token_then_fast_reconnect(server: RunningServer) -> None:
    witness = await raw_login(server)
    login, password = server.account()
    agent = f"<user-agent id='{uuid.uuid4()}'><software>Ward</software></user-agent>"
    client, features = await connect(server)
    assert f'<authentication xmlns="{SASL2}"' in features
    assert '<channel-binding type="tls-server-end-point"' in features
    scram = ScramClient(
        ["SCRAM-SHA-256-PLUS"],
        login,
        password,
        channel_binding=("tls-server-end-point", client.ssl_object),
    )
    await client.send(
        f"<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256-PLUS'>"
        f"<initial-response>{b64(scram.get_client_first().encode())}</initial-response>{agent}"
        "<bind xmlns='urn:xmpp:bind:0'><tag>Ward</tag><enable xmlns='urn:xmpp:carbons:2'/></bind>"
        f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-ENDP'/></authenticate>"
    )
    challenge = await sasl2_reply(client)
    server_first = base64.b64decode(re.sub(r"<[^>]+>", "", challenge)).decode()
    assert ",h=" in server_first  # XEP-0474
    scram.set_server_first(server_first)
    await client.send(
        f"<response xmlns='{SASL2}'>{b64(scram.get_client_final().encode())}</response>"
    )
    success = await sasl2_reply(client)
    assert success.startswith("<success"), success
    data = re.search(r"<additional-data>([^<]+)</additional-data>", success)
    assert data is not None
    scram.set_server_final(base64.b64decode(data.group(1)).decode())
    token = re.search(r"token=\"([^\"]+)\"", success)
    jid = re.search(r"<authorization-identifier>([^<]+)<", success)
    assert token is not None and jid is not None and "/Ward/" in jid.group(1)
    client.jid = jid.group(1)
    await client.read_until("</stream:features>")  # no restart: the features follow
    await assert_healthy(client)
    await client.aclose()

    # FAST: one round trip, bound to this TLS connection's certificate.
    fast, _ = await connect(server)
    mac = hmac.new(token.group(1).encode(), b"Initiator" + end_point(fast), "sha256").digest()
    await fast.send(
        f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-ENDP'>"
        f"<initial-response>{b64(login.encode() + NUL + mac)}</initial-response>{agent}"
        f"<bind xmlns='urn:xmpp:bind:0'><tag>Ward</tag></bind><fast xmlns='{FAST}'/></authenticate>"
    )
    success = await sasl2_reply(fast)
    # A fresh token is not due for rotation (xmpp.fast_rotate_after): no new one.
    assert success.startswith("<success") and "<token " not in success, success
    fast.jid = client.jid
    await fast.read_until("</stream:features>")
    await assert_healthy(fast)

    # Garbage: a FAST login without its initial response; the others carry on.
    bad, _ = await connect(server)
    await bad.send(f"<authenticate xmlns='{SASL2}' mechanism='HT-SHA-256-ENDP'>junk</authenticate>")
    failure = await sasl2_reply(bad)
    assert "<malformed-request" in failure and "FAST needs an initial response" in failure
    await assert_healthy(witness)
    await assert_healthy(fast)
