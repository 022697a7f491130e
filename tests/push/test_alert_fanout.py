"""An alert to many offline phones: one push per device, raised at once, each one tracked.

Scenario: 12 nurses' phones registered and enabled push, then went offline; one of
them had Disable Notification set by an administrator; a 13th nurse is online. One
Urgent alert goes to all 13 (the path a rule's Send Alert takes). Each offline phone
gets exactly one time-sensitive push without the alert's text, the disabled one none
(recorded as skipped), the online nurse gets the alert on her session and no push.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.adapters.xmpp.gateway import AlertRequest, ChatGateway
from carewire.core import hook_names as H
from carewire.core.events import StanzaEvent
from carewire.core.sessions import StreamManagement
from carewire.features.push import PushNotifier
from carewire.push.model import AttemptState
from tests.features.harness import DOMAIN, Harness
from tests.push.conftest import ProviderKeys, push_settings
from tests.push.pushserver import PushServer
from tests.push.test_feature import app, attempts, push_harness, register_and_enable

OFFLINE = [f"nurse{i:02d}" for i in range(12)]
DISABLED = OFFLINE[3]


def token(login: str) -> str:
    return f"{int(login.removeprefix('nurse')) + 1:064x}"


@pytest.fixture
async def h(
    tmp_path: Path, pushserver: PushServer, provider_keys: ProviderKeys
) -> AsyncIterator[Harness]:
    harness = await push_harness(tmp_path, push_settings(pushserver, provider_keys))
    yield harness
    await harness.close()


async def raise_alert(h: Harness, recipients: list[str], *, source: str = "NURSE_CALLS/7") -> None:
    assert h.platform is not None
    gateway = h.kernel.ctx.find(ChatGateway)  # type: ignore[type-abstract]
    assert gateway is not None
    delivery = await h.platform.datasets.create(
        "DELIVERIES", {"status": "Processing", "triggered_at": h.clock.now()}
    )
    await gateway.send_alert(
        AlertRequest(
            recipients=tuple(f"{u}@{DOMAIN}" for u in recipients),
            source=source,
            delivery_id=delivery.id,
            subject="Call",
            message="Bed 4 Jane Roe",
            ttl=10,
            priority="Urgent",
            accept=True,
        )
    )


async def test_one_alert_pushes_each_offline_device_once(
    h: Harness, pushserver: PushServer
) -> None:
    assert h.platform is not None
    await h.platform.datasets.create(
        "DEVICES",
        {
            "name": f"{DISABLED}/phone",
            "status": "Registered",
            "vendor": "XMPP",
            "push_enabled": False,
        },
    )
    for login in OFFLINE:
        session, _, _ = await register_and_enable(h, login, token=token(login))
        await h.unbind(session)
    online, online_sink = await h.login("nurse99", "desk")
    online_sink.take()
    notifier = h.kernel.ctx.find(PushNotifier)
    assert notifier is not None
    raised_early: list[set[str]] = []

    def on_stored(event: StanzaEvent) -> None:
        # Before the push feature sees the first copy stored, every offline phone's push
        # was already raised (when the alert was).
        if event.stanza.find("{urn:carewire:alert:0}alert") is not None and not raised_early:
            raised_early.extend(set(v) for v in notifier.pushed_alerts.values())

    h.kernel.hooks.on(H.MESSAGE_STORED, on_stored, priority=100)

    await raise_alert(h, [*OFFLINE, "nurse99"])
    await app(h).drain()

    pushes = pushserver.pushes()
    per_token = Counter(r.path.removeprefix("/3/device/") for r in pushes)
    expected = {token(u) for u in OFFLINE if u != DISABLED}
    assert set(per_token) == expected and set(per_token.values()) == {1}
    for request in pushes:
        assert request.headers["apns-priority"] == "10"
        assert request.json()["aps"]["interruption-level"] == "time-sensitive"  # type: ignore[index]
        assert b"Jane" not in request.body and b"Bed" not in request.body
    tracked = await attempts(h)
    states = Counter(a.state for a in tracked)
    assert states == {AttemptState.SENT: len(OFFLINE) - 1, AttemptState.SKIPPED: 1}
    (skipped,) = [a for a in tracked if a.state is AttemptState.SKIPPED]
    assert skipped.device == f"{DISABLED}/phone" and skipped.reason == "notifications disabled"
    assert len({a.opaque_id for a in tracked}) == len(OFFLINE)
    assert all(a.priority.value == "urgent" for a in tracked)
    assert raised_early == [set(OFFLINE)]
    assert [set(v) for v in notifier.pushed_alerts.values()] == [set()]  # each copy: no 2nd push
    got = [e for e in online_sink.take() if e.find("{urn:carewire:alert:0}alert") is not None]
    assert len(got) == 1  # the online nurse: the alert itself, and no push
    assert online.username not in {a.login for a in tracked}


async def test_the_next_alert_to_the_same_phone_is_pushed_again(
    h: Harness, pushserver: PushServer
) -> None:
    session, _, _ = await register_and_enable(h, "nurse00", token=token("nurse00"))
    await h.unbind(session)
    await raise_alert(h, ["nurse00"], source="NURSE_CALLS/7")
    await raise_alert(h, ["nurse00"], source="NURSE_CALLS/8")
    await app(h).drain()
    requests = pushserver.pushes()
    assert [r.json()["aps"]["badge"] for r in requests] == [1, 2]  # type: ignore[index]
    assert [a.state for a in await attempts(h)] == [AttemptState.SENT] * 2


async def test_a_detached_phone_is_pushed_once_when_the_alert_is_raised(
    h: Harness, pushserver: PushServer
) -> None:
    session, sink, _ = await register_and_enable(h, "nurse00", token=token("nurse00"))
    await h.send(session, "<presence/>")
    sink.take()
    session.sm = StreamManagement(max_unacked=100, resume_deadline=1e12)  # detached
    notifier = h.kernel.ctx.find(PushNotifier)
    assert notifier is not None
    await raise_alert(h, ["nurse00"])
    await app(h).drain()
    (request,) = pushserver.pushes()
    assert request.path == f"/3/device/{token('nurse00')}"
    assert [set(v) for v in notifier.pushed_alerts.values()] == [{"nurse00"}]
    assert any(
        e.find("{urn:carewire:alert:0}alert") is not None for e in session.sm.unacked
    )  # the alert itself waits for the session's resumption
    assert [a.state for a in await attempts(h)] == [AttemptState.SENT]
