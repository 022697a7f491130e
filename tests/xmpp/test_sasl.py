"""Server-side SASL mechanisms against a real SCRAM client (scramp)."""

from __future__ import annotations

import pytest
from scramp import ScramClient, ScramException

from carewire.xmpp import sasl

SECRET = b"k" * 32


def keys(password: str, mech: str = "SCRAM-SHA-256") -> sasl.StoredKeys:
    return sasl.derive_keys(password, mech)


def run_scram(
    mech: str,
    password: str,
    stored: sasl.StoredKeys | None,
    *,
    cb: bytes | None = None,
    client_cb: tuple[str, bytes] | None = None,
) -> sasl.Step:
    client = ScramClient([mech], "alice", password, channel_binding=client_cb)
    server = sasl.ScramServerMechanism(mech, channel_binding=cb, fake_secret=SECRET)
    step = server.start(client.get_client_first().encode())
    assert step == sasl.NeedCredentials(username="alice", mechanism=mech.removesuffix("-PLUS"))
    step = server.credentials(stored)
    assert isinstance(step, sasl.Challenge)
    client.set_server_first(step.data.decode())
    step = server.respond(client.get_client_final().encode())
    if isinstance(step, sasl.Success):
        assert step.data is not None
        client.set_server_final(step.data.decode())  # verifies the server signature
    return step


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_success_and_wrong_password(mech: str) -> None:
    stored = keys("correct horse", mech)
    ok = run_scram(mech, "correct horse", stored)
    assert isinstance(ok, sasl.Success) and ok.username == "alice"
    failure = run_scram(mech, "wrong", stored)
    assert (
        isinstance(failure, sasl.Failure)
        and failure.condition == "not-authorized"
        and failure.counts
    )


def test_unknown_user_looks_the_same_until_the_proof() -> None:
    step = run_scram("SCRAM-SHA-256", "anything", None)
    assert isinstance(step, sasl.Failure) and step.condition == "not-authorized"
    a = sasl.fake_keys("ghost", SECRET)
    assert a == sasl.fake_keys("ghost", SECRET)  # stable salt: no enumeration by salt changes
    assert a != sasl.fake_keys("ghost2", SECRET)


def test_scram_plus_with_channel_binding() -> None:
    cb = b"\x01" * 32
    stored = keys("pw")
    ok = run_scram(
        "SCRAM-SHA-256-PLUS", "pw", stored, cb=cb, client_cb=("tls-server-end-point", cb)
    )
    assert isinstance(ok, sasl.Success)
    bad = run_scram(
        "SCRAM-SHA-256-PLUS", "pw", stored, cb=cb, client_cb=("tls-server-end-point", b"\x02" * 32)
    )
    assert isinstance(bad, sasl.Failure)


def test_empty_initial_response_asks_for_it() -> None:
    server = sasl.ScramServerMechanism("SCRAM-SHA-1", channel_binding=None, fake_secret=SECRET)
    assert server.start(None) == sasl.Challenge(b"")
    client = ScramClient(["SCRAM-SHA-1"], "alice", "pw")
    assert isinstance(server.respond(client.get_client_first().encode()), sasl.NeedCredentials)


@pytest.mark.parametrize("first", [b"\xff\xfe", b"n,,r=abc", b"garbage", b"n,,n=al=ice,r=x"])
def test_malformed_client_first(first: bytes) -> None:
    server = sasl.ScramServerMechanism("SCRAM-SHA-1", channel_binding=None, fake_secret=SECRET)
    step = server.start(first)
    assert (
        isinstance(step, sasl.Failure) and step.condition == "malformed-request" and not step.counts
    )


def test_username_escapes() -> None:
    assert sasl._username_of_client_first("n,,n=a=2Cb=3Dc,r=x") == "a,b=c"


def test_plain() -> None:
    stored = keys("s3cret")
    m = sasl.PlainServerMechanism(domain="example.test")
    assert m.start(b"\0alice\0s3cret") == sasl.NeedCredentials(
        username="alice", mechanism="SCRAM-SHA-256"
    )
    assert m.credentials(stored) == sasl.Success("alice", None)
    m = sasl.PlainServerMechanism(domain="example.test")
    m.start(b"\0alice\0nope")
    step = m.credentials(stored)
    assert isinstance(step, sasl.Failure) and step.counts
    m = sasl.PlainServerMechanism(domain="example.test")
    m.start(b"\0alice\0x")
    assert isinstance(m.credentials(None), sasl.Failure)


@pytest.mark.parametrize("msg", [b"alice\0pw", b"\0\0pw", b"\0alice\0", b"\xff\0a\0b"])
def test_plain_malformed(msg: bytes) -> None:
    step = sasl.PlainServerMechanism(domain="example.test").start(msg)
    assert isinstance(step, sasl.Failure) and not step.counts


def test_plain_authzid() -> None:
    m = sasl.PlainServerMechanism(domain="example.test")
    assert isinstance(m.start(b"alice@example.test\0alice\0pw"), sasl.NeedCredentials)
    step = sasl.PlainServerMechanism(domain="example.test").start(b"bob@example.test\0alice\0pw")
    assert isinstance(step, sasl.Failure) and step.condition == "invalid-authzid"


def test_check_password() -> None:
    k = keys("pässwörd", "SCRAM-SHA-1")
    assert sasl.check_password("pässwörd", "SCRAM-SHA-1", k)
    assert not sasl.check_password("password", "SCRAM-SHA-1", k)


def test_scram_edge_cases() -> None:
    server = sasl.ScramServerMechanism("SCRAM-SHA-1", channel_binding=None, fake_secret=SECRET)
    assert isinstance(server.respond(b"anything"), sasl.Failure)  # before any client-first
    server = sasl.ScramServerMechanism("SCRAM-SHA-1", channel_binding=None, fake_secret=SECRET)
    # Channel binding requested by the client but we have none: scramp refuses.
    step = server.start(b"p=tls-server-end-point,,n=alice,r=abcdefghijkl")
    assert isinstance(step, sasl.NeedCredentials)
    assert isinstance(server.credentials(keys("pw", "SCRAM-SHA-1")), sasl.Failure)
    stored = keys("pw")
    client = ScramClient(["SCRAM-SHA-256"], "alice", "pw")
    server = sasl.ScramServerMechanism("SCRAM-SHA-256", channel_binding=None, fake_secret=SECRET)
    server.start(client.get_client_first().encode())
    first = server.credentials(stored)
    assert isinstance(first, sasl.Challenge)
    client.set_server_first(first.data.decode())
    assert isinstance(server.respond(client.get_client_final().encode()), sasl.Success)
    again = server.respond(b"")  # the exchange is over
    assert isinstance(again, sasl.Failure) and not again.counts
    assert sasl._scram_text(ScramException("bad nonce")) == "bad nonce"


def test_plain_without_initial_response_and_bad_password_chars() -> None:
    assert sasl.PlainServerMechanism(domain="h").start(None) == sasl.Challenge(b"")
    assert not sasl.check_password("bad\u0007char", "SCRAM-SHA-256", keys("pw"))


def test_derive_keys_rejects_what_saslprep_forbids() -> None:
    with pytest.raises(ValueError):
        sasl.derive_keys("bad\u0007password", "SCRAM-SHA-256")
    with pytest.raises(ValueError):
        sasl.derive_keys("pw", "SCRAM-SHA-256", iterations=10)


def _server_first(name: str, stored: sasl.StoredKeys | None, rounds: int) -> dict[str, str]:
    client = ScramClient(["SCRAM-SHA-256"], name, "pw")
    server = sasl.ScramServerMechanism(
        "SCRAM-SHA-256", channel_binding=None, fake_secret=SECRET, fake_iterations=rounds
    )
    server.start(client.get_client_first().encode())
    step = server.credentials(stored)
    assert isinstance(step, sasl.Challenge)
    return dict(part.split("=", 1) for part in step.data.decode().split(","))


def test_unknown_users_get_the_iteration_count_new_accounts_get() -> None:
    assert sasl.DEFAULT_ITERATIONS >= 10_000
    known = _server_first("alice", sasl.derive_keys("pw", "SCRAM-SHA-256"), 10_000)
    unknown = _server_first("ghost", None, 10_000)
    assert known["i"] == unknown["i"] == str(sasl.DEFAULT_ITERATIONS)
    assert unknown["s"] == _server_first("ghost", None, 10_000)["s"]
    assert len(unknown["s"]) == len(known["s"])  # both 16 bytes of salt


def test_plain_does_the_same_work_for_unknown_users() -> None:
    """Loosely timed: both paths derive a key with the same count (no tight timing assert)."""
    import time

    rounds = 150_000
    stored = sasl.derive_keys("right password", "SCRAM-SHA-256", rounds)

    def attempt(keys: sasl.StoredKeys | None) -> float:
        mech = sasl.PlainServerMechanism(
            domain="example.test", fake_secret=SECRET, fake_iterations=rounds
        )
        assert isinstance(mech.start(b"\0alice\0wrong password"), sasl.NeedCredentials)
        started = time.perf_counter()
        step = mech.credentials(keys)
        assert isinstance(step, sasl.Failure) and step.condition == "not-authorized"
        return time.perf_counter() - started

    known = min(attempt(stored) for _ in range(3))
    unknown = min(attempt(None) for _ in range(3))
    # Without the fake derivation the unknown path is ~1000 times faster.
    assert unknown > known / 4, (known, unknown)
