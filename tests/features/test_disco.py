"""XEP-0030 Service Discovery (carewire.features.disco)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.xmpp import ns
from tests.features.harness import Harness, error_condition, make_harness

INFO = f"{{{ns.DISCO_INFO}}}query"
ITEMS = f"{{{ns.DISCO_ITEMS}}}query"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await make_harness(tmp_path, features=["disco", "ping", "vcard"])
    yield harness
    await harness.close()


def identities(query: Element) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (i.get("category"), i.get("type"), i.get("name"))
        for i in query.iter(f"{{{ns.DISCO_INFO}}}identity")
    ]


def features(query: Element) -> list[str]:
    return [f.get("var", "") for f in query.iter(f"{{{ns.DISCO_INFO}}}feature")]


async def test_server_info_lists_identity_and_registered_features(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    assert reply.get("type") == "result"
    assert reply.get("from") == h.domain
    assert reply.get("id") == "d1"
    query = reply.find(INFO)
    assert query is not None
    assert identities(query) == [("server", "im", "Carewire")]
    vars_ = features(query)
    assert vars_ == sorted(vars_)
    assert {ns.DISCO_INFO, ns.DISCO_ITEMS, ns.PING, ns.VCARD} <= set(vars_)


async def test_server_info_is_read_at_request_time(h: Harness) -> None:
    h.kernel.disco.add_server_feature("urn:example:late")
    h.kernel.disco.add_server_identity("pubsub", "pep", "")
    reply = await h.ask(
        "alice", f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    query = reply.find(INFO)
    assert query is not None
    assert "urn:example:late" in features(query)
    assert ("pubsub", "pep", None) in identities(query)


async def test_server_items_list_the_room_service(tmp_path: Path) -> None:
    """Clients find multi-user chat through the server's disco#items (XEP-0045 §6.1)."""
    harness = await make_harness(tmp_path, features=["disco", "muc"])
    try:
        reply = await harness.ask(
            "alice",
            f"<iq type='get' id='d3' to='{harness.domain}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>",
        )
        query = reply.find(ITEMS)
        assert query is not None
        assert [item.get("jid") for item in query] == [f"chat.{harness.domain}"]
    finally:
        await harness.close()


async def test_server_items_are_empty_without_sub_services(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='get' id='d2' to='{h.domain}'><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
    )
    assert reply.get("type") == "result"
    query = reply.find(ITEMS)
    assert query is not None
    assert len(query) == 0


@pytest.mark.parametrize("namespace", [ns.DISCO_INFO, ns.DISCO_ITEMS])
async def test_unknown_node_at_server_is_item_not_found(h: Harness, namespace: str) -> None:
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='d3' to='{h.domain}'><query xmlns='{namespace}' node='nope'/></iq>",
    )
    assert reply.get("type") == "error"
    assert error_condition(reply) == "item-not-found"


async def test_own_account_info(h: Harness) -> None:
    reply = await h.ask("alice", f"<iq type='get' id='d4'><query xmlns='{ns.DISCO_INFO}'/></iq>")
    assert reply.get("type") == "result"
    assert reply.get("from") == f"alice@{h.domain}"
    query = reply.find(INFO)
    assert query is not None
    assert identities(query) == [("account", "registered", None)]
    assert {ns.DISCO_INFO, ns.DISCO_ITEMS, ns.VCARD} <= set(features(query))
    # Server-only features are not account features.
    assert ns.PING not in features(query)


async def test_other_account_info(h: Harness) -> None:
    await h.account("bob")
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='d5' to='bob@{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>",
    )
    assert reply.get("type") == "result"
    assert reply.get("from") == f"bob@{h.domain}"
    query = reply.find(INFO)
    assert query is not None
    assert identities(query) == [("account", "registered", None)]


async def test_info_for_missing_account_is_service_unavailable(h: Harness) -> None:
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='d6' to='ghost@{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>",
    )
    assert reply.get("type") == "error"
    assert reply.get("from") == f"ghost@{h.domain}"
    assert error_condition(reply) == "service-unavailable"


async def test_items_for_missing_account_are_empty(h: Harness) -> None:
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='d7' to='ghost@{h.domain}'>"
        f"<query xmlns='{ns.DISCO_ITEMS}' node='x'/></iq>",
    )
    assert reply.get("type") == "result"
    query = reply.find(ITEMS)
    assert query is not None
    assert len(query) == 0


@pytest.mark.parametrize("to", ["", "bob@example.test"])
async def test_account_items_are_empty(h: Harness, to: str) -> None:
    await h.account("bob")
    to_attr = f" to='{to}'" if to else ""
    reply = await h.ask(
        "alice", f"<iq type='get' id='d8'{to_attr}><query xmlns='{ns.DISCO_ITEMS}'/></iq>"
    )
    assert reply.get("type") == "result"
    query = reply.find(ITEMS)
    assert query is not None
    assert len(query) == 0


@pytest.mark.parametrize("namespace", [ns.DISCO_INFO, ns.DISCO_ITEMS])
async def test_unknown_node_at_account_is_item_not_found(h: Harness, namespace: str) -> None:
    await h.account("bob")
    reply = await h.ask(
        "alice",
        f"<iq type='get' id='d9' to='bob@{h.domain}'><query xmlns='{namespace}' node='n'/></iq>",
    )
    assert error_condition(reply) == "item-not-found"


async def test_disco_set_is_not_supported(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='set' id='d10' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    assert error_condition(reply) == "service-unavailable"


async def test_server_info_carries_the_contact_addresses(tmp_path: Path) -> None:
    """XEP-0157: the serverinfo form, from the [contact] settings."""
    from carewire.core.feature import FeatureConfig
    from carewire.features.disco import SERVERINFO

    addresses = (
        ("abuse-addresses", ("mailto:abuse@example.test",)),
        ("admin-addresses", ("mailto:xmpp@example.test", "xmpp:admin@example.test")),
    )
    h = await make_harness(
        tmp_path, features=["disco"], config=FeatureConfig(contact_addresses=addresses)
    )
    try:
        reply = await h.ask(
            "alice",
            f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>",
        )
    finally:
        await h.close()
    [form] = reply.iter(f"{{{ns.DATA_FORMS}}}x")
    assert form.get("type") == "result"
    values = {
        f.get("var"): [v.text for v in f.iter(f"{{{ns.DATA_FORMS}}}value")]
        for f in form.iter(f"{{{ns.DATA_FORMS}}}field")
    }
    assert values == {
        "FORM_TYPE": [SERVERINFO],
        "abuse-addresses": ["mailto:abuse@example.test"],
        "admin-addresses": ["mailto:xmpp@example.test", "xmpp:admin@example.test"],
    }


async def test_server_info_has_no_form_without_contact_addresses(h: Harness) -> None:
    reply = await h.ask(
        "alice", f"<iq type='get' id='d1' to='{h.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    assert list(reply.iter(f"{{{ns.DATA_FORMS}}}x")) == []
