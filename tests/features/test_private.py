"""XEP-0049 Private XML Storage (carewire.features.private)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.features.private import MAX_FRAGMENT_BYTES
from carewire.xmpp import ns
from tests.features.harness import Harness, error_condition, make_harness

QUERY = f"{{{ns.PRIVATE}}}query"
BOOKMARKS = "storage:bookmarks"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["private"])
    yield harness
    await harness.close()


def private(iq_type: str, inner: str, to: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return f"<iq type='{iq_type}' id='p1'{to_attr}><query xmlns='{ns.PRIVATE}'>{inner}</query></iq>"


BOOKMARK_SET = private(
    "set",
    f"<storage xmlns='{BOOKMARKS}'>"
    "<conference jid='ward3@chat.example.test' name='Ward 3'/></storage>",
)


async def test_set_then_get(h: Harness) -> None:
    reply = await h.ask("alice", BOOKMARK_SET)
    assert reply.get("type") == "result"
    assert len(reply) == 0
    reply = await h.ask("alice", private("get", f"<storage xmlns='{BOOKMARKS}'/>"))
    assert reply.get("type") == "result"
    query = reply.find(QUERY)
    assert query is not None
    (storage,) = list(query)
    assert storage.tag == f"{{{BOOKMARKS}}}storage"
    conference = storage.find(f"{{{BOOKMARKS}}}conference")
    assert conference is not None
    assert conference.get("name") == "Ward 3"


async def test_get_with_explicit_own_jid(h: Harness) -> None:
    await h.ask("alice", BOOKMARK_SET)
    reply = await h.ask(
        "alice", private("get", f"<storage xmlns='{BOOKMARKS}'/>", to=f"alice@{h.domain}")
    )
    assert reply.get("type") == "result"


async def test_get_of_nothing_stored_returns_the_empty_element(h: Harness) -> None:
    reply = await h.ask("alice", private("get", "<prefs xmlns='urn:example:prefs'/>"))
    assert reply.get("type") == "result"
    query = reply.find(QUERY)
    assert query is not None
    (prefs,) = list(query)
    assert prefs.tag == "{urn:example:prefs}prefs"
    assert len(prefs) == 0


async def test_data_is_per_user(h: Harness) -> None:
    await h.ask("alice", BOOKMARK_SET)
    reply = await h.ask("bob", private("get", f"<storage xmlns='{BOOKMARKS}'/>"))
    query = reply.find(QUERY)
    assert query is not None
    assert len(query[0]) == 0


async def test_set_with_several_elements_of_one_namespace(h: Harness) -> None:
    reply = await h.ask("alice", private("set", "<a xmlns='urn:x'>1</a><b xmlns='urn:x'>2</b>"))
    assert reply.get("type") == "result"
    for tag, text in (("a", "1"), ("b", "2")):
        reply = await h.ask("alice", private("get", f"<{tag} xmlns='urn:x'/>"))
        query = reply.find(QUERY)
        assert query is not None
        assert query[0].text == text


@pytest.mark.parametrize("iq_type", ["get", "set"])
async def test_empty_query_is_not_acceptable(h: Harness, iq_type: str) -> None:
    reply = await h.ask("alice", private(iq_type, ""))
    assert error_condition(reply) == "not-acceptable"


@pytest.mark.parametrize(
    "inner",
    [
        f"<query xmlns='{ns.PRIVATE}'/>",
        "<x>inherits jabber:client</x>",
        f"<x xmlns='{ns.SERVER}'/>",
    ],
)
@pytest.mark.parametrize("iq_type", ["get", "set"])
async def test_reserved_namespaces_are_not_acceptable(h: Harness, iq_type: str, inner: str) -> None:
    reply = await h.ask("alice", private(iq_type, inner))
    assert error_condition(reply) == "not-acceptable"


async def test_get_of_several_elements_is_a_bad_request(h: Harness) -> None:
    reply = await h.ask("alice", private("get", "<a xmlns='urn:x'/><b xmlns='urn:x'/>"))
    assert error_condition(reply) == "bad-request"


async def test_set_mixing_namespaces_is_a_bad_request(h: Harness) -> None:
    reply = await h.ask("alice", private("set", "<a xmlns='urn:x'/><b xmlns='urn:y'/>"))
    assert error_condition(reply) == "bad-request"
    assert await h.kernel.stores.private.get("alice", "{urn:x}a") is None


@pytest.mark.parametrize("iq_type", ["get", "set"])
async def test_another_users_storage_is_forbidden(h: Harness, iq_type: str) -> None:
    await h.account("bob")
    reply = await h.ask(
        "alice", private(iq_type, f"<storage xmlns='{BOOKMARKS}'/>", to=f"bob@{h.domain}")
    )
    assert reply.get("type") == "error"
    assert error_condition(reply) == "forbidden"
    assert await h.kernel.stores.private.get("bob", f"{{{BOOKMARKS}}}storage") is None


async def test_oversized_fragment_is_refused(h: Harness) -> None:
    big = "x" * MAX_FRAGMENT_BYTES
    reply = await h.ask("alice", private("set", f"<a xmlns='urn:x'>{big}</a>"))
    assert error_condition(reply) == "not-acceptable"
    assert await h.kernel.stores.private.get("alice", "{urn:x}a") is None
