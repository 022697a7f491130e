"""XEP-0077 In-Band Registration (carewire.features.register)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.core.feature import FeatureConfig, IqTarget, PreAuthIqHandler, StreamPhase
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError, StreamCondition
from tests.features.harness import Harness, RecordingSink, error_condition, make_harness, x

QUERY = f"{{{ns.REGISTER}}}query"
FEATURE = f"{{{ns.REGISTER_FEATURE}}}register"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    config = FeatureConfig(register_enabled=True)
    harness = await make_harness(tmp_path, features=["disco", "register"], config=config)
    yield harness
    await harness.close()


@pytest.fixture
async def off(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["disco", "register"])
    yield harness
    await harness.close()


def preauth(h: Harness) -> PreAuthIqHandler:
    handler = h.kernel.iq.lookup_preauth(QUERY)
    assert handler is not None
    return handler


def register_iq(iq_type: str, inner: str = "") -> Element:
    return x(f"<iq type='{iq_type}' id='reg1'><query xmlns='{ns.REGISTER}'>{inner}</query></iq>")


async def preauth_error(h: Harness, iq: Element) -> StanzaError:
    with pytest.raises(StanzaError) as info:
        await preauth(h)(iq, "192.0.2.7")
    return info.value


async def credential(h: Harness, login: str) -> bytes:
    cred = await h.kernel.stores.accounts.get_credential(login, "SCRAM-SHA-256")
    assert cred is not None
    return cred.stored_key


class OrderedSink(RecordingSink):
    """Also records the order of writes and the close."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def send_element(self, element: Element) -> None:
        super().send_element(element)
        self.events.append(f"send {element.get('type')}")

    def close(self, condition: StreamCondition | None = None, text: str = "") -> None:
        super().close(condition, text)
        self.events.append("close")


async def until_closed(sink: RecordingSink) -> None:
    for _ in range(1000):
        if sink.closed is not None:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the session was not closed")


# -- disabled (the default) ----------------------------------------------------------


async def test_disabled_registers_nothing(off: Harness) -> None:
    assert off.kernel.stream_features(StreamPhase.PRE_AUTH) == ()
    assert off.kernel.iq.lookup_preauth(QUERY) is None
    assert off.kernel.iq.lookup(IqTarget.ACCOUNT, "set", QUERY) is None
    assert ns.REGISTER not in off.kernel.disco.server_features


async def test_disabled_post_auth_set_is_service_unavailable(off: Harness) -> None:
    session, sink = await off.bind("alice")
    await off.send(
        session,
        f"<iq type='set' id='r1'><query xmlns='{ns.REGISTER}'><remove/></query></iq>",
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"
    assert await off.kernel.stores.accounts.exists("alice")


# -- before authentication -----------------------------------------------------------


async def test_stream_feature_and_disco_when_enabled(h: Harness) -> None:
    (feature,) = h.kernel.stream_features(StreamPhase.PRE_AUTH)
    assert feature.tag == FEATURE
    assert h.kernel.stream_features(StreamPhase.POST_AUTH) == ()
    assert ns.REGISTER in h.kernel.disco.server_features


async def test_preauth_get_returns_the_form(h: Harness) -> None:
    query = await preauth(h)(register_iq("get"), "192.0.2.7")
    assert query is not None
    assert query.tag == QUERY
    assert query.findtext(f"{{{ns.REGISTER}}}instructions")
    assert query.find(f"{{{ns.REGISTER}}}username") is not None
    assert query.find(f"{{{ns.REGISTER}}}password") is not None
    assert query.find(f"{{{ns.REGISTER}}}registered") is None


async def test_preauth_set_creates_the_account(h: Harness) -> None:
    result = await preauth(h)(
        register_iq("set", "<username>Nurse.Joy</username><password>s3cret!-s3cret!</password>"),
        "::1",
    )
    assert result is None
    assert await h.kernel.stores.accounts.exists("nurse.joy")


async def test_preauth_set_conflict(h: Harness) -> None:
    await h.account("alice")
    err = await preauth_error(
        h, register_iq("set", "<username>alice</username><password>pw-long-enough</password>")
    )
    assert err.condition.value == "conflict"


@pytest.mark.parametrize(
    "inner",
    [
        "<username>bob</username>",
        "<password>pw-long-enough</password>",
        "<username>bob</username><password/>",
        "<username> </username><password>pw-long-enough</password>",
    ],
)
async def test_preauth_set_with_missing_data_is_not_acceptable(h: Harness, inner: str) -> None:
    err = await preauth_error(h, register_iq("set", inner))
    assert err.condition.value == "not-acceptable"
    assert not await h.kernel.stores.accounts.exists("bob")


async def test_preauth_set_with_invalid_login_is_not_acceptable(h: Harness) -> None:
    err = await preauth_error(
        h, register_iq("set", "<username>dr house</username><password>pw-long-enough</password>")
    )
    assert err.condition.value == "not-acceptable"
    assert "invalid login" in err.text


async def test_preauth_set_with_unusable_password_is_not_acceptable(h: Harness) -> None:
    err = await preauth_error(
        h, register_iq("set", f"<username>bob</username><password>{'p' * 2000}</password>")
    )
    assert err.condition.value == "not-acceptable"
    assert "password" in err.text
    assert not await h.kernel.stores.accounts.exists("bob")


@pytest.mark.parametrize("password", ["pw", "elevenchars"])
async def test_preauth_set_with_a_short_password_is_not_acceptable(
    h: Harness, password: str
) -> None:
    err = await preauth_error(
        h, register_iq("set", f"<username>bob</username><password>{password}</password>")
    )
    assert err.condition.value == "not-acceptable"
    assert "at least 12 characters" in err.text
    assert not await h.kernel.stores.accounts.exists("bob")


async def test_preauth_remove_is_not_authorized(h: Harness) -> None:
    await h.account("alice")
    err = await preauth_error(h, register_iq("set", "<remove/>"))
    assert err.condition.value == "not-authorized"
    assert await h.kernel.stores.accounts.exists("alice")


async def test_preauth_other_types_are_bad_requests(h: Harness) -> None:
    err = await preauth_error(h, register_iq("result"))
    assert err.condition.value == "bad-request"


# -- after authentication ------------------------------------------------------------


async def test_get_when_registered(h: Harness) -> None:
    session, sink = await h.bind("alice")
    await h.send(session, f"<iq type='get' id='r1'><query xmlns='{ns.REGISTER}'/></iq>")
    (reply,) = sink.take()
    assert reply.get("type") == "result"
    query = reply.find(QUERY)
    assert query is not None
    assert query.find(f"{{{ns.REGISTER}}}registered") is not None
    assert query.findtext(f"{{{ns.REGISTER}}}username") == "alice"


@pytest.mark.parametrize("to", ["", " to='example.test'", " to='alice@example.test'"])
async def test_password_change(h: Harness, to: str) -> None:
    session, sink = await h.bind("alice")
    before = await credential(h, "alice")
    await h.send(
        session,
        f"<iq type='set' id='r2'{to}><query xmlns='{ns.REGISTER}'>"
        "<username>alice</username><password>n3w-secret-phrase</password></query></iq>",
    )
    (reply,) = sink.take()
    assert reply.get("type") == "result"
    assert await credential(h, "alice") != before
    assert sink.closed is None


@pytest.mark.parametrize(
    ("inner", "condition"),
    [
        ("<username>bob</username><password>pw-long-enough</password>", "forbidden"),
        ("<username>not valid</username><password>pw-long-enough</password>", "forbidden"),
        ("<username>alice</username><password/>", "bad-request"),
        ("<password>pw-long-enough</password>", "bad-request"),
        (f"<username>alice</username><password>{'p' * 2000}</password>", "not-acceptable"),
        ("<username>alice</username><password>elevenchars</password>", "not-acceptable"),
    ],
)
async def test_password_change_errors(h: Harness, inner: str, condition: str) -> None:
    await h.account("bob")
    session, sink = await h.bind("alice")
    before = await credential(h, "alice")
    bob_before = await credential(h, "bob")
    await h.send(
        session, f"<iq type='set' id='r3'><query xmlns='{ns.REGISTER}'>{inner}</query></iq>"
    )
    (reply,) = sink.take()
    assert error_condition(reply) == condition
    assert await credential(h, "alice") == before
    assert await credential(h, "bob") == bob_before


async def test_remove_answers_then_ends_every_session(h: Harness) -> None:
    session, _ = await h.bind("alice", "desk")
    sink = session.sink = OrderedSink()
    _other, other_sink = await h.bind("alice", "phone")
    await h.send(
        session, f"<iq type='set' id='r4'><query xmlns='{ns.REGISTER}'><remove/></query></iq>"
    )
    await until_closed(sink)
    await until_closed(other_sink)
    # The result went out before the stream was closed.
    assert sink.events == ["send result", "close"]
    (reply,) = sink.take()
    assert reply.get("id") == "r4"
    assert sink.closed == (StreamCondition.NOT_AUTHORIZED, "account removed")
    assert other_sink.closed == (StreamCondition.NOT_AUTHORIZED, "account removed")
    assert not await h.kernel.stores.accounts.exists("alice")


async def test_remove_with_other_children_is_a_bad_request(h: Harness) -> None:
    session, sink = await h.bind("alice")
    await h.send(
        session,
        f"<iq type='set' id='r5'><query xmlns='{ns.REGISTER}'>"
        "<remove/><username>alice</username></query></iq>",
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "bad-request"
    await asyncio.sleep(0.01)
    assert sink.closed is None
    assert await h.kernel.stores.accounts.exists("alice")


async def test_registration_for_another_account_is_not_answered(h: Harness) -> None:
    await h.account("bob")
    session, sink = await h.bind("alice")
    await h.send(
        session,
        f"<iq type='set' id='r6' to='bob@{h.domain}'>"
        f"<query xmlns='{ns.REGISTER}'><remove/></query></iq>",
    )
    (reply,) = sink.take()
    assert error_condition(reply) == "service-unavailable"
    assert await h.kernel.stores.accounts.exists("bob")


async def test_registrations_per_address_are_limited(tmp_path: Path) -> None:
    config = FeatureConfig(register_enabled=True, register_limit=2, register_window=60)
    h = await make_harness(tmp_path, features=["register"], config=config)
    try:
        handler = preauth(h)
        for n in range(2):
            iq = register_iq("set", f"<username>u{n}</username><password>pw-long-enough</password>")
            assert await handler(iq, "198.51.100.1") is None
        third = register_iq("set", "<username>u2</username><password>pw-long-enough</password>")
        with pytest.raises(StanzaError) as info:
            await handler(third, "198.51.100.1")
        assert info.value.condition is StanzaCondition.NOT_ACCEPTABLE
        assert "too many registrations" in info.value.text
        assert not await h.kernel.stores.accounts.exists("u2")
        # Another address is not affected, and the window passes.
        assert await handler(third, "198.51.100.2") is None
        h.clock.advance(61)
        iq = register_iq("set", "<username>u3</username><password>pw-long-enough</password>")
        assert await handler(iq, "198.51.100.1") is None
    finally:
        await h.close()
