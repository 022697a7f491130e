"""XEP-0357 on the in-process server, pushing to the local APNs/FCM server.

Scenario: a nurse's phone registers its token with push.DOMAIN, enables push
on its account, goes away; a message for the nurse becomes a push at the
provider — with a count, a priority and an opaque id, and nothing else.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.assembly import Options, assemble
from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.core.sessions import Session, StreamManagement
from carewire.features.csi import CSI_STATE
from carewire.features.push import stanzas as ps
from carewire.push.appserver import PushAppServer
from carewire.push.model import AttemptState, PushService, RegistrationState
from carewire.push.records import Attempt
from carewire.push.settings import PushSettings
from tests.features.harness import DOMAIN, Harness, RecordingSink, error_condition
from tests.hashing import CHEAP_HASHER
from tests.push import pushserver as fx
from tests.push.conftest import APNS_TOKEN, FCM_TOKEN, ProviderKeys, push_settings
from tests.push.pushserver import PushServer
from tests.templates import prefill

PUSH_JID = f"push.{DOMAIN}"
PHI = "Bed 12 Jane Roe BP 80/40"


async def push_harness(tmp_path: Path, settings: PushSettings) -> Harness:
    """The whole server, assembled as ``carewire serve`` does, with push at the fixture."""
    url = await prefill(f"sqlite+aiosqlite:///{tmp_path / 'carewire.db'}")
    options = Options(
        url=url, domain=DOMAIN, clock=FakeClock(), secret_hasher=CHEAP_HASHER, push=settings
    )
    platform = await assemble(options)
    try:
        await platform.ensure_default_adapters(DOMAIN)
        platform.load_features()
        await platform.start(scheduler=False)
    except BaseException:
        await platform.close()
        raise
    await platform.kernel.hooks.fire(H.SERVER_STARTED, None)
    return Harness(platform.kernel, platform.db, platform)


@pytest.fixture
async def h(tmp_path: Path, settings: PushSettings) -> AsyncIterator[Harness]:
    harness = await push_harness(tmp_path, settings)
    yield harness
    await harness.close()


def app(h: Harness) -> PushAppServer:
    assert h.platform is not None and h.platform.push is not None
    return h.platform.push


def command(node: str, fields: dict[str, str] | None = None) -> str:
    form = ""
    if fields is not None:
        form = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
        form = f"<x xmlns='jabber:x:data' type='submit'>{form}</x>"
    return (
        f"<iq type='set' id='c1' to='{PUSH_JID}'>"
        f"<command xmlns='{ps.COMMANDS}' node='{node}' action='execute'>{form}</command></iq>"
    )


def enable(node: str, secret: str, jid: str = PUSH_JID) -> str:
    return (
        f"<iq type='set' id='e1'><enable xmlns='{ps.PUSH}' jid='{jid}' node='{node}'>"
        "<x xmlns='jabber:x:data' type='submit'>"
        f"<field var='FORM_TYPE'><value>{ps.PUBLISH_OPTIONS}</value></field>"
        f"<field var='secret'><value>{secret}</value></field></x></enable></iq>"
    )


def result_fields(reply: Element) -> dict[str, str]:
    assert reply.get("type") == "result", reply.attrib
    cmd = reply.find(ps.COMMAND)
    assert cmd is not None and cmd.get("status") == "completed"
    x = cmd.find(ps.X)
    assert x is not None
    return ps.form_values(x)


async def register_and_enable(
    h: Harness,
    login: str,
    resource: str = "phone",
    *,
    service: str = "apns",
    token: str = APNS_TOKEN,
) -> tuple[Session, RecordingSink, str]:
    """A device registers with push.DOMAIN and enables push; its session, sink and node."""
    session, sink = await h.bind(login, resource)
    await h.send(session, command(f"register-push-{service}", {"token": token}))
    (reply,) = sink.take()
    fields = result_fields(reply)
    assert fields["jid"] == PUSH_JID
    await h.send(session, enable(fields["node"], fields["secret"]))
    (ok,) = sink.take()
    assert ok.get("type") == "result", error_condition(ok)
    return session, sink, fields["node"]


async def message(h: Harness, to: str, *, body: str = PHI, extra: str = "") -> None:
    sender, _ = await h.login("doctor", "desk")
    await h.send(
        sender,
        f"<message type='chat' to='{to}@{DOMAIN}' id='m1'><body>{body}</body>{extra}</message>",
    )


async def attempts(h: Harness) -> list[Attempt]:
    await app(h).drain()
    return list(await app(h).store.attempts())


async def test_offline_message_becomes_a_push_without_phi(
    h: Harness, pushserver: PushServer
) -> None:
    session, _, node = await register_and_enable(h, "nurse")
    await h.unbind(session)
    await message(h, "nurse")
    (request,) = await pushserver.wait_for(1)
    assert request.path == f"/3/device/{APNS_TOKEN}"
    for secret_word in ("Jane", "Roe", "80/40", "doctor", "nurse", node):
        assert secret_word.encode() not in request.body
        assert all(secret_word not in v for v in request.headers.values() if v != request.path)
    body = request.json()
    assert body["carewire"] == {
        "id": body["carewire"]["id"],  # type: ignore[index]
        "count": 1,
        "priority": "normal",
    }
    (attempt,) = await attempts(h)
    assert (attempt.state, attempt.status, attempt.reason) == (AttemptState.SENT, 200, "")
    assert re.fullmatch(r"[0-9A-F-]{36}", attempt.provider_id)  # the apns-id APNs answered
    assert attempt.tries == 1 and attempt.device == "nurse/phone"


async def test_count_grows_until_the_device_is_back(h: Harness, pushserver: PushServer) -> None:
    session, _, _ = await register_and_enable(h, "nurse")
    await h.unbind(session)
    await message(h, "nurse")
    await message(h, "nurse")
    requests = await pushserver.wait_for(2)
    assert [r.json()["aps"]["badge"] for r in requests] == [1, 2]  # type: ignore[index]
    await h.login("nurse", "phone")  # available again: the count starts over
    back, _ = await h.bind("nurse", "phone")
    await h.unbind(back)
    await message(h, "nurse")
    third = (await pushserver.wait_for(3))[2]
    assert third.json()["aps"]["badge"] == 1  # type: ignore[index]


async def test_urgent_alert_asks_for_time_sensitive_delivery(
    h: Harness, pushserver: PushServer
) -> None:
    session, _, _ = await register_and_enable(h, "nurse", service="fcm", token=FCM_TOKEN)
    await h.unbind(session)
    alert = "<alert xmlns='urn:carewire:alert:0' id='a1' priority='urgent'/>"
    await message(h, "nurse", extra=alert)
    (request,) = await pushserver.wait_for(1)
    sent = request.json()["message"]
    assert isinstance(sent, dict)
    assert sent["android"]["priority"] == "HIGH" and sent["data"]["priority"] == "urgent"


async def test_detached_and_inactive_sessions_are_pushed(
    h: Harness, pushserver: PushServer
) -> None:
    session, sink, _ = await register_and_enable(h, "nurse")
    await h.send(session, "<presence/>")
    sink.take()
    await message(h, "nurse")  # available and active: no push
    session.data[CSI_STATE] = "inactive"
    await message(h, "nurse")
    session.data[CSI_STATE] = "active"
    session.sm = StreamManagement(max_unacked=10, resume_deadline=1e12)  # detached
    await message(h, "nurse")
    await app(h).drain()
    assert len(pushserver.pushes()) == 2
    written = [e for e in sink.take() if e.find("{jabber:client}body") is not None]
    assert len(written) == 2 and len(session.sm.unacked) == 1  # the third waits for resumption


async def test_disable_notification_is_honoured(h: Harness, pushserver: PushServer) -> None:
    assert h.platform is not None
    datasets = h.platform.datasets
    device = await datasets.create(
        "DEVICES",
        {"name": "nurse/phone", "status": "Registered", "vendor": "XMPP", "push_enabled": False},
    )
    session, _, _ = await register_and_enable(h, "nurse")
    await h.unbind(session)
    await message(h, "nurse")
    (skipped,) = await attempts(h)
    assert (skipped.state, skipped.reason, skipped.tries) == (
        AttemptState.SKIPPED,
        "notifications disabled",
        0,
    )
    assert pushserver.pushes() == []
    await datasets.update("DEVICES", device.id, {"push_enabled": True})  # Enable Notification
    await message(h, "nurse")
    sent, _ = await attempts(h)
    assert sent.state is AttemptState.SENT and len(pushserver.pushes()) == 1


async def test_rejected_token_is_marked_and_never_retried(
    h: Harness, pushserver: PushServer
) -> None:
    pushserver.script(APNS_TOKEN, fx.UNREGISTERED)
    session, _, node = await register_and_enable(h, "nurse")
    other, _, _ = await register_and_enable(h, "porter", token="c3" * 32)
    await h.unbind(session)
    await h.unbind(other)
    await message(h, "nurse")
    await message(h, "porter")
    rejected, sent = sorted(await attempts(h), key=lambda a: a.login)
    assert (rejected.state, rejected.status, rejected.reason) == (
        AttemptState.REJECTED,
        410,
        "Unregistered",
    )
    assert sent.state is AttemptState.SENT  # the other device is untouched
    (reg,) = await app(h).store.registrations_of("nurse")
    assert reg.state is RegistrationState.INVALID and reg.reason == "Unregistered"
    assert await app(h).store.enables() != [] and all(
        e.node != node for e in await app(h).store.enables()
    )
    await message(h, "nurse")  # the node is disabled: nothing more is tried
    await app(h).drain()
    assert [r.path for r in pushserver.pushes()].count(f"/3/device/{APNS_TOKEN}") == 1
    phone, sink = await h.bind("nurse", "tablet")
    dead, secret = await app(h).register("nurse", "tablet", service="apns", token="e5" * 32)
    await app(h).store.mark_registration(
        dead.id, RegistrationState.INVALID, "Unregistered", h.clock.now()
    )
    await h.send(phone, enable(dead.node, secret))  # a rejected token cannot be enabled
    (refused,) = sink.take()
    assert error_condition(refused) == "not-acceptable"
    assert "register again" in ET.tostring(refused, encoding="unicode")


async def test_a_new_token_replaces_the_device_registration(
    h: Harness, pushserver: PushServer
) -> None:
    await register_and_enable(h, "nurse", token="d4" * 32)
    session, _, node = await register_and_enable(h, "nurse")  # the app's token changed
    (reg,) = await app(h).store.registrations_of("nurse")
    assert reg.node == node
    assert [e.node for e in await app(h).store.enables()] == [node]
    await h.unbind(session)
    await message(h, "nurse")
    (request,) = await pushserver.wait_for(1)
    await app(h).drain()
    assert request.path == f"/3/device/{APNS_TOKEN}" and len(pushserver.pushes()) == 1


async def test_server_errors_are_retried_with_back_off(h: Harness, pushserver: PushServer) -> None:
    pushserver.script(APNS_TOKEN, fx.UNAVAILABLE, fx.THROTTLE, fx.OK)
    session, _, _ = await register_and_enable(h, "nurse")
    await h.unbind(session)
    await message(h, "nurse")
    (attempt,) = await attempts(h)
    assert (attempt.state, attempt.tries, attempt.status) == (AttemptState.SENT, 3, 200)
    gaps = [b.at - a.at for a, b in zip(pushserver.pushes(), pushserver.pushes()[1:], strict=False)]
    assert all(g >= 0.005 for g in gaps)  # back-off (retry_base 0.01 s, half of it at least)


async def test_timeouts_give_up_after_max_attempts(
    tmp_path: Path, pushserver: PushServer, provider_keys: ProviderKeys
) -> None:
    settings = push_settings(pushserver, provider_keys, timeout=0.2, max_attempts=2)
    h = await push_harness(tmp_path, settings)
    try:
        pushserver.script(APNS_TOKEN, fx.HANG)
        session, _, _ = await register_and_enable(h, "nurse")
        other, _, _ = await register_and_enable(h, "porter", token="c3" * 32)
        await h.unbind(session)
        await h.unbind(other)
        await message(h, "nurse")
        await message(h, "porter")
        failed, sent = sorted(await attempts(h), key=lambda a: a.login)
        assert (failed.state, failed.tries, failed.status, failed.reason) == (
            AttemptState.FAILED,
            2,
            None,
            "TimeoutError",
        )
        assert sent.state is AttemptState.SENT
    finally:
        await h.close()


async def test_registration_errors(h: Harness) -> None:
    session, sink = await h.bind("nurse", "phone")
    cases = [
        (
            command("register-push-gcm", {"token": APNS_TOKEN}),
            "item-not-found",
            "unknown push service 'gcm'",
        ),
        (
            command("register-push-apns", {"token": "not-hex"}),
            "bad-request",
            "malformed apns device token",
        ),
        (command("register-push-fcm", {"token": "x"}), "bad-request", "malformed fcm device token"),
        (command("register-push-apns", {}), "bad-request", "malformed apns device token"),
        (command("unregister-push", {"node": "nope"}), "item-not-found", "no such registration"),
        (enable("nope", "bad"), "not-acceptable", "unknown node or wrong secret"),
        (
            enable("n", "s", jid="push.elsewhere.example"),
            "not-acceptable",
            "push notifications go only to",
        ),
        (
            f"<iq type='set' id='d'><enable xmlns='{ps.PUSH}' node='n'/></iq>",
            "bad-request",
            "'jid' attribute",
        ),
        (
            f"<iq type='set' id='d'><disable xmlns='{ps.PUSH}' jid='a@@b'/></iq>",
            "jid-malformed",
            "malformed",
        ),
    ]
    for xml, condition, text in cases:
        await h.send(session, xml)
        (reply,) = sink.take()
        assert error_condition(reply) == condition, xml
        err_text = reply.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}text")
        assert err_text is not None and text in (err_text.text or ""), xml
    assert await app(h).store.registrations_of("nurse") == []
    assert sink.closed is None and not session.is_closed  # errors, not stream errors


async def test_a_client_cannot_publish(h: Harness) -> None:
    session, sink, node = await register_and_enable(h, "nurse")
    await h.send(
        session,
        f"<iq type='set' id='p' to='{PUSH_JID}'><pubsub xmlns='{ps.PUBSUB}'>"
        f"<publish node='{node}'/></pubsub></iq>",
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "forbidden"


async def test_disco_and_command_list(h: Harness) -> None:
    session, sink = await h.bind("nurse", "phone")
    await h.send(
        session, "<iq type='get' id='i'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    )
    (own,) = sink.take()
    assert ps.PUSH in {
        f.get("var") for f in own.iter("{http://jabber.org/protocol/disco#info}feature")
    }
    await h.send(
        session,
        f"<iq type='get' id='j' to='{PUSH_JID}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    (info,) = sink.take()
    identity = info.find(".//{http://jabber.org/protocol/disco#info}identity")
    assert identity is not None and (identity.get("category"), identity.get("type")) == (
        "pubsub",
        "push",
    )
    await h.send(
        session,
        f"<iq type='get' id='k' to='{PUSH_JID}'><query xmlns='http://jabber.org/protocol/disco#items'"
        f" node='{ps.COMMANDS}'/></iq>",
    )
    (items,) = sink.take()
    nodes = [i.get("node") for i in items.iter("{http://jabber.org/protocol/disco#items}item")]
    assert nodes == ["register-push-apns", "register-push-fcm", "unregister-push"]
    await h.send(session, command("register-push-apns"))
    (form,) = sink.take()
    cmd = form.find(ps.COMMAND)
    assert cmd is not None and cmd.get("status") == "executing"


async def test_disable_and_unregister_are_audited(h: Harness, pushserver: PushServer) -> None:
    session, sink, node = await register_and_enable(h, "nurse")
    await h.send(
        session, f"<iq type='set' id='d'><disable xmlns='{ps.PUSH}' jid='{PUSH_JID}'/></iq>"
    )
    (ok,) = sink.take()
    assert ok.get("type") == "result"
    await h.send(session, command("unregister-push", {"node": node}))
    assert result_fields(sink.take()[0]) == {}
    await h.unbind(session)
    await message(h, "nurse")
    await app(h).drain()
    assert pushserver.pushes() == []
    assert h.platform is not None
    entries, _ = await h.platform.audit.store.entries(limit=100)
    actions = [e.event.action for e in entries if e.event.action.startswith("push.")]
    assert sorted(actions) == ["push.disable", "push.enable", "push.register", "push.unregister"]
    assert all(APNS_TOKEN not in str(e.event.details) for e in entries)


async def test_refused_credentials_mark_the_provider_unhealthy(
    tmp_path: Path, pushserver: PushServer, provider_keys: ProviderKeys
) -> None:
    from dataclasses import replace

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    wrong = tmp_path / "wrong.p8"
    wrong.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    settings = push_settings(pushserver, provider_keys)
    assert settings.apns is not None
    h = await push_harness(tmp_path, replace(settings, apns=replace(settings.apns, key_file=wrong)))
    try:
        session, _, _ = await register_and_enable(h, "nurse")
        await h.unbind(session)
        await message(h, "nurse")
        (attempt,) = await attempts(h)
        assert (attempt.state, attempt.status, attempt.reason, attempt.tries) == (
            AttemptState.FAILED,
            403,
            "InvalidProviderToken",
            1,
        )
        assert PushService.APNS in app(h).unhealthy
        (reg,) = await app(h).store.registrations_of("nurse")
        assert reg.state is RegistrationState.ACTIVE  # not the device's fault
    finally:
        await h.close()
