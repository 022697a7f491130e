"""VCardStore, PrivateStore, BlockingStore and LoginAuditStore contracts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carewire.core.stores import LoginAttempt, LoginOutcome, Stores
from carewire.errors import NotFoundError
from tests.storage.factories import utc

VCARD = "<vCard xmlns='vcard-temp'><FN>Alice Äbel</FN></vCard>"


async def test_vcards(stores: Stores, alice: str) -> None:
    assert await stores.vcards.get(alice) is None
    await stores.vcards.set(alice, VCARD)
    assert await stores.vcards.get(alice) == VCARD
    await stores.vcards.set(alice, "<vCard xmlns='vcard-temp'/>")
    assert await stores.vcards.get(alice) == "<vCard xmlns='vcard-temp'/>"
    with pytest.raises(NotFoundError):
        await stores.vcards.set("nobody", VCARD)


async def test_private_storage(stores: Stores, alice: str) -> None:
    key = "{storage:bookmarks}storage"
    assert await stores.private.get(alice, key) is None
    await stores.private.set(alice, key, "<storage xmlns='storage:bookmarks'/>")
    await stores.private.set(alice, "{urn:x}y", "<y xmlns='urn:x'/>")
    assert await stores.private.get(alice, key) == "<storage xmlns='storage:bookmarks'/>"
    await stores.private.set(alice, key, "<storage xmlns='storage:bookmarks'><c/></storage>")
    assert await stores.private.get(alice, key) == (
        "<storage xmlns='storage:bookmarks'><c/></storage>"
    )
    assert await stores.private.get(alice, "{urn:x}y") == "<y xmlns='urn:x'/>"
    with pytest.raises(NotFoundError):
        await stores.private.set("nobody", key, "<x/>")


async def test_blocking(stores: Stores, alice: str) -> None:
    assert await stores.blocking.list(alice) == []
    await stores.blocking.add(alice, ["zed@example.org", "Bob@example.org", "a.example.org"])
    await stores.blocking.add(alice, ["zed@example.org", "zed@example.org", "évé@example.org"])
    await stores.blocking.add(alice, [])
    assert await stores.blocking.list(alice) == [
        "Bob@example.org",
        "a.example.org",
        "zed@example.org",
        "évé@example.org",
    ]
    assert await stores.blocking.owners() == {alice}
    await stores.blocking.remove(alice, ["zed@example.org", "unknown@example.org"])
    await stores.blocking.remove(alice, [])
    assert "zed@example.org" not in await stores.blocking.list(alice)
    await stores.blocking.clear(alice)
    assert await stores.blocking.list(alice) == []
    assert await stores.blocking.owners() == set()
    await stores.blocking.clear(alice)
    with pytest.raises(NotFoundError):
        await stores.blocking.add("nobody", ["x@example.org"])


def _attempt(login: str, minute: int, outcome: LoginOutcome = LoginOutcome.SUCCESS) -> LoginAttempt:
    return LoginAttempt(
        at=utc(2024, 7, 1, 8) + timedelta(minutes=minute),
        login=login,
        remote_ip="2001:db8::1",
        transport="c2s-tls",
        mechanism="SCRAM-SHA-256",
        outcome=outcome,
        reason="" if outcome is LoginOutcome.SUCCESS else "bad password",
    )


async def test_login_audit(stores: Stores) -> None:
    assert await stores.login_audit.query() == []
    attempts = [
        _attempt("alice", 0),
        _attempt("ghost", 1, LoginOutcome.FAILURE),  # no such account: audited anyway
        _attempt("alice", 2, LoginOutcome.LOCKED),
        _attempt("alice", 3, LoginOutcome.DELAYED),
    ]
    await stores.login_audit.append_many(attempts)
    await stores.login_audit.append_many([])
    assert await stores.login_audit.query() == attempts[::-1]
    assert await stores.login_audit.query(login="alice") == [attempts[3], attempts[2], attempts[0]]
    assert await stores.login_audit.query(limit=2) == [attempts[3], attempts[2]]
    since = utc(2024, 7, 1, 8, 1)
    assert await stores.login_audit.query(since=since) == attempts[:0:-1]
    assert await stores.login_audit.query(login="alice", since=since, limit=1) == [attempts[3]]
    got = (await stores.login_audit.query(login="ghost"))[0]
    assert got.outcome is LoginOutcome.FAILURE and got.at.utcoffset() == timedelta(0)


async def test_login_audit_truncates_oversized_values(stores: Stores) -> None:
    long = _attempt("x" * 5000, 0)
    await stores.login_audit.append_many([long])
    [got] = await stores.login_audit.query()
    assert got.login == "x" * 1023
