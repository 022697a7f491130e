"""Web Push on the in-process server, pushing to the local push service stand-in.

Scenario: a clinician's web client asks for the VAPID key, subscribes its
browser, closes the tab; an alert for the clinician becomes one encrypted
push at the push service with ``Urgency: high`` — which the browser's keys
decrypt to "alert", a count and an opaque id, and nothing else. A push
service answering 410 ends the subscription; unsubscribing ends it too.
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.sessions import StreamManagement
from carewire.features.webpush import NS
from carewire.push.model import AttemptState
from carewire.push.records import Attempt
from carewire.push.settings import PushSettings, WebPushSettings
from carewire.push.webpush import MAX_PER_ACCOUNT, WebPushService
from tests.features.harness import Harness, error_condition
from tests.push.test_alert_fanout import raise_alert
from tests.push.test_feature import PHI, message, push_harness
from tests.push.webpushserver import Browser, WebPushServer, unb64url

SUBJECT = "mailto:ops@hospital.example"


def webpush_settings(tmp_path: Path, server: WebPushServer, **web: object) -> PushSettings:
    values: dict[str, object] = {
        "key_file": tmp_path / "keys" / "vapid.pem",
        "subject": SUBJECT,
        "allow_loopback": True,
    }
    values.update(web)
    return PushSettings(
        webpush=WebPushSettings(**values),  # type: ignore[arg-type]
        ca_file=server.cert_file,
        timeout=2.0,
        max_attempts=3,
        retry_base=0.01,
        retry_cap=0.05,
    )


@pytest.fixture
async def service_stub(tmp_path: Path) -> AsyncIterator[WebPushServer]:
    server = WebPushServer(folder=tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def h(tmp_path: Path, service_stub: WebPushServer) -> AsyncIterator[Harness]:
    harness = await push_harness(tmp_path, webpush_settings(tmp_path, service_stub))
    yield harness
    await harness.close()


def web(h: Harness) -> WebPushService:
    assert h.platform is not None and h.platform.webpush is not None
    return h.platform.webpush


def subscribe_iq(endpoint: str, p256dh: str, auth: str) -> str:
    return (
        f"<iq type='set' id='s1'><subscribe xmlns='{NS}' endpoint='{endpoint}'"
        f" p256dh='{p256dh}' auth='{auth}'/></iq>"
    )


def error_text(reply: Element) -> str:
    return reply.findtext(".//{urn:ietf:params:xml:ns:xmpp-stanzas}text") or ""


async def vapid_key(h: Harness, login: str) -> str:
    reply = await h.ask(login, f"<iq type='get' id='v1'><vapid xmlns='{NS}'/></iq>")
    assert reply.get("type") == "result", error_condition(reply)
    found = reply.find(f"{{{NS}}}vapid")
    assert found is not None
    return found.get("key", "")


async def subscribe(
    h: Harness, stub: WebPushServer, login: str, browser: Browser, endpoint: str | None = None
) -> str:
    """The web client's steps: the VAPID key, the browser subscribes, the server is told."""
    stub.application_server_key = unb64url(await vapid_key(h, login))
    endpoint = endpoint or stub.endpoint()
    session, sink = await h.bind(login, "web")
    await h.send(session, subscribe_iq(endpoint, browser.p256dh, browser.auth_b64))
    (reply,) = sink.take()
    assert reply.get("type") == "result", error_text(reply)
    await h.unbind(session)  # the tab is closed
    return endpoint


async def test_the_vapid_key_is_a_p256_key_of_the_data_directory(
    h: Harness, tmp_path: Path
) -> None:
    key = unb64url(await vapid_key(h, "nurse"))
    assert len(key) == 65 and key[0] == 4
    key_file = tmp_path / "keys" / "vapid.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert web(h).public_key == await vapid_key(h, "doctor")  # one key for every account
    info = await h.ask(
        "nurse",
        f"<iq type='get' id='d1' to='nurse@{h.domain}'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    assert NS in {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}


#: (endpoint, p256dh, auth, text of the error); None: the well-formed value.
MALFORMED: list[tuple[str | None, str | None, str | None, str]] = [
    ("http://127.0.0.1/push/x", None, None, "the endpoint must be an https:// URL"),
    ("https://10.1.2.3/push/x", None, None, "may not be a private or reserved address"),
    ("not a url", None, None, "the endpoint must be an https:// URL"),
    (None, "BAAA", None, "p256dh must be an uncompressed P-256 public key"),
    (None, "@@@", None, "p256dh must be an uncompressed P-256 public key"),
    (None, None, "AAAAAAAAAAAAAAAAAAAA", "auth must be a 16-byte secret"),
    (None, None, "", "subscribe: 'auth' is required"),
]


async def test_malformed_subscriptions_get_clear_errors(
    h: Harness, service_stub: WebPushServer
) -> None:
    browser = Browser()
    for endpoint, p256dh, auth, text in MALFORMED:
        reply = await h.ask(
            "nurse",
            subscribe_iq(
                service_stub.endpoint() if endpoint is None else endpoint,
                browser.p256dh if p256dh is None else p256dh,
                browser.auth_b64 if auth is None else auth,
            ),
        )
        assert reply.get("type") == "error"
        assert error_condition(reply) == "bad-request"
        assert text in error_text(reply), (endpoint, p256dh, auth)
    assert await web(h).subscriptions("nurse") == []


async def test_unknown_push_service_hosts_are_refused_when_listed(
    tmp_path: Path, service_stub: WebPushServer
) -> None:
    settings = webpush_settings(tmp_path, service_stub, hosts=("*.push.example",))
    harness = await push_harness(tmp_path, settings)
    try:
        browser = Browser()
        reply = await harness.ask(
            "nurse", subscribe_iq(service_stub.endpoint(), browser.p256dh, browser.auth_b64)
        )
        assert error_condition(reply) == "bad-request"
        assert "is not allowed here (push.webpush_hosts)" in error_text(reply)
    finally:
        await harness.close()


async def test_an_offline_alert_is_one_encrypted_urgent_push_without_phi(
    h: Harness, service_stub: WebPushServer
) -> None:
    browser = Browser()
    endpoint = await subscribe(h, service_stub, "nurse", browser)
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    (push,) = service_stub.received
    assert push.problems == () and push.status == 201
    assert push.path == endpoint.removeprefix(service_stub.origin)
    assert push.headers["urgency"] == "high"
    assert push.headers["topic"] == "carewire-alert"
    assert int(push.headers["ttl"]) > 0
    assert push.claims["sub"] == SUBJECT
    plain = browser.decrypt(push.body)
    data = json.loads(plain)
    assert data == {"type": "alert", "count": 1, "id": data["id"]}
    for word in ("Jane", "Roe", "Bed", "Call", "nurse"):
        assert word.encode() not in plain
    assert b"Jane" not in push.body
    assert all("Jane" not in v for v in push.headers.values())
    (attempt,) = await web_attempts(h)
    assert (attempt.state, attempt.status, attempt.tries) == (AttemptState.SENT, 201, 1)
    assert attempt.service == "webpush" and attempt.login == "nurse"


async def web_attempts(h: Harness) -> list[Attempt]:
    assert h.platform is not None and h.platform.push is not None
    await web(h).drain()
    return [a for a in await h.platform.push.store.attempts() if a.service == "webpush"]


async def test_a_message_is_a_normal_push_and_the_count_grows(
    h: Harness, service_stub: WebPushServer
) -> None:
    browser = Browser()
    await subscribe(h, service_stub, "nurse", browser)
    await message(h, "nurse")
    await message(h, "nurse", body="second")
    await web(h).drain()
    pushes = service_stub.received
    assert [p.headers["urgency"] for p in pushes] == ["normal", "normal"]
    bodies = [json.loads(browser.decrypt(p.body)) for p in pushes]
    # Two pushes in flight side by side may arrive in either order.
    assert sorted((b["type"], b["count"]) for b in bodies) == [("message", 1), ("message", 2)]
    for p in pushes:  # the message's text (PHI) is not in the push; digits may be in the id
        assert all(w.encode() not in browser.decrypt(p.body) for w in PHI.split() if w.isalpha())


async def test_a_user_reading_now_gets_no_push(h: Harness, service_stub: WebPushServer) -> None:
    await subscribe(h, service_stub, "nurse", Browser())
    await h.login("nurse", "desk")  # the web client is open again
    await message(h, "nurse")
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert service_stub.received == []


async def test_gone_deletes_the_subscription(h: Harness, service_stub: WebPushServer) -> None:
    endpoint = await subscribe(h, service_stub, "nurse", Browser())
    service_stub.script(endpoint, 410)
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert [p.status for p in service_stub.received] == [410]
    assert await web(h).subscriptions("nurse") == []
    (attempt,) = await web_attempts(h)
    assert attempt.state is AttemptState.REJECTED
    await message(h, "nurse")
    await web(h).drain()
    assert len(service_stub.received) == 1  # nothing more is sent there


async def test_throttled_and_failing_push_services_are_retried(
    h: Harness, service_stub: WebPushServer
) -> None:
    endpoint = await subscribe(h, service_stub, "nurse", Browser())
    service_stub.script(endpoint, 429, 503, 201)
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert [p.status for p in service_stub.received] == [429, 503, 201]
    (attempt,) = await web_attempts(h)
    assert (attempt.state, attempt.tries) == (AttemptState.SENT, 3)
    assert [s.endpoint for s in await web(h).subscriptions("nurse")] == [endpoint]


async def test_retries_end_after_max_attempts(h: Harness, service_stub: WebPushServer) -> None:
    endpoint = await subscribe(h, service_stub, "nurse", Browser())
    service_stub.script(endpoint, 500)
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert [p.status for p in service_stub.received] == [500, 500, 500]
    (attempt,) = await web_attempts(h)
    assert attempt.state is AttemptState.FAILED


async def test_unsubscribe_ends_the_pushes(h: Harness, service_stub: WebPushServer) -> None:
    endpoint = await subscribe(h, service_stub, "nurse", Browser())
    reply = await h.ask(
        "nurse", f"<iq type='set' id='u1'><unsubscribe xmlns='{NS}' endpoint='{endpoint}'/></iq>"
    )
    assert reply.get("type") == "result", error_text(reply)
    again = await h.ask(
        "nurse", f"<iq type='set' id='u2'><unsubscribe xmlns='{NS}' endpoint='{endpoint}'/></iq>"
    )
    assert error_condition(again) == "item-not-found"
    assert error_text(again) == "no such subscription"
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert service_stub.received == []


async def test_a_browser_subscribing_for_another_clinician_leaves_the_first(
    h: Harness, service_stub: WebPushServer
) -> None:
    """A shared workstation: the same browser subscription now belongs to the second user."""
    browser = Browser()
    endpoint = await subscribe(h, service_stub, "nurse", browser)
    await subscribe(h, service_stub, "doctor", browser, endpoint=endpoint)
    assert await web(h).subscriptions("nurse") == []
    (sub,) = await web(h).subscriptions("doctor")
    assert (sub.endpoint, sub.p256dh, sub.auth) == (endpoint, browser.public, browser.auth)
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert service_stub.received == []


async def test_subscriptions_are_sealed_at_rest(h: Harness, service_stub: WebPushServer) -> None:
    browser = Browser()
    endpoint = await subscribe(h, service_stub, "nurse", browser)
    async with h.db.read("peek") as conn:
        rows = (await conn.exec_driver_sql("SELECT * FROM webpush_subscriptions")).all()
    (row,) = rows
    stored = " ".join(str(v) for v in row)
    assert endpoint not in stored and browser.p256dh not in stored
    assert browser.auth_b64 not in stored and "cw1:" in stored


async def test_without_web_push_the_namespace_says_so(
    tmp_path: Path, service_stub: WebPushServer
) -> None:
    harness = await push_harness(tmp_path, PushSettings())
    try:
        reply = await harness.ask("nurse", f"<iq type='get' id='v'><vapid xmlns='{NS}'/></iq>")
        assert error_condition(reply) == "service-unavailable"
        assert error_text(reply) == "web push is not enabled on this server"
    finally:
        await harness.close()


async def test_an_account_keeps_its_ten_newest_browsers(
    h: Harness, service_stub: WebPushServer
) -> None:
    await h.account("nurse")
    browser = Browser()
    endpoints = [service_stub.endpoint(f"b{i}") for i in range(MAX_PER_ACCOUNT + 1)]
    for endpoint in endpoints:
        await web(h).subscribe(
            "nurse", endpoint=endpoint, p256dh=browser.p256dh, auth=browser.auth_b64
        )
    kept = [s.endpoint for s in await web(h).subscriptions("nurse")]
    assert kept == endpoints[1:]


async def test_a_user_whose_only_session_is_detached_is_pushed(
    h: Harness, service_stub: WebPushServer
) -> None:
    await subscribe(h, service_stub, "nurse", Browser())
    session, _ = await h.login("nurse", "phone")
    session.sm = StreamManagement(max_unacked=10, resume_deadline=1e12)  # waits for resumption
    await raise_alert(h, ["nurse"])
    await web(h).drain()
    assert [p.headers["urgency"] for p in service_stub.received] == ["high"]
