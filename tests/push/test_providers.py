"""The APNs and FCM HTTP/2 clients against the local provider server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from carewire.push.model import Decision, Notification, PushPriority
from carewire.push.providers import ApnsProvider, FcmProvider
from carewire.push.settings import CERTIFICATE, ApnsSettings, PushSettings
from tests.push import pushserver as ps
from tests.push.conftest import APNS_TOKEN, FCM_TOKEN, TOPIC, ProviderKeys, push_settings
from tests.push.pushserver import PushServer

NOTE = Notification(count=2, priority=PushPriority.URGENT, opaque_id="op-1")


async def test_apns_token_auth_sends_and_reuses_the_provider_token(
    pushserver: PushServer, settings: PushSettings
) -> None:
    assert settings.apns is not None
    apns = ApnsProvider(settings.apns, settings)
    try:
        first = await apns.send(APNS_TOKEN, NOTE, topic="")
        second = await apns.send(APNS_TOKEN, NOTE, topic="")
    finally:
        await apns.close()
    assert first.status == 200 and first.provider_id and apns.classify(first) is Decision.DELIVERED
    assert second.status == 200
    r1, r2 = pushserver.pushes()
    assert r1.headers["authorization"] == r2.headers["authorization"]  # cached (Apple: ≥ 20 min)
    assert r1.headers["apns-topic"] == TOPIC
    assert r1.headers["apns-priority"] == "10" and r1.headers["apns-push-type"] == "alert"
    aps = r1.json()["aps"]
    assert isinstance(aps, dict) and aps["interruption-level"] == "time-sensitive"


async def test_apns_answers_are_classified(pushserver: PushServer, settings: PushSettings) -> None:
    assert settings.apns is not None
    apns = ApnsProvider(settings.apns, settings)
    cases = {
        "b0" * 32: (ps.BAD_TOKEN, 400, "BadDeviceToken", Decision.INVALID_TOKEN),
        "b1" * 32: (ps.UNREGISTERED, 410, "Unregistered", Decision.INVALID_TOKEN),
        "b2" * 32: (ps.THROTTLE, 429, "TooManyRequests", Decision.RETRY),
        "b3" * 32: (ps.UNAVAILABLE, 503, "ServiceUnavailable", Decision.RETRY),
        "b4" * 32: (ps.ERROR, 500, "InternalServerError", Decision.RETRY),
        "b5" * 32: (ps.HANG, 0, "TimeoutError", Decision.RETRY),
    }
    pushserver.retry_after = "7"
    try:
        for token, (script, status, reason, decision) in cases.items():
            pushserver.script(token, script)
            outcome = await apns.send(token, NOTE, topic="")
            assert (outcome.status, outcome.reason) == (status, reason), token
            assert apns.classify(outcome) is decision
            if status in (429, 500, 503):
                assert outcome.retry_after == 7.0  # Retry-After, for the back-off
    finally:
        await apns.close()


async def test_apns_wrong_signing_key_is_refused(
    pushserver: PushServer, settings: PushSettings, provider_keys: ProviderKeys, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = tmp_path / "other.p8"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert settings.apns is not None
    from dataclasses import replace

    apns = ApnsProvider(replace(settings.apns, key_file=other), settings)
    try:
        outcome = await apns.send(APNS_TOKEN, NOTE, topic="")
    finally:
        await apns.close()
    assert (outcome.status, outcome.reason) == (403, "InvalidProviderToken")
    assert apns.classify(outcome) is Decision.PROVIDER_AUTH


async def test_apns_certificate_auth_uses_the_uploaded_certificate(
    tmp_path: Path, provider_keys: ProviderKeys
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    ca_cert, ca_key = ps.make_certificate(tmp_path, "apple-ca")
    issuer = (
        load_pem_private_key(ca_key.read_bytes(), None),
        x509.load_pem_x509_certificate(ca_cert.read_bytes()),
    )
    client_cert, client_key = ps.make_certificate(tmp_path, "push-client", issuer=issuer)
    certs = tmp_path / "certs" / "apns"
    certs.mkdir(parents=True)
    (certs / "next-gen.pem").write_bytes(client_cert.read_bytes() + client_key.read_bytes())
    (certs / "next-gen.json").write_text(json.dumps({"production": False}), encoding="utf-8")
    server = PushServer(folder=tmp_path, client_ca=ca_cert)
    await server.start()
    try:
        settings = push_settings(server, provider_keys)
        apns_settings = ApnsSettings(
            endpoint=server.url, topic=TOPIC, auth=CERTIFICATE, certificate_dir=certs
        )
        apns = ApnsProvider(apns_settings, settings)
        try:
            ok = await apns.send(APNS_TOKEN, NOTE, topic="")
            shutil.move(certs / "next-gen.pem", certs / "gone.pem")
            missing = await apns.send(APNS_TOKEN, NOTE, topic="")
        finally:
            await apns.close()
        assert ok.status == 200
        assert server.pushes()[0].has_client_cert
        assert "authorization" not in server.pushes()[0].headers
        assert (missing.status, missing.reason) == (403, "CertificateUnavailable")
    finally:
        await server.close()


async def test_fcm_oauth_and_send(pushserver: PushServer, settings: PushSettings) -> None:
    assert settings.fcm is not None
    fcm = FcmProvider(settings.fcm, settings)
    pushserver.script("fcm-dead-" + "y" * 20, ps.UNREGISTERED)
    pushserver.script("fcm-bad-" + "y" * 20, ps.BAD_TOKEN)
    pushserver.script("fcm-busy-" + "y" * 20, ps.THROTTLE)
    try:
        ok = await fcm.send(FCM_TOKEN, NOTE, topic="")
        again = await fcm.send(FCM_TOKEN, NOTE, topic="")
        dead = await fcm.send("fcm-dead-" + "y" * 20, NOTE, topic="")
        bad = await fcm.send("fcm-bad-" + "y" * 20, NOTE, topic="")
        busy = await fcm.send("fcm-busy-" + "y" * 20, NOTE, topic="")
    finally:
        await fcm.close()
    assert ok.status == 200 and ok.provider_id.startswith("projects/carewire-test/messages/")
    assert again.status == 200
    assert [r.path for r in pushserver.requests].count("/token") == 1  # the access token is reused
    assert (dead.status, dead.reason, fcm.classify(dead)) == (
        404,
        "UNREGISTERED",
        Decision.INVALID_TOKEN,
    )
    assert (bad.status, bad.reason, fcm.classify(bad)) == (
        400,
        "INVALID_ARGUMENT",
        Decision.INVALID_TOKEN,
    )
    assert (busy.status, busy.reason, fcm.classify(busy)) == (429, "QUOTA_EXCEEDED", Decision.RETRY)
    message = pushserver.pushes()[0].json()["message"]
    assert isinstance(message, dict)
    assert message["data"] == {"id": "op-1", "count": "2", "priority": "urgent"}
    assert message["android"] == {"priority": "HIGH", "ttl": "86400s", "collapse_key": "carewire"}


async def test_fcm_token_endpoint_timeout_is_a_retry(
    pushserver: PushServer, provider_keys: ProviderKeys, tmp_path: Path
) -> None:
    account = json.loads(provider_keys.service_account.read_text(encoding="utf-8"))
    account["token_uri"] = "https://127.0.0.1:9/token"  # nothing listens: the connection fails
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(account), encoding="utf-8")
    settings = push_settings(pushserver, provider_keys)
    from carewire.push.settings import FcmSettings

    fcm = FcmProvider(FcmSettings(service_account_file=broken, endpoint=pushserver.url), settings)
    try:
        outcome = await fcm.send(FCM_TOKEN, NOTE, topic="")
    finally:
        await fcm.close()
    assert outcome.status == 0 and fcm.classify(outcome) is Decision.RETRY
    assert pushserver.pushes() == []
