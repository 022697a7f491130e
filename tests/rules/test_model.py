"""Rules as data: the YAML/JSON form, its round trip and every refusal of rule_from_data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import yaml

from carewire.errors import ValidationError
from carewire.rules.conditions import Condition, ConditionError, Group, Mode, Op
from carewire.rules.model import DeliveryStatus, Rule, Trigger, rule_from_data, rule_to_data

FULL = Rule(
    name="escalate",
    purpose="Still open after two minutes",
    dataset="NURSE_CALLS",
    adapter="Data",
    action="Update Record",
    trigger=Trigger(on_create=False, on_update=True, attributes=("status", "priority")),
    conditions=Group(
        mode=Mode.ALL,
        items=(
            Condition(path="status", op=Op.CHANGED_TO, value="Open"),
            Group(
                mode=Mode.ANY,
                items=(
                    Condition(path="priority", op=Op.IN, value=("High", "Critical")),
                    Condition(path="room.unit.name", op=Op.EMPTY),
                ),
            ),
        ),
    ),
    defer_seconds=120,
    skip_originating_adapter=True,
    is_active=False,
    settings={"updates": "level=2", "tags": ["a", "b"]},
)

MINIMAL: dict[str, object] = {"name": "r", "dataset": "CALLS", "adapter": "Data"}


def test_to_data_is_the_documented_shape_without_the_id() -> None:
    data = rule_to_data(replace(FULL, id=12))
    assert data == {
        "name": "escalate",
        "purpose": "Still open after two minutes",
        "dataset": "NURSE_CALLS",
        "adapter": "Data",
        "action": "Update Record",
        "active": False,
        "trigger": {"create": False, "update": True, "attributes": ["status", "priority"]},
        "conditions": {
            "all": [
                {"path": "status", "op": "changed_to", "value": "Open"},
                {
                    "any": [
                        {"path": "priority", "op": "in", "value": ["High", "Critical"]},
                        {"path": "room.unit.name", "op": "empty"},
                    ]
                },
            ]
        },
        "defer_seconds": 120,
        "skip_originating_adapter": True,
        "settings": {"updates": "level=2", "tags": ["a", "b"]},
    }


def test_round_trip_keeps_every_field() -> None:
    assert rule_from_data(rule_to_data(FULL)) == FULL
    assert rule_from_data(rule_to_data(FULL), rule_id=7) == replace(FULL, id=7)


def test_round_trip_through_json_and_yaml_text() -> None:
    as_json = json.loads(json.dumps(rule_to_data(FULL)))
    as_yaml = yaml.safe_load(yaml.safe_dump(rule_to_data(FULL)))
    assert rule_from_data(as_json) == FULL
    assert rule_from_data(as_yaml) == FULL


def test_dates_in_condition_values_are_written_as_iso_text() -> None:
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    rule = replace(
        FULL, conditions=Group(mode=Mode.ALL, items=(Condition(path="t", op=Op.LESS, value=at),))
    )
    data = rule_to_data(rule)
    assert data["conditions"] == {"all": [{"path": "t", "op": "less", "value": at.isoformat()}]}
    json.dumps(data)  # serialisable as is


def test_minimal_data_takes_the_defaults() -> None:
    rule = rule_from_data({**MINIMAL, "name": "  r  ", "dataset": " CALLS "})
    assert rule == Rule(name="r", dataset="CALLS", adapter="Data", action="")
    assert rule.trigger == Trigger(on_create=True, on_update=False, attributes=())
    assert rule.conditions == Group(mode=Mode.ALL, items=())
    assert (rule.defer_seconds, rule.is_active, rule.skip_originating_adapter) == (0, True, False)
    assert rule.id is None


def test_null_optional_parts_are_empty() -> None:
    rule = rule_from_data(
        {**MINIMAL, "trigger": None, "settings": None, "conditions": None, "defer_seconds": None}
    )
    assert rule.trigger == Trigger()
    assert rule.settings == {}
    assert rule.defer_seconds == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["name", "r"], "a rule must be a mapping of its fields"),
        ({**MINIMAL, "trigger": ["create"]}, "rule 'r': trigger must be a mapping"),
        ({**MINIMAL, "settings": "a=b"}, "rule 'r': settings must be a mapping"),
        (
            {**MINIMAL, "trigger": {"attributes": "status"}},
            "rule 'r': trigger.attributes must be a list of names",
        ),
        (
            {**MINIMAL, "trigger": {"attributes": ["status", 3]}},
            "rule 'r': trigger.attributes must be a list of names",
        ),
        ({"dataset": "CALLS", "adapter": "Data"}, "rule: name is required"),
        ({**MINIMAL, "name": "   "}, "rule '   ': name is required"),
        ({**MINIMAL, "name": 5}, "rule 5: name is required"),
        ({"name": "r", "adapter": "Data"}, "rule 'r': dataset is required"),
        ({"name": "r", "dataset": "CALLS"}, "rule 'r': adapter is required"),
        (
            {**MINIMAL, "trigger": {"create": "yes"}},
            "rule 'r': create must be true or false",
        ),
        ({**MINIMAL, "trigger": {"update": 1}}, "rule 'r': update must be true or false"),
        ({**MINIMAL, "active": "no"}, "rule 'r': active must be true or false"),
        (
            {**MINIMAL, "skip_originating_adapter": None},
            "rule 'r': skip_originating_adapter must be true or false",
        ),
        (
            {**MINIMAL, "defer_seconds": -1},
            "rule 'r': defer_seconds must be a whole number of seconds, 0 or more",
        ),
        (
            {**MINIMAL, "defer_seconds": "60"},
            "rule 'r': defer_seconds must be a whole number of seconds, 0 or more",
        ),
        (
            {**MINIMAL, "defer_seconds": 1.5},
            "rule 'r': defer_seconds must be a whole number of seconds, 0 or more",
        ),
        (
            {**MINIMAL, "defer_seconds": True},
            "rule 'r': defer_seconds must be a whole number of seconds, 0 or more",
        ),
    ],
)
def test_invalid_data_is_refused_with_the_field_named(data: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        rule_from_data(data)
    assert str(info.value).startswith(message)


def test_malformed_conditions_name_their_location() -> None:
    data = {**MINIMAL, "conditions": {"all": [{"path": "status", "op": "resembles"}]}}
    with pytest.raises(ConditionError) as info:
        rule_from_data(data)
    assert info.value.where == "conditions.all[0]"
    assert "unknown operator 'resembles'" in str(info.value)


def test_a_bare_list_of_conditions_is_an_all_group() -> None:
    rule = rule_from_data({**MINIMAL, "conditions": [{"path": "a", "op": "not_empty"}]})
    assert rule.conditions == Group(mode=Mode.ALL, items=(Condition(path="a", op=Op.NOT_EMPTY),))


def test_delivery_states_are_spelt_as_in_deliveries() -> None:
    assert [s.value for s in DeliveryStatus] == [
        "Queued",
        "Processing",
        "Pending",
        "Delivered",
        "Error",
        "Cancelled",
    ]


def test_settings_read_from_yaml_become_plain_json_values() -> None:
    import datetime as dt

    rule = rule_from_data(
        {
            "name": "r",
            "dataset": "BEDS",
            "adapter": "Data",
            "action": "Update Record",
            "settings": {"updates": "x=1", "since": dt.date(2026, 1, 31), "n": [1, {"a": True}]},
        }
    )
    assert rule.settings == {"updates": "x=1", "since": "2026-01-31", "n": [1, {"a": True}]}
    with pytest.raises(ValidationError, match="settings: set is not a setting value"):
        rule_from_data(
            {"name": "r", "dataset": "B", "adapter": "A", "action": "X", "settings": {"s": {1}}}
        )
