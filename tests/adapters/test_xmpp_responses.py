"""Alert responses written back into the data: the rule's Accept/Decline/Accept and Call updates.

The ward of :mod:`tests.world` (WARDS ←n:1— CALLS —m:n→ TEAMS) with its call
c1. The world's Send Alert rule ``call-alert`` on CALLS fired (a DELIVERIES
record names it and the call); a response applies the rule's updates for that
response to the call, its ward or its teams, and stores the responder's login
where the rule says.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from carewire.adapters.xmpp.gateway import ResponseApplied, ResponseError
from carewire.adapters.xmpp.responses import apply_response
from carewire.assembly import Assembly
from carewire.datasets.model import Origin, Record, RecordChanged
from carewire.datasets.paths import PathResolver
from carewire.datasets.query import Query
from carewire.datasets.service import Batch
from carewire.errors import ValidationError
from tests.adapters.conftest import START
from tests.world import (
    ALERT_SETTINGS,
    add_adapters,
    call_alert,
    create_rules,
    define_ward,
    seed_ward,
)


@pytest.fixture
async def p(platform: Assembly) -> Assembly:
    """The ward with its call c1, the two adapters and the rule ``call-alert`` on CALLS."""
    await define_ward(platform)
    await add_adapters(platform)
    await seed_ward(platform)
    await create_rules(platform, call_alert())
    return platform


async def _delivery(p: Assembly, *, rule: str = "call-alert", source: str = "") -> Record:
    call = await _call(p)
    return await p.datasets.create(
        "DELIVERIES",
        {
            "status": "Delivered",
            "triggered_at": START,
            "rule": rule,
            "source": source or f"CALLS/{call.id}",
            "interface_name": "XMPP",
        },
    )


async def _call(p: Assembly) -> Record:
    page = await p.datasets.query("CALLS", Query())
    return page.records[0]


async def _apply(
    p: Assembly, delivery: Record, action: str = "accept", **kw: object
) -> ResponseApplied:
    return await apply_response(
        datasets=p.datasets,
        resolver=PathResolver(p.registry, p.datasets.store),
        rules=p.rules,
        registry=p.registry,
        delivery=delivery,
        action=action,
        responder_login="nurse",
        now=START + timedelta(minutes=1),
        **kw,  # type: ignore[arg-type]
    )


async def _values(p: Assembly, dataset: str) -> dict[str, object]:
    page = await p.datasets.query(dataset, Query())
    return {str(r.get("name") or r.get("call_id")): r.get("status") for r in page.records}


async def test_accept_updates_the_record_and_linked_records_and_stores_the_responder(
    p: Assembly,
) -> None:
    events: list[RecordChanged] = []
    p.datasets.subscribe(events.append)
    delivery = await _delivery(p)
    applied = await _apply(p, delivery)
    call = await _call(p)
    assert call.get("status") == "Accepted"
    assert call.get("note") is None  # an empty value clears the attribute
    assert call.get("responder") == "nurse"
    assert await _values(p, "WARDS") == {"W1": "Busy c1"}
    assert applied.rule == "call-alert"
    assert applied.source == f"CALLS/{call.id}"
    assert applied.action == "accept"
    assert sorted(applied.updated) == sorted([("CALLS", int(call.id)), ("WARDS", 1)])
    assert applied.at == START + timedelta(minutes=1)
    written = [e for e in events if e.dataset in ("CALLS", "WARDS")]
    assert {e.origin for e in written} == {Origin(adapter="XMPP", actor="xmpp:nurse", depth=0)}


async def test_decline_applies_only_the_decline_updates(p: Assembly) -> None:
    await _apply(p, await _delivery(p), "decline")
    call = await _call(p)
    assert (call.get("status"), call.get("note"), call.get("responder")) == (
        "Declined",
        "old",
        "nurse",
    )
    assert await _values(p, "WARDS") == {"W1": "Free"}


async def test_accept_and_call_updates_every_record_of_a_to_many_link(p: Assembly) -> None:
    applied = await _apply(p, await _delivery(p), "accept-and-call")
    assert (await _call(p)).get("status") == "Calling"
    assert await _values(p, "TEAMS") == {"T1": "Paged by c1", "T2": "Paged by c1"}
    assert ("TEAMS", 1) in applied.updated and ("TEAMS", 2) in applied.updated


async def test_a_response_without_updates_stores_only_the_responder(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    settings = {k: v for k, v in ALERT_SETTINGS.items() if k != "decline"}
    await p.rules.update(rule.id, replace(rule, settings=settings))
    await _apply(p, await _delivery(p), "decline")
    call = await _call(p)
    assert (call.get("status"), call.get("responder")) == (None, "nurse")


async def test_without_a_responder_path_nothing_else_is_written(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    settings = {k: v for k, v in ALERT_SETTINGS.items() if k != "responder_path"}
    await p.rules.update(rule.id, replace(rule, settings=settings))
    applied = await _apply(p, await _delivery(p), "decline")
    assert (await _call(p)).get("responder") is None
    assert len(applied.updated) == 1


async def test_the_extra_writes_share_the_transaction(p: Assembly) -> None:
    async def fail(batch: Batch) -> None:
        await batch.update("WARDS", 1, {"status": "changed"})
        raise ValidationError("refused")

    with pytest.raises(ResponseError, match="refused"):
        await _apply(p, await _delivery(p), also=fail)
    assert (await _call(p)).get("status") is None
    assert await _values(p, "WARDS") == {"W1": "Free"}

    async def note(batch: Batch) -> None:
        await batch.update("WARDS", 1, {"status": "noted"})

    await _apply(p, await _delivery(p), "decline", also=note)
    assert await _values(p, "WARDS") == {"W1": "noted"}


async def test_a_value_the_data_refuses_changes_nothing(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    settings = {**ALERT_SETTINGS, "accept": "status=Accepted\nlevel=high #{call_id}"}
    await p.rules.update(rule.id, replace(rule, settings=settings))
    with pytest.raises(ResponseError, match="the accept updates were refused") as info:
        await _apply(p, await _delivery(p))
    assert info.value.condition == "internal-server-error"
    call = await _call(p)
    assert (call.get("status"), call.get("responder")) == (None, None)


async def test_an_update_ending_at_a_link_is_refused_with_the_reason(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    settings = {**ALERT_SETTINGS, "accept": "room=1"}
    await p.rules.update(rule.id, replace(rule, settings=settings))
    with pytest.raises(ResponseError, match="'room' ends at a link"):
        await _apply(p, await _delivery(p))


async def test_a_deleted_rule_is_reported(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    delivery = await _delivery(p)
    await p.rules.delete(rule.id)
    with pytest.raises(ResponseError, match="'call-alert' that sent this alert no longer exists"):
        await _apply(p, delivery)
    with pytest.raises(ResponseError) as info:
        await _apply(p, await _delivery(p, rule=""))
    assert info.value.condition == "item-not-found"


async def test_a_rule_that_no_longer_sends_alerts_is_refused(p: Assembly) -> None:
    rule = p.rules.find("call-alert")
    assert rule is not None and rule.id is not None
    changed = replace(
        rule,
        action="Send Mass Alert",
        settings={"recipients": "nurse", "subject": "S", "message": "M", "ttl": 5},
    )
    await p.rules.update(rule.id, changed)
    with pytest.raises(ResponseError, match="no longer sends alerts") as info:
        await _apply(p, await _delivery(p))
    assert info.value.condition == "not-acceptable"


async def test_a_deleted_record_is_reported(p: Assembly) -> None:
    delivery = await _delivery(p)
    call = await _call(p)
    await p.datasets.delete("CALLS", call.id)
    with pytest.raises(ResponseError, match=f"CALLS/{call.id} that triggered this alert") as info:
        await _apply(p, delivery)
    assert info.value.condition == "item-not-found"


@pytest.mark.parametrize(
    ("source", "message"),
    [("CALLS", "has no triggering record"), ("WARDS/1", "now watches CALLS, not WARDS")],
)
async def test_a_bad_source_is_reported(p: Assembly, source: str, message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        await _apply(p, await _delivery(p, source=source))


async def test_an_unknown_action_is_a_bad_request(p: Assembly) -> None:
    with pytest.raises(ResponseError, match="unknown response 'maybe'") as info:
        await _apply(p, await _delivery(p), "maybe")
    assert info.value.condition == "bad-request"


async def test_settings_that_no_longer_validate_are_reported(p: Assembly) -> None:
    # A definition changed under the rule: the path in its updates is gone.
    delivery = await _delivery(p)
    rule = p.rules.find("call-alert")
    assert rule is not None
    # as loaded from an older database
    p.rules._rules[int(rule.id or 0)] = replace(
        rule, settings={**ALERT_SETTINGS, "accept": "colour=red"}
    )
    with pytest.raises(ResponseError, match="invalid settings"):
        await _apply(p, delivery)
