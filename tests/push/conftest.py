"""Fixtures for the push tests: the local APNs/FCM server, provider keys, settings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from carewire.push.settings import TOKEN, ApnsSettings, FcmSettings, PushSettings
from tests.push.pushserver import PushServer

TOPIC = "org.carewire.test"
KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM456789"
#: An APNs device token (64 hex digits) and an FCM registration token.
APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-token_" + "x" * 30


@dataclass(frozen=True, slots=True)
class ProviderKeys:
    """The provider credentials the server uses, as files."""

    apns_key_file: Path
    apns_public: ec.EllipticCurvePublicKey
    service_account: Path
    fcm_public: rsa.RSAPublicKey


# Key generation is the slow part (RSA): one pair per worker process is enough.
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def provider_keys(tmp_path: Path) -> ProviderKeys:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_bytes(_pem(ec_key))
    return ProviderKeys(
        apns_key_file=key_file,
        apns_public=ec_key.public_key(),
        service_account=tmp_path / "service-account.json",
        fcm_public=_RSA.public_key(),
    )


@pytest.fixture
async def pushserver(tmp_path: Path, provider_keys: ProviderKeys) -> AsyncIterator[PushServer]:
    server = PushServer(
        folder=tmp_path,
        apns_key=provider_keys.apns_public,
        apns_key_id=KEY_ID,
        fcm_key=provider_keys.fcm_public,
    )
    await server.start()
    provider_keys.service_account.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": server.fcm_project,
                "private_key_id": "k1",
                "private_key": _pem(_RSA).decode(),
                "client_email": "carewire@carewire-test.iam.gserviceaccount.com",
                "token_uri": f"{server.url}/token",
            }
        ),
        encoding="utf-8",
    )
    try:
        yield server
    finally:
        await server.close()


def push_settings(server: PushServer, keys: ProviderKeys, **overrides: object) -> PushSettings:
    """Token-auth APNs and FCM at the fixture, with short timeouts and retries."""
    values: dict[str, object] = {
        "apns": ApnsSettings(
            endpoint=server.url,
            topic=TOPIC,
            auth=TOKEN,
            key_file=keys.apns_key_file,
            key_id=KEY_ID,
            team_id=TEAM_ID,
        ),
        "fcm": FcmSettings(service_account_file=keys.service_account, endpoint=server.url),
        "ca_file": server.cert_file,
        "timeout": 0.5,
        "max_attempts": 3,
        "retry_base": 0.01,
        "retry_cap": 0.05,
        "workers": 4,
    }
    values.update(overrides)
    return PushSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(pushserver: PushServer, provider_keys: ProviderKeys) -> PushSettings:
    return push_settings(pushserver, provider_keys)
