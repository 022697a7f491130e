"""Web Push's pure parts: subscriptions checked, headers, answers, VAPID tokens, encryption."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec

from carewire.errors import ConfigError, ValidationError
from carewire.push import vapid
from carewire.push.model import Decision, Notification, Outcome, PushPriority
from carewire.push.webpush import encrypt
from carewire.push.webpush_model import (
    VAPID_LIFETIME,
    WebKind,
    b64url_decode,
    check_subscription,
    classify_webpush,
    origin,
    push_headers,
    vapid_claims,
    web_payload,
)
from tests.push.webpushserver import Browser, _verify_vapid, unb64url

#: Fixed keys: parametrized ids must be the same in every pytest-xdist worker.
BROWSER = Browser(key=ec.derive_private_key(0xC0FFEE, ec.SECP256R1()), auth=bytes(range(16)))
NOTE = Notification(count=3, priority=PushPriority.URGENT, opaque_id="ab" * 16)


def check(endpoint: str, *, hosts: tuple[str, ...] = (), loopback: bool = False) -> str:
    url, _, _ = check_subscription(
        endpoint, BROWSER.p256dh, BROWSER.auth_b64, hosts=hosts, allow_loopback=loopback
    )
    return url


def test_a_browser_subscription_is_accepted() -> None:
    url, key, auth = check_subscription(
        "https://fcm.googleapis.com/fcm/send/abc:def",
        BROWSER.p256dh,
        BROWSER.auth_b64 + "==",  # padding is tolerated
        hosts=(),
        allow_loopback=False,
    )
    assert (url, key, auth) == (
        "https://fcm.googleapis.com/fcm/send/abc:def",
        BROWSER.public,
        BROWSER.auth,
    )


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("", "the endpoint must be 1 to 2048 characters"),
        ("https://push.example/" + "x" * 2048, "the endpoint must be 1 to 2048 characters"),
        ("http://push.example/x", "must be an https:// URL"),
        ("ftp://push.example/x", "must be an https:// URL"),
        ("https:///x", "must be an https:// URL"),
        ("https://push.example:99999/x", "the endpoint is not a URL"),
        ("https://user:pw@push.example/x", "may not carry credentials"),
        ("https://push.example/x#frag", "may not carry credentials or a fragment"),
        ("https://127.0.0.1/x", "may not be a loopback address"),
        ("https://localhost/x", "may not be a loopback address"),
        ("https://[::1]/x", "may not be a loopback address"),
        ("https://192.168.1.10/x", "may not be a private or reserved address"),
        ("https://169.254.169.254/latest", "may not be a private or reserved address"),
        ("https://[fd00::1]/x", "may not be a private or reserved address"),
    ],
)
def test_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        check(endpoint)
    assert caught.value.code == "bad-endpoint"


def test_loopback_and_host_lists() -> None:
    assert check("https://127.0.0.1:8443/push/1", loopback=True)
    hosts = ("fcm.googleapis.com", "*.push.services.mozilla.com")
    assert check("https://fcm.googleapis.com/x", hosts=hosts)
    assert check("https://updates.push.services.mozilla.com/wpush/v2/x", hosts=hosts)
    assert check("https://push.services.mozilla.com/x", hosts=hosts)
    for refused in ("https://evil.example/x", "https://xpush.services.mozilla.com/x"):
        with pytest.raises(ValidationError, match="is not allowed here"):
            check(refused, hosts=hosts)


@pytest.mark.parametrize(
    ("p256dh", "auth", "message"),
    [
        ("", BROWSER.auth_b64, "p256dh must be"),
        ("not base64!", BROWSER.auth_b64, "p256dh must be"),
        (BROWSER.p256dh[:-4], BROWSER.auth_b64, "p256dh must be"),  # 62 bytes
        ("BA" + "A" * 85, BROWSER.auth_b64, "p256dh must be"),  # 65 bytes, not on the curve
        ("Aw" + BROWSER.p256dh[2:], BROWSER.auth_b64, "p256dh must be"),  # not uncompressed
        (BROWSER.p256dh, "", "auth must be a 16-byte secret"),
        (BROWSER.p256dh, BROWSER.auth_b64 + "AA", "auth must be a 16-byte secret"),
        (BROWSER.p256dh, "*" * 22, "auth must be a 16-byte secret"),
    ],
)
def test_bad_keys(p256dh: str, auth: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        check_subscription("https://push.example/x", p256dh, auth, hosts=(), allow_loopback=False)
    assert caught.value.code == "bad-key"


def test_b64url_decode() -> None:
    assert b64url_decode("AQI") == b"\x01\x02"
    assert b64url_decode("AQI=") == b"\x01\x02"
    for bad in ("", "A+B/", "A B"):
        with pytest.raises(ValueError):
            b64url_decode(bad)


def test_headers_payload_and_claims() -> None:
    alert = push_headers(WebKind.ALERT, NOTE, ttl=600)
    assert (alert["ttl"], alert["urgency"], alert["topic"]) == ("600", "high", "carewire-alert")
    assert alert["content-encoding"] == "aes128gcm"
    normal = Notification(count=1, priority=PushPriority.NORMAL, opaque_id="x")
    assert push_headers(WebKind.MESSAGE, normal, ttl=0)["urgency"] == "normal"
    assert push_headers(WebKind.MESSAGE, NOTE, ttl=0)["urgency"] == "high"  # an urgent one
    assert json.loads(web_payload(WebKind.ALERT, NOTE)) == {
        "type": "alert",
        "count": 3,
        "id": NOTE.opaque_id,
    }
    assert origin("https://push.example:8443/a/b?c") == "https://push.example:8443"
    claims = vapid_claims("https://push.example/a", subject="mailto:x@y", now=1000)
    assert claims == {
        "aud": "https://push.example",
        "exp": 1000 + VAPID_LIFETIME,
        "sub": "mailto:x@y",
    }
    assert VAPID_LIFETIME <= 24 * 3600


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (201, Decision.DELIVERED),
        (200, Decision.DELIVERED),
        (0, Decision.RETRY),
        (429, Decision.RETRY),
        (500, Decision.RETRY),
        (503, Decision.RETRY),
        (404, Decision.INVALID_TOKEN),
        (410, Decision.INVALID_TOKEN),
        (401, Decision.PROVIDER_AUTH),
        (403, Decision.PROVIDER_AUTH),
        (400, Decision.GIVE_UP),
        (413, Decision.GIVE_UP),
    ],
)
def test_classify(status: int, decision: Decision) -> None:
    assert classify_webpush(Outcome(status=status)) is decision


def test_the_vapid_key_file_and_token(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vapid.pem"
    key = vapid.load_vapid_key(path)  # made when missing
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = vapid.load_vapid_key(path)
    assert vapid.public_key(again) == vapid.public_key(key)  # kept, not replaced
    header = vapid.authorization(
        key, "https://127.0.0.1:9/push/x", subject="mailto:a@b", now=int(time.time())
    )
    problems, claims = _verify_vapid(header, unb64url(vapid.public_key(key)), "https://127.0.0.1:9")
    assert problems == [] and claims["sub"] == "mailto:a@b"
    other = vapid.public_key(vapid.load_vapid_key(tmp_path / "other.pem"))
    problems, _ = _verify_vapid(header, unb64url(other), "https://127.0.0.1:9")
    assert "the ES256 signature does not verify with the application server key" in problems


def test_a_vapid_key_file_that_is_not_p256_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vapid.pem"
    path.write_bytes(b"not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM private key"):
        vapid.load_vapid_key(path)


def test_encryption_round_trip_with_an_independent_decryption() -> None:
    payload = web_payload(WebKind.MESSAGE, NOTE)
    body = encrypt(payload, BROWSER.public, BROWSER.auth)
    assert BROWSER.decrypt(body) == payload
    assert encrypt(payload, BROWSER.public, BROWSER.auth) != body  # a fresh key and salt each
    with pytest.raises(InvalidTag):
        Browser().decrypt(body)  # for another browser: does not decrypt
