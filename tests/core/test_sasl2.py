"""SASL2 logins through the real stream machine, no sockets (XEP-0388/0386/0484/0440/0474)."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from carewire.core.auth import Authenticator, LoginAuditor
from carewire.core.feature import FeatureConfig
from carewire.core.stores import LoginOutcome
from carewire.xmpp import ns
from carewire.xmpp.sasl2 import (
    BIND2,
    FAST,
    HT_ENDP,
    HT_NONE,
    SASL2,
    SASL_CB,
    ht_responder,
    ssdp_hash,
)
from carewire.xmpp.stream import State
from tests.core.sasl2_client import (
    AGENT,
    AGENT_XML,
    CB,
    REQUEST_TOKEN,
    Client,
    b64,
    element,
    failure_of,
    features_of,
    token_of,
)
from tests.features.harness import Harness, make_harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    # Tokens rotate at every use here (the default waits a day: test_rotation_when_due).
    config = FeatureConfig(fast_rotate_after=timedelta(0))
    harness = await make_harness(
        tmp_path, features=["c2s", "message", "carbons", "csi", "smacks"], config=config
    )
    await harness.account("alice", "wonderland")
    yield harness
    await harness.close()


@pytest.fixture
def auth(h: Harness) -> Authenticator:
    return Authenticator(h.kernel.stores, h.clock, LoginAuditor(h.kernel.stores))


BIND = (
    f"<bind xmlns='{BIND2}'><tag>Ward</tag>"
    f"<enable xmlns='{ns.CARBONS}'/><inactive xmlns='{ns.CSI}'/>"
    f"<enable xmlns='{ns.SM}' resume='true'/></bind>"
)


async def test_the_features_offer_sasl2_bind2_fast_and_channel_binding(
    h: Harness, auth: Authenticator
) -> None:
    c = Client(h, auth)
    features = features_of(await c.open())
    assert features.find(f"{{{ns.SASL}}}mechanisms") is not None  # legacy SASL stays
    authn = features.find(f"{{{SASL2}}}authentication")
    assert authn is not None
    mechs = [m.text for m in authn.findall(f"{{{SASL2}}}mechanism")]
    assert mechs == [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    ]
    inline = authn.find(f"{{{SASL2}}}inline")
    assert inline is not None
    bind_vars = [f.get("var") for f in inline.iter(f"{{{BIND2}}}feature")]
    assert set(bind_vars) == {ns.CARBONS, ns.CSI, ns.SM}
    fast_mechs = [m.text for m in inline.iter(f"{{{FAST}}}mechanism")]
    assert fast_mechs == [HT_ENDP, HT_NONE]
    cb = features.find(f"{{{SASL_CB}}}sasl-channel-binding")
    assert cb is not None
    assert [t.get("type") for t in cb] == ["tls-server-end-point"]


async def test_scram_with_bind2_and_inline_carbons_csi_sm(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    text = await c.scram("alice", "wonderland", AGENT_XML + BIND)
    success = element(text, "success")
    jid = success.findtext(f"{{{SASL2}}}authorization-identifier", "")
    assert re.fullmatch(r"alice@example\.test/Ward/[a-z2-7]{16}", jid), jid
    bound = success.find(f"{{{BIND2}}}bound")
    assert bound is not None
    enabled = bound.find(f"{{{ns.SM}}}enabled")
    assert enabled is not None and enabled.get("resume") == "true" and enabled.get("id")
    # XEP-0388: no restart; the features follow, without resource binding.
    assert "<stream:features>" in text and ns.BIND not in text.split("<stream:features>")[1]
    assert c.stream.state is State.ESTABLISHED and "<stream:stream" not in text
    session = c.conn.session
    assert session is not None and str(session.jid) == jid
    assert session.data.get("carbons") is True and session.data.get("csi") == "inactive"
    assert session.sm is not None
    # Stanzas flow on the established stream.
    out = await c.feed("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert "<stream:error" not in out
    # The same client gets the same resource next time (XEP-0386 stable identifiers), and
    # its earlier session ends ("SHOULD terminate any earlier sessions from the same client").
    again = element(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + BIND), "success")
    assert again.findtext(f"{{{SASL2}}}authorization-identifier") == jid
    assert AGENT not in jid
    assert "<conflict" in b"".join(c.stream.data_to_send()).decode() and c.stream.is_closed


async def test_scram_without_bind_then_legacy_bind(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    text = await c.scram("alice", "wonderland", mechanism="SCRAM-SHA-1")
    success = element(text, "success")
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == "alice@example.test"
    assert f'<bind xmlns="{ns.BIND}"' in text
    out = await c.feed(f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>")
    assert "<jid>alice@example.test/" in out and c.stream.state is State.ESTABLISHED


async def test_ssdp_hash_detects_a_tampered_mechanism_list(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.scram("alice", "wonderland")
    h_attr = dict(a.split("=", 1) for a in c.server_first.split(","))["h"]
    mechs = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    # What the client saw advertised verifies…
    assert h_attr == ssdp_hash(mechs, ["tls-server-end-point"], "sha256")
    # …a man in the middle who stripped the -PLUS mechanisms is detected by the client.
    tampered = [m for m in mechs if not m.endswith("-PLUS")]
    assert h_attr != ssdp_hash(tampered, ["tls-server-end-point"], "sha256")
    assert h_attr != ssdp_hash(mechs, None, "sha256")  # channel bindings hidden


async def test_fast_token_request_reconnect_and_rotation(h: Harness, auth: Authenticator) -> None:
    text = await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN)
    token = element(text, "success").find(f"{{{FAST}}}token")
    assert token is not None and token.get("expiry", "").endswith("Z")
    first = token.get("token", "")
    assert len(first) == 43
    c = Client(h, auth)
    text = await c.fast("alice", first, BIND)
    success = element(text, "success")
    data = base64.b64decode(success.findtext(f"{{{SASL2}}}additional-data", ""))
    assert data == ht_responder(first.encode())  # the server proves it knows the token
    rotated = success.find(f"{{{FAST}}}token")
    assert rotated is not None and rotated.get("token") not in ("", first)
    assert c.conn.session is not None
    second = rotated.get("token", "")
    # The client missed nothing: the new token works, the old one is still 'current'.
    assert "<success" in await Client(h, auth).fast("alice", second)
    await auth.auditor.flush()
    rows = await h.kernel.stores.login_audit.query(login="alice")
    assert [r.mechanism for r in rows][:2] == [HT_NONE, HT_NONE]
    assert all(r.outcome is LoginOutcome.SUCCESS for r in rows)


async def test_a_replayed_token_fails_and_revokes_the_device(
    h: Harness, auth: Authenticator
) -> None:
    text = await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN)
    t1 = token_of(text)
    t2 = token_of(await Client(h, auth).fast("alice", t1))
    t3 = token_of(await Client(h, auth).fast("alice", t2))  # t1 rotated out now
    other = Client(h, auth)
    await other.scram("alice", "wonderland")  # another session, untouched by what follows
    c = Client(h, auth)
    assert failure_of(await c.fast("alice", t1)) == (
        "credentials-expired",
        "token replayed: this device's tokens are revoked",
    )
    assert c.stream.state is State.AWAIT_AUTH  # the client may fall back to its password
    assert failure_of(await Client(h, auth).fast("alice", t3))[0] == "not-authorized"
    assert other.stream.state is State.AWAIT_BIND
    await auth.auditor.flush()
    rows = await h.kernel.stores.login_audit.query(login="alice")
    assert [(r.outcome, r.reason, r.mechanism) for r in rows[:2]] == [
        (LoginOutcome.FAILURE, "fast no-token", HT_NONE),  # revoked: nothing left
        (LoginOutcome.FAILURE, "fast replayed", HT_NONE),
    ]


async def test_expired_token_and_invalidation(h: Harness, auth: Authenticator) -> None:
    text = await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN)
    token = token_of(text)
    h.clock.advance(14 * 86400 + 1)
    assert failure_of(await Client(h, auth).fast("alice", token)) == (
        "credentials-expired",
        "the token has expired",
    )
    account = await h.kernel.stores.accounts.get("alice")
    assert account is not None and account.failed_logins == 0  # expiry is not a guess
    token = token_of(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN))
    text = await Client(h, auth).fast(
        "alice", token, fast=f"<fast xmlns='{FAST}' invalidate='true'/>"
    )
    assert element(text, "success").find(f"{{{FAST}}}token") is None
    assert failure_of(await Client(h, auth).fast("alice", token))[0] == "not-authorized"


async def test_token_bound_to_mechanism_and_channel_binding(
    h: Harness, auth: Authenticator
) -> None:
    req = f"<request-token xmlns='{FAST}' mechanism='{HT_ENDP}'/>"
    token = token_of(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + req))
    assert failure_of(await Client(h, auth).fast("alice", token))[1] == (
        "the token is bound to another mechanism"
    )
    token = token_of(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + req))
    wrong_cb = await Client(h, auth).fast("alice", token, mechanism=HT_ENDP, cb=b"\x02" * 32)
    assert failure_of(wrong_cb)[0] == "not-authorized"
    text = await Client(h, auth).fast("alice", token, mechanism=HT_ENDP, cb=CB)
    data = element(text, "success").findtext(f"{{{SASL2}}}additional-data", "")
    assert base64.b64decode(data) == ht_responder(token.encode(), CB)
    # Without channel binding data on the connection, ENDP is not offered at all.
    c = Client(h, auth, cb=None)
    assert failure_of(await c.fast("alice", token, mechanism=HT_ENDP)) == ("invalid-mechanism", "")


async def test_a_stale_count_is_refused(h: Harness, auth: Authenticator) -> None:
    token = token_of(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN))
    with_count = f"<fast xmlns='{FAST}' count='5'/>"
    token2 = token_of(await Client(h, auth).fast("alice", token, fast=with_count))
    assert token2
    # token is 'current' now with count 5: the same count again is a replay.
    assert failure_of(await Client(h, auth).fast("alice", token, fast=with_count)) == (
        "not-authorized",
        "replayed count",
    )
    later = f"<fast xmlns='{FAST}' count='6'/>"
    assert "<success" in await Client(h, auth).fast("alice", token, fast=later)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # not base64
        (
            f"<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'>"
            "<initial-response>%%%</initial-response></authenticate>",
            ("incorrect-encoding", "initial-response is not base64"),
        ),
        # a mechanism not offered
        (f"<authenticate xmlns='{SASL2}' mechanism='DIGEST-MD5'/>", ("invalid-mechanism", "")),
        (
            f"<authenticate xmlns='{SASL2}'/>",
            ("invalid-mechanism", "the mechanism attribute is required"),
        ),
        # FAST without an initial response, or with garbage in it
        (
            f"<authenticate xmlns='{SASL2}' mechanism='{HT_NONE}'>{AGENT_XML}"
            f"<fast xmlns='{FAST}'/></authenticate>",
            ("malformed-request", "FAST needs an initial response"),
        ),
        (
            f"<authenticate xmlns='{SASL2}' mechanism='{HT_NONE}'>"
            f"<initial-response>{b64('alice')}</initial-response>{AGENT_XML}"
            f"<fast xmlns='{FAST}'/></authenticate>",
            ("malformed-request", "expected authcid NUL HMAC-SHA-256"),
        ),
        (
            f"<authenticate xmlns='{SASL2}' mechanism='{HT_NONE}'>"
            f"<initial-response>{b64(b'alice' + bytes(33))}</initial-response>"
            f"<fast xmlns='{FAST}'/></authenticate>",
            ("malformed-request", "FAST needs a user-agent id"),
        ),
        (
            f"<authenticate xmlns='{SASL2}' mechanism='{HT_NONE}'>"
            f"<initial-response>{b64(b'alice' + bytes(33))}</initial-response>"
            f"<fast xmlns='{FAST}' count='-1'/></authenticate>",
            ("malformed-request", "count must be a positive integer"),
        ),
        # a token requested without saying which client it is for
        (
            f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'>"
            f"<initial-response>{b64(chr(0) + 'alice' + chr(0) + 'wonderland')}"
            f"</initial-response>{REQUEST_TOKEN}</authenticate>",
            ("malformed-request", "FAST needs a user-agent id"),
        ),
        (
            f"<authenticate xmlns='{SASL2}' mechanism='PLAIN'>{AGENT_XML}"
            f"<request-token xmlns='{FAST}' mechanism='HT-MD5-NONE'/></authenticate>",
            ("invalid-mechanism", "request-token names no FAST mechanism"),
        ),
    ],
)
async def test_garbage_gets_a_sasl2_failure(
    h: Harness, auth: Authenticator, payload: str, expected: tuple[str, str]
) -> None:
    c = Client(h, auth)
    await c.open()
    assert failure_of(await c.feed(payload)) == expected
    assert c.stream.state is State.AWAIT_AUTH  # the client may try again
    assert "<success" in await c.authenticate("PLAIN", b"\0alice\0wonderland")


async def test_missing_initial_response_for_scram_gets_an_empty_challenge(
    h: Harness, auth: Authenticator
) -> None:
    c = Client(h, auth)
    await c.open()
    text = await c.authenticate("SCRAM-SHA-256", None)
    assert element(text, "challenge").text in (None, "")
    # A garbage response is answered with a failure, and the exchange ends.
    assert failure_of(await c.feed(f"<response xmlns='{SASL2}'>!!</response>")) == (
        "incorrect-encoding",
        "",
    )


async def test_authenticate_twice_is_a_stream_error(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.open()
    await c.authenticate("PLAIN", b"\0alice\0wonderland")
    text = await c.authenticate("PLAIN", b"\0alice\0wonderland")
    assert "<policy-violation" in text and "already authenticated" in text
    assert c.stream.is_closed
    # During an exchange, anything but <response/> or <abort/> ends the stream (XEP-0388).
    d = Client(h, auth)
    await d.open()
    await d.authenticate("SCRAM-SHA-256", None)
    assert "<stream:error>" in await d.authenticate("SCRAM-SHA-256", None) and d.stream.is_closed
    e = Client(h, auth)
    await e.open()
    await e.authenticate("SCRAM-SHA-256", None)
    assert "mixed SASL profiles" in await e.feed(f"<response xmlns='{ns.SASL}'>=</response>")


async def test_abort_and_wrong_password(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    await c.open()
    await c.authenticate("SCRAM-SHA-256", None)
    assert failure_of(await c.feed(f"<abort xmlns='{SASL2}'/>")) == ("aborted", "")
    text = await Client(h, auth).scram("alice", "nope")
    assert failure_of(text) == ("not-authorized", "")
    account = await h.kernel.stores.accounts.get("alice")
    assert account is not None and account.failed_logins == 1


async def test_a_password_change_revokes_fast_tokens(h: Harness, auth: Authenticator) -> None:
    token = token_of(await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN))
    await h.kernel.accounts.set_password("alice", "looking-glass")
    assert failure_of(await Client(h, auth).fast("alice", token))[0] == "not-authorized"


async def test_sm_resume_inline_then_failed_resume_binds(h: Harness, auth: Authenticator) -> None:
    c = Client(h, auth)
    text = await c.scram("alice", "wonderland", AGENT_XML + BIND)
    bound = element(text, "success").find(f"{{{BIND2}}}bound")
    assert bound is not None
    enabled = bound.find(f"{{{ns.SM}}}enabled")
    assert enabled is not None
    previd = enabled.get("id", "")
    session = c.conn.session
    assert session is not None
    await c.conn.closed()  # the connection broke: the session waits, detached
    assert h.kernel.sessions.of_user("alice") == [session]
    resume = f"<resume xmlns='{ns.SM}' previd='{previd}' h='0'/>"
    d = Client(h, auth)
    text = await d.scram("alice", "wonderland", AGENT_XML + resume + BIND)
    success = element(text, "success")
    resumed = success.find(f"{{{ns.SM}}}resumed")
    assert resumed is not None and resumed.get("previd") == previd
    assert success.find(f"{{{BIND2}}}bound") is None  # XEP-0386: the bind is ignored
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == str(session.jid)
    assert d.conn.session is session and d.stream.state is State.ESTABLISHED
    # An unknown id: <failed/> in the success, and a new session is bound.
    e = Client(h, auth)
    bad = f"<resume xmlns='{ns.SM}' previd='nope' h='0'/>"
    success = element(await e.scram("alice", "wonderland", bad + BIND), "success")
    failed = success.find(f"{{{ns.SM}}}failed")
    assert failed is not None and failed.find(f"{{{ns.STANZAS_ERR}}}item-not-found") is not None
    assert success.find(f"{{{BIND2}}}bound") is not None and e.conn.session is not None


async def test_rotation_when_due(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=["c2s", "smacks"], config=FeatureConfig())
    try:
        await h.account("alice", "wonderland")
        auth = Authenticator(h.kernel.stores, h.clock, LoginAuditor(h.kernel.stores))
        text = await Client(h, auth).scram("alice", "wonderland", AGENT_XML + REQUEST_TOKEN)
        t1 = token_of(text)
        # Within a day the token is used as it is ('new' becomes 'current'): no new token.
        for _ in range(2):
            text = await Client(h, auth).fast("alice", t1)
            assert element(text, "success").find(f"{{{FAST}}}token") is None
        h.clock.advance(86400)
        t2 = token_of(await Client(h, auth).fast("alice", t1))  # due: the next token
        assert t2 != t1
        assert "<success" in await Client(h, auth).fast("alice", t2)
        # t1 is retired now: presenting it again is a replay.
        assert failure_of(await Client(h, auth).fast("alice", t1))[0] == "credentials-expired"
    finally:
        await h.close()
