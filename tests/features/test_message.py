"""Message delivery rules of RFC 6121 §8.5 through the kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.xmpp import ns
from tests.features.harness import Harness, make_harness

FEATURES = ["c2s", "message", "offline"]
ERR = f"{{{ns.STANZAS_ERR}}}"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=FEATURES)
    yield harness
    await harness.close()


async def available(h: Harness, login: str, resource: str, priority: int = 0):  # type: ignore[no-untyped-def]
    """A bound session marked available (presence handling is not loaded here)."""
    session, sink = await h.bind(login, resource)
    from carewire.xmpp.xml import make

    session.presence = make(f"{{{ns.CLIENT}}}presence")
    session.priority = priority
    return session, sink


async def test_bare_jid_goes_to_highest_priority(h: Harness) -> None:
    alice, _ = await available(h, "alice", "phone")
    _, low = await available(h, "bob", "desk", priority=1)
    _, high = await available(h, "bob", "phone", priority=5)
    await h.send(
        alice, "<message to='bob@example.test' type='chat' id='m1'><body>hi</body></message>"
    )
    (got,) = high.take()
    assert (
        got.get("from") == "alice@example.test/phone"
        and got.findtext(f"{{{ns.CLIENT}}}body") == "hi"
    )
    assert low.take() == []


async def test_headline_goes_to_all_non_negative(h: Harness) -> None:
    alice, _ = await available(h, "alice", "phone")
    _, a = await available(h, "bob", "a", priority=0)
    _, b = await available(h, "bob", "b", priority=3)
    _, c = await available(h, "bob", "c", priority=-1)
    await h.send(alice, "<message to='bob@example.test' type='headline'><body>x</body></message>")
    assert len(a.take()) == 1 and len(b.take()) == 1 and c.take() == []


async def test_full_jid_and_fallback_to_bare(h: Harness) -> None:
    alice, _ = await available(h, "alice", "phone")
    _, desk = await available(h, "bob", "desk")
    await h.send(alice, "<message to='bob@example.test/desk' type='chat'><body>1</body></message>")
    assert len(desk.take()) == 1
    # §8.5.3.2.1: a chat to a resource that is gone is treated as addressed to the bare JID.
    await h.send(alice, "<message to='bob@example.test/gone' type='chat'><body>2</body></message>")
    assert len(desk.take()) == 1
    await h.send(
        alice, "<message to='bob@example.test/gone' type='headline'><body>3</body></message>"
    )
    assert desk.take() == []


async def test_unknown_user_gets_service_unavailable(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await h.send(
        alice, "<message to='nobody@example.test' type='chat' id='x1'><body>hi</body></message>"
    )
    (err,) = sink.take()
    assert err.get("type") == "error" and err.get("id") == "x1"
    assert err.get("from") == "nobody@example.test"
    assert err.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None


async def test_groupchat_to_a_user_is_an_error(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await available(h, "bob", "desk")
    await h.send(alice, "<message to='bob@example.test' type='groupchat'><body>x</body></message>")
    (err,) = sink.take()
    assert err.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None


async def test_malformed_to_is_jid_malformed(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await h.send(alice, "<message to='a@b@c' id='j'><body>x</body></message>")
    (err,) = sink.take()
    assert err.find(f"{{{ns.CLIENT}}}error/{ERR}jid-malformed") is not None


async def test_remote_domain_is_not_found_and_subdomain_unavailable(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await h.send(alice, "<message to='x@elsewhere.example' id='r'><body>x</body></message>")
    await h.send(alice, "<message to='room@chat.example.test' id='c'><body>x</body></message>")
    remote, chat = sink.take()
    assert remote.find(f"{{{ns.CLIENT}}}error/{ERR}remote-server-not-found") is not None
    assert chat.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None


async def test_from_is_stamped_by_the_server(h: Harness) -> None:
    alice, _ = await available(h, "alice", "phone")
    _, bob = await available(h, "bob", "desk")
    await h.send(
        alice,
        "<message to='bob@example.test' from='admin@example.test' type='chat'>"
        "<body>x</body></message>",
    )
    (got,) = bob.take()
    assert got.get("from") == "alice@example.test/phone"  # RFC 6120 §8.1.2.1


async def test_iq_to_unknown_namespace_and_bad_iq(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await h.send(alice, "<iq type='get' id='u1'><query xmlns='urn:example:unknown'/></iq>")
    await h.send(alice, "<iq type='get' id='u2'/>")
    await h.send(
        alice,
        "<iq type='get' id='s1' to='example.test'>"
        "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
    )
    unknown, bad, session = sink.take()
    assert unknown.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None
    assert bad.find(f"{{{ns.CLIENT}}}error/{ERR}bad-request") is not None
    assert session.get("type") == "error"  # session is only 'set'


async def test_legacy_session_iq(h: Harness) -> None:
    alice, sink = await available(h, "alice", "phone")
    await h.send(
        alice, "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
    )
    (res,) = sink.take()
    assert res.get("type") == "result" and res.get("id") == "s1"


async def test_iq_to_full_jid_is_forwarded_and_answered(h: Harness) -> None:
    alice, asink = await available(h, "alice", "phone")
    bob, bsink = await available(h, "bob", "desk")
    await h.send(
        alice,
        "<iq type='get' id='v1' to='bob@example.test/desk'><query xmlns='jabber:iq:version'/></iq>",
    )
    (req,) = bsink.take()
    assert req.get("from") == "alice@example.test/phone"
    await h.send(bob, "<iq type='result' id='v1' to='alice@example.test/phone'/>")
    (res,) = asink.take()
    assert res.get("type") == "result" and res.get("from") == "bob@example.test/desk"
    await h.send(
        alice,
        "<iq type='get' id='v2' to='bob@example.test/gone'><query xmlns='jabber:iq:version'/></iq>",
    )
    (err,) = asink.take()
    assert err.find(f"{{{ns.CLIENT}}}error/{ERR}service-unavailable") is not None


async def test_server_query_answered_only_by_the_queried_session(h: Harness) -> None:
    import asyncio

    from carewire.xmpp.xml import make

    alice, asink = await available(h, "alice", "phone")
    mallory, _ = await available(h, "mallory", "laptop")
    query = asyncio.ensure_future(
        h.kernel.router.query(
            alice,
            make(f"{{{ns.CLIENT}}}iq", {"type": "get"}, make(f"{{{ns.PING}}}ping")),
            timeout=5,
        )
    )
    await asyncio.sleep(0)
    (ping,) = asink.take()
    iq_id = ping.get("id")
    # Another user answering with the same id is ignored.
    await h.send(mallory, f"<iq type='result' id='{iq_id}' to='example.test'/>")
    assert not query.done()
    await h.send(alice, f"<iq type='result' id='{iq_id}' to='example.test'/>")
    reply = await asyncio.wait_for(query, 1)
    assert reply.get("from") == "alice@example.test/phone"


async def test_sessions_of_an_account_removed_elsewhere_are_ended(h: Harness) -> None:
    """`carewire user remove` writes the database directly; the check ends the sessions."""
    from carewire.core import hook_names as H
    from carewire.xmpp.errors import StreamCondition

    _, alice = await available(h, "alice", "phone")
    _, bob = await available(h, "bob", "desk")
    removed: list[str] = []
    h.kernel.hooks.on(H.ACCOUNT_REMOVED, lambda e: removed.append(e.login))
    await h.kernel.stores.accounts.remove("alice")  # as another process would
    (job,) = [j for j in h.kernel.ctx.jobs if j.name == "removed-accounts"]
    await job.run()
    assert alice.closed == (StreamCondition.NOT_AUTHORIZED, "account removed")
    assert bob.closed is None and removed == ["alice"]
