"""Bad input to PEP: each gets its XEP-0060 error, and other sessions and nodes are untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carewire.core.feature import FeatureConfig
from carewire.features.pep.model import PUBSUB, PUBSUB_OWNER
from tests.features.harness import Harness, error_condition, make_harness
from tests.features.pep_helpers import app_error, events, items_query, notify, online, publish
from tests.features.test_presence import befriend

FEATURES = ["roster", "presence", "disco", "pep"]
NODE = "urn:example:status"
AVATAR_DATA = "urn:xmpp:avatar:data"
P = f"{{{PUBSUB}}}"


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    config = FeatureConfig(
        pep_item_max_bytes=200, pep_avatar_max_bytes=400, pep_max_items=5, pep_max_nodes=3
    )
    harness = await make_harness(tmp_path, features=FEATURES, config=config)
    yield harness
    await harness.close()


def status(text: str) -> str:
    return f"<status xmlns='{NODE}'>{text}</status>"


def _set(inner: str, xmlns: str = PUBSUB, to: str = "") -> str:
    to_attr = f" to='{to}'" if to else ""
    return f"<iq type='set' id='bad'{to_attr}><pubsub xmlns='{xmlns}'>{inner}</pubsub></iq>"


BAD_INPUT = [
    # (stanza, condition, pubsub#errors condition)
    (publish(NODE, status("x" * 300), "big"), "not-acceptable", "payload-too-big"),
    (
        publish(NODE, status("y"), "i", {"pubsub#access_model": "whitelist"}),
        "conflict",
        "precondition-not-met",
    ),
    (
        publish(NODE, status("y"), "i", {"pubsub#persist_items": "false"}),
        "conflict",
        "precondition-not-met",
    ),
    (_set(f"<publish node='{NODE}'/>"), "bad-request", "item-required"),
    (_set(f"<publish node='{NODE}'><item id='e'/></publish>"), "bad-request", "payload-required"),
    (
        _set(f"<publish node='{NODE}'><item id='e'>{status('a')}{status('b')}</item></publish>"),
        "bad-request",
        "invalid-payload",
    ),
    (_set("<publish><item>" + status("a") + "</item></publish>"), "bad-request", "nodeid-required"),
    (_set(f"<retract node='{NODE}'><item id='nope'/></retract>"), "item-not-found", None),
    (_set(f"<retract node='{NODE}'/>"), "bad-request", "item-required"),
    (_set("<retract node='no-such-node'><item id='x'/></retract>"), "item-not-found", None),
    (
        _set(f"<subscribe node='{NODE}' jid='ana@example.test'/>"),
        "feature-not-implemented",
        "unsupported",
    ),
    (
        publish("fresh", status("a"), "a", {"pubsub#access_model": "roster"}),
        "not-acceptable",
        "unsupported-access-model",
    ),
    (
        publish("fresh", status("a"), "a", {"pubsub#max_items": "9999"}),
        "not-acceptable",
        None,
    ),
    (
        publish("fresh", status("a"), "a", {"pubsub#unknown_option": "1"}),
        "not-acceptable",
        None,
    ),
    (
        _set(
            f"<publish node='fresh'><item>{status('a')}</item></publish><publish-options>"
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:wrong"
            "</value></field></x></publish-options>"
        ),
        "bad-request",
        "invalid-options",
    ),
    (items_query(NODE, extra=" max_items='0'"), "bad-request", None),
    (publish("n" * 1024, status("a"), "a"), "not-acceptable", None),
    (publish(NODE, status("a"), "i" * 1024), "not-acceptable", None),
    (items_query(NODE, extra=" max_items='many'"), "bad-request", None),
    (
        _set(f"<configure node='{NODE}'/>", PUBSUB_OWNER).replace(
            "<configure node", "<affiliations node"
        ),
        "feature-not-implemented",
        None,
    ),
    (_set("<configure node='no-such-node'/>", PUBSUB_OWNER), "item-not-found", None),
]


@pytest.mark.parametrize(("stanza", "condition", "app"), BAD_INPUT)
async def test_bad_input_gets_its_error_and_leaves_the_rest_alone(
    h: Harness, stanza: str, condition: str, app: str | None
) -> None:
    ana, asink = await online(h, "ana", "phone", notify(NODE))
    bob, bsink = await online(h, "bob", "phone", notify(NODE))
    await befriend(h, ana, bob)
    await h.send(ana, publish(NODE, status("on shift"), "i"))
    asink.take()
    bsink.take()
    await h.send(ana, stanza)
    [reply] = asink.take()
    assert reply.get("type") == "error" and reply.get("id") in ("bad", "pub", "items")
    assert error_condition(reply) == condition
    assert app_error(reply) == app
    # Nobody else heard anything, and the node still holds what it held.
    assert bsink.take() == []
    items = (await h.ask("ana", items_query(NODE))).findall(f"{P}pubsub/{P}items/{P}item")
    assert [i.get("id") for i in items] == ["i"]
    assert await h.kernel.stores.pep.get_node("ana", "fresh") is None


async def test_writes_to_another_accounts_service_are_forbidden(h: Harness) -> None:
    ana, asink = await online(h, "ana", "phone", notify(NODE))
    await h.send(ana, publish(NODE, status("mine"), "i"))
    asink.take()
    bob_to_ana = [
        publish(NODE, status("theirs"), "i").replace("id='pub'", f"id='pub' to='ana@{h.domain}'"),
        _set(f"<retract node='{NODE}'><item id='i'/></retract>", to=f"ana@{h.domain}"),
        _set(f"<delete node='{NODE}'/>", PUBSUB_OWNER, to=f"ana@{h.domain}"),
    ]
    for stanza in bob_to_ana:
        reply = await h.ask("bob", stanza)
        assert error_condition(reply) == "forbidden"
    assert events(asink) == []
    items = (await h.ask("ana", items_query(NODE))).findall(f"{P}pubsub/{P}items/{P}item")
    assert items[0].findtext(f"{{{NODE}}}status") == "mine"


async def test_the_avatar_data_node_takes_bigger_items(h: Harness) -> None:
    data = "A" * 300  # over the item limit (200), under the avatar limit (400)
    reply = await h.ask(
        "ana", publish(AVATAR_DATA, f"<data xmlns='{AVATAR_DATA}'>{data}</data>", "a")
    )
    assert reply.get("type") == "result"
    reply = await h.ask(
        "ana", publish(AVATAR_DATA, f"<data xmlns='{AVATAR_DATA}'>{'A' * 500}</data>", "b")
    )
    assert error_condition(reply) == "not-acceptable" and app_error(reply) == "payload-too-big"


async def test_an_account_has_a_bounded_number_of_nodes(h: Harness) -> None:
    for n in range(3):
        assert (await h.ask("ana", publish(f"urn:n:{n}", status("a"), "a"))).get("type") == "result"
    reply = await h.ask("ana", publish("urn:n:3", status("a"), "a"))
    assert error_condition(reply) == "resource-constraint"
    create = (
        f"<iq type='set' id='c'><pubsub xmlns='{PUBSUB}'><create node='urn:n:4'/></pubsub></iq>"
    )
    assert error_condition(await h.ask("ana", create)) == "resource-constraint"
    # Existing nodes still take items.
    assert (await h.ask("ana", publish("urn:n:0", status("b"), "b"))).get("type") == "result"
