"""Settings schemas: each field kind's normalisation and errors, and the console's messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from carewire.adapters.xmpp.actions import make_actions
from carewire.adapters.xmpp.gateway import GatewaySlot
from carewire.adapters.xmpp.settings import SETTINGS as XMPP_SETTINGS
from carewire.errors import ValidationError
from carewire.rules.settings import (
    HEADLINE,
    FieldKind,
    SettingField,
    SettingsError,
    describe,
    validate_settings,
)


def _action(name: str) -> tuple[SettingField, ...]:
    return next(spec.fields for spec in make_actions(GatewaySlot()) if spec.name == name)


def _problems(
    fields: Sequence[SettingField],
    settings: Mapping[str, object],
    check: Callback | None = None,
) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        validate_settings(fields, settings, check=check)
    return info.value.problems


class Callback:
    """A template check that records what it was asked and refuses texts containing 'bad'."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, FieldKind, bool, str]] = []

    def __call__(self, f: SettingField, text: str) -> None:
        self.calls.append((f.name, f.kind, f.allows_expressions, text))
        if "bad" in text:
            raise ValidationError(f"cannot read {text!r}")


def _one(kind: FieldKind, **kw: object) -> tuple[SettingField, ...]:
    return (SettingField(name="x", label="Thing", kind=kind, **kw),)  # type: ignore[arg-type]


ALERT = {"recipients": "nurse1", "subject": "Call", "message": "Room 4"}


# --- the console's message ----------------------------------------------------


def test_leave_conversation_with_nothing_names_both_required_fields_in_schema_order() -> None:
    with pytest.raises(SettingsError) as info:
        validate_settings(_action("Leave Conversation"), {})
    assert str(info.value) == (
        "The information provided is either invalid or incomplete.\n"
        "- Required: Recipients\n"
        "- Required: Conversation"
    )
    assert info.value.message == str(info.value)
    assert info.value.problems == ("Required: Recipients", "Required: Conversation")
    assert info.value.code == "invalid-settings"
    assert isinstance(info.value, ValidationError)


def test_required_fields_come_first_then_unknown_keys_then_invalid_values() -> None:
    problems = _problems(
        _action("Send Alert"),
        {"colour": "red", "priority": "Loud", "ttl": [1], "vibrate": "yes"},
    )
    assert problems == (
        "Required: Recipients",
        "Required: Subject",
        "Required: Message",
        "Unknown: colour",
        "Time-to-Live: must be a whole number",
        "Priority Level: must be one of Normal, Important, Urgent, Critical",
        "Vibrate Enabled: must be true or false",
    )


def test_blank_text_counts_as_missing() -> None:
    problems = _problems(_action("Expire Conversation"), {"conversation": "   "})
    assert problems == ("Required: Conversation",)


def test_headline_is_the_console_sentence() -> None:
    assert HEADLINE == "The information provided is either invalid or incomplete."
    assert str(SettingsError(["Required: X"])) == f"{HEADLINE}\n- Required: X"


# --- TEXT, LONG_TEXT ---------------------------------------------------------


@pytest.mark.parametrize("kind", [FieldKind.TEXT, FieldKind.LONG_TEXT])
def test_text_is_stripped_and_numbers_become_text(kind: FieldKind) -> None:
    fields = _one(kind)
    assert validate_settings(fields, {"x": "  hello  "}) == {"x": "hello"}
    assert validate_settings(fields, {"x": 42}) == {"x": "42"}
    assert validate_settings(fields, {"x": 1.5}) == {"x": "1.5"}
    assert validate_settings(fields, {}) == {}


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}])
def test_text_refuses_non_text(value: object) -> None:
    assert _problems(_one(FieldKind.TEXT), {"x": value}) == ("Thing: must be text",)


def test_text_is_checked_only_when_it_allows_expressions() -> None:
    check = Callback()
    validate_settings(_one(FieldKind.TEXT), {"x": "#{a}"}, check=check)
    assert check.calls == []
    validate_settings(
        _one(FieldKind.LONG_TEXT, allows_expressions=True), {"x": "#{a}"}, check=check
    )
    assert check.calls == [("x", FieldKind.LONG_TEXT, True, "#{a}")]


def test_a_failing_template_check_is_reported_under_the_label() -> None:
    fields = _one(FieldKind.TEXT, allows_expressions=True)
    assert _problems(fields, {"x": "#{bad}"}, Callback()) == ("Thing: cannot read '#{bad}'",)


# --- INTEGER -------------------------------------------------------------------


def test_integer_accepts_numbers_and_numeric_text() -> None:
    fields = _one(FieldKind.INTEGER)
    assert validate_settings(fields, {"x": 7}) == {"x": 7}
    assert validate_settings(fields, {"x": " 42 "}) == {"x": 42}
    assert validate_settings(fields, {"x": -3}) == {"x": -3}


@pytest.mark.parametrize("value", [True, 1.5, [1]])
def test_integer_refuses_non_numbers(value: object) -> None:
    assert _problems(_one(FieldKind.INTEGER), {"x": value}) == ("Thing: must be a whole number",)


def test_integer_refuses_non_numeric_text_in_plain_words() -> None:
    assert _problems(_one(FieldKind.INTEGER), {"x": "abc"}) == ("Thing: must be a whole number",)


def test_integer_expression_is_checked_and_kept_when_expressions_are_allowed() -> None:
    check = Callback()
    fields = _one(FieldKind.INTEGER, allows_expressions=True, minimum=1)
    assert validate_settings(fields, {"x": " #{level} "}, check=check) == {"x": "#{level}"}
    assert check.calls == [("x", FieldKind.INTEGER, True, " #{level} ")]
    assert _problems(fields, {"x": "#{bad}"}, Callback()) == ("Thing: cannot read '#{bad}'",)


def test_integer_expression_is_refused_when_expressions_are_not_allowed() -> None:
    problems = _problems(_one(FieldKind.INTEGER), {"x": "#{level}"})
    assert len(problems) == 1
    assert problems[0].startswith("Thing: ")


@pytest.mark.parametrize(("ttl", "ok"), [(0, False), (1, True), (64800, True), (64801, False)])
def test_mass_alert_time_to_live_bounds(ttl: int, ok: bool) -> None:
    settings = {**ALERT, "ttl": ttl}
    if ok:
        assert validate_settings(_action("Send Mass Alert"), settings)["ttl"] == ttl
    else:
        assert _problems(_action("Send Mass Alert"), settings) == (
            "Time-to-Live: must be between 1 and 64800 inclusive",
        )


def test_mass_alert_time_to_live_is_required() -> None:
    assert _problems(_action("Send Mass Alert"), ALERT) == ("Required: Time-to-Live",)


def test_minimum_only_integer_message_does_not_mention_none() -> None:
    problems = _problems(_action("Send Alert"), {**ALERT, "ttl": 0})
    assert len(problems) == 1
    assert "None" not in problems[0]


def test_maximum_only_integer_accepts_anything_below() -> None:
    fields = _one(FieldKind.INTEGER, maximum=5)
    assert validate_settings(fields, {"x": -100}) == {"x": -100}
    assert len(_problems(fields, {"x": 6})) == 1


# --- BOOLEAN, CHOICE -------------------------------------------------------------


def test_boolean_takes_real_booleans_and_defaults() -> None:
    fields = _one(FieldKind.BOOLEAN, default=False)
    assert validate_settings(fields, {}) == {"x": False}
    assert validate_settings(fields, {"x": True}) == {"x": True}
    for value in ("true", 1, "yes"):
        assert _problems(fields, {"x": value}) == ("Thing: must be true or false",)


def test_choice_takes_one_of_its_choices() -> None:
    fields = _one(FieldKind.CHOICE, choices=("Off", "13 hours"), default="Off")
    assert validate_settings(fields, {}) == {"x": "Off"}
    assert validate_settings(fields, {"x": " 13 hours "}) == {"x": "13 hours"}
    assert _problems(fields, {"x": "13 Hours"}) == ("Thing: must be one of Off, 13 hours",)
    assert _problems(fields, {"x": ["Off"]}) == ("Thing: must be text",)


def test_a_choice_allowing_expressions_takes_an_expression_for_the_action_to_check() -> None:
    fields = _one(FieldKind.CHOICE, choices=("Low", "High"), allows_expressions=True)
    check = Callback()
    assert validate_settings(fields, {"x": " #{level} "}, check=check) == {"x": "#{level}"}
    assert check.calls == [("x", FieldKind.CHOICE, True, "#{level}")]
    assert _problems(fields, {"x": "#{bad}"}, check=check) == ("Thing: cannot read '#{bad}'",)
    assert _problems(fields, {"x": "Medium"}) == ("Thing: must be one of Low, High",)


def test_explicit_none_is_missing_rather_than_the_default() -> None:
    fields = _one(FieldKind.CHOICE, choices=("Off",), default="Off")
    assert validate_settings(fields, {"x": None}) == {}


# --- LINES -------------------------------------------------------------------------


def test_lines_from_text_or_list_are_stripped_and_blank_lines_dropped() -> None:
    fields = _one(FieldKind.LINES)
    assert validate_settings(fields, {"x": " a \n\n b\n"}) == {"x": ["a", "b"]}
    assert validate_settings(fields, {"x": ["a", " ", 3]}) == {"x": ["a", "3"]}
    assert _problems(fields, {"x": {"a": 1}}) == ("Thing: must be text, one entry per line",)
    assert _problems(fields, {"x": ["a", None]}) == ("Thing: must be text",)


def test_lines_are_checked_one_by_one_when_they_allow_expressions() -> None:
    check = Callback()
    fields = _one(FieldKind.LINES, allows_expressions=True)
    validate_settings(fields, {"x": "#{a}\n#{b}"}, check=check)
    assert [c[3] for c in check.calls] == ["#{a}", "#{b}"]
    assert _problems(fields, {"x": "ok\n#{bad}"}, Callback()) == ("Thing: cannot read '#{bad}'",)


def test_required_lines_given_only_blank_text_are_missing() -> None:
    problems = _problems(
        _action("Leave Conversation"), {"recipients": "\n  \n", "conversation": "c"}
    )
    assert problems == ("Required: Recipients",)


def test_required_lines_given_only_blank_entries_are_missing() -> None:
    problems = _problems(
        _action("Leave Conversation"), {"recipients": ["", " "], "conversation": "c"}
    )
    assert problems == ("Required: Recipients",)


# --- UPDATES ---------------------------------------------------------------------


def test_updates_lines_become_path_value_pairs() -> None:
    fields = _one(FieldKind.UPDATES)
    text = "status = Escalated\n\nroom.status=Busy\nnote=a=b\nnote2="
    assert validate_settings(fields, {"x": text}) == {
        "x": [
            {"path": "status", "value": "Escalated"},
            {"path": "room.status", "value": "Busy"},
            {"path": "note", "value": "a=b"},
            {"path": "note2", "value": ""},
        ]
    }
    rows = [{"path": " level ", "value": 2}, "state=Open"]
    assert validate_settings(fields, {"x": rows}) == {
        "x": [{"path": "level", "value": "2"}, {"path": "state", "value": "Open"}]
    }


def test_updates_lines_without_equals_or_expression_are_refused() -> None:
    fields = _one(FieldKind.UPDATES)
    assert _problems(fields, {"x": "status=Open\nEscalated"}) == (
        "Thing: 'Escalated' is not in the form expression=value",
    )
    assert _problems(fields, {"x": " = Open"}) == (
        "Thing: an update needs an attribute expression before '='",
    )
    assert _problems(fields, {"x": 5}) == ("Thing: must be expression=value lines",)


def test_updates_check_the_path_as_an_expression_and_the_value_as_a_template() -> None:
    check = Callback()
    validate_settings(_one(FieldKind.UPDATES), {"x": "room.status=#{note}"}, check=check)
    assert check.calls == [
        ("x", FieldKind.EXPRESSION, False, "room.status"),
        ("x", FieldKind.TEXT, True, "#{note}"),
    ]
    assert _problems(_one(FieldKind.UPDATES), {"x": "bad=1"}, Callback()) == (
        "Thing: cannot read 'bad'",
    )


# --- PARAMETERS --------------------------------------------------------------------


def test_custom_parameters_need_both_parameter_and_value() -> None:
    fields = _action("Send Alert")
    base = {**ALERT, "ttl": 5}
    ok = validate_settings(
        fields,
        {
            **base,
            "custom_parameters": [
                {"parameter": " tone ", "value": "chime"},
                {"parameter": "", "value": ""},
                {"parameter": "volume", "value": 7},
            ],
        },
    )
    assert ok["custom_parameters"] == [
        {"parameter": "tone", "value": "chime"},
        {"parameter": "volume", "value": "7"},
    ]
    assert _problems(fields, {**base, "custom_parameters": [{"parameter": "tone"}]}) == (
        "Custom Parameters: the parameter 'tone' needs a value",
    )
    assert _problems(fields, {**base, "custom_parameters": [{"value": "chime"}]}) == (
        "Custom Parameters: the value 'chime' needs a parameter name",
    )
    assert _problems(fields, {**base, "custom_parameters": ["tone=chime"]}) == (
        "Custom Parameters: each entry needs a parameter and a value",
    )
    assert _problems(fields, {**base, "custom_parameters": "tone=chime"}) == (
        "Custom Parameters: must be a list of parameter/value pairs",
    )


def test_custom_parameter_value_zero_is_a_value() -> None:
    out = validate_settings(
        XMPP_SETTINGS,
        {"chat_domain": "h.example", "custom_parameters": [{"parameter": "volume", "value": 0}]},
    )
    assert out["custom_parameters"] == [{"parameter": "volume", "value": "0"}]


# --- TABLE, EXPRESSION, DATASET ------------------------------------------------------


def test_table_rows_get_column_defaults_and_missing_columns_name_the_row() -> None:
    rows = [
        {"pattern": "XXX-XXXX", "mask": "+1 555 XXX XXXX"},
        {"reference_name": "internal", "pattern": "XXXX"},
    ]
    problems = _problems(
        XMPP_SETTINGS, {"chat_domain": "h.example", "phone_number_transformations": rows}
    )
    assert problems == ("Phone Number Transformations: row 2: Required: Mask",)
    out = validate_settings(
        XMPP_SETTINGS, {"chat_domain": "h.example", "phone_number_transformations": rows[:1]}
    )
    assert out["phone_number_transformations"] == [
        {"active": True, "pattern": "XXX-XXXX", "mask": "+1 555 XXX XXXX"}
    ]


def test_table_rows_must_be_objects_with_known_columns() -> None:
    base = {"chat_domain": "h.example"}
    assert _problems(XMPP_SETTINGS, {**base, "patient_details": {"label": "MRN"}}) == (
        "Patient Details: must be a list of rows",
    )
    assert _problems(XMPP_SETTINGS, {**base, "patient_details": ["MRN"]}) == (
        "Patient Details: row 1 must be an object",
    )
    row = {"label": "MRN", "attribute_path": "mrn", "colour": "red", "hidden": "no"}
    assert _problems(XMPP_SETTINGS, {**base, "patient_details": [row]}) == (
        "Patient Details: row 1: Unknown: colour; Hidden: must be true or false",
    )


def test_table_columns_are_checked_with_the_same_check() -> None:
    columns = (SettingField(name="t", label="T", allows_expressions=True),)
    fields = _one(FieldKind.TABLE, columns=columns)
    check = Callback()
    assert validate_settings(fields, {"x": [{"t": "#{a}"}]}, check=check) == {"x": [{"t": "#{a}"}]}
    assert check.calls == [("t", FieldKind.TEXT, True, "#{a}")]
    assert _problems(fields, {"x": [{"t": "#{bad}"}]}, Callback()) == (
        "Thing: row 1: T: cannot read '#{bad}'",
    )


@pytest.mark.parametrize("kind", [FieldKind.EXPRESSION, FieldKind.DATASET])
def test_expression_and_dataset_are_always_checked(kind: FieldKind) -> None:
    check = Callback()
    assert validate_settings(_one(kind), {"x": " room.status "}, check=check) == {
        "x": "room.status"
    }
    assert check.calls == [("x", kind, False, "room.status")]
    assert _problems(_one(kind), {"x": "bad"}, Callback()) == ("Thing: cannot read 'bad'",)


def test_without_a_check_nothing_is_resolved() -> None:
    assert validate_settings(_one(FieldKind.DATASET), {"x": "NOPE"}) == {"x": "NOPE"}


def test_unknown_keys_are_reported() -> None:
    assert _problems(_one(FieldKind.TEXT), {"x": "a", "y": 1, "z": None}) == (
        "Unknown: y",
        "Unknown: z",
    )


# --- describe ------------------------------------------------------------------------


def test_describe_gives_the_schema_as_json() -> None:
    fields = (
        SettingField(name="name", label="Name", is_required=True, help="Who."),
        SettingField(
            name="ttl",
            label="Time-to-Live",
            kind=FieldKind.INTEGER,
            minimum=1,
            maximum=10,
            allows_expressions=True,
        ),
        SettingField(
            name="mode", label="Mode", kind=FieldKind.CHOICE, choices=("a", "b"), default="a"
        ),
        SettingField(
            name="rows",
            label="Rows",
            kind=FieldKind.TABLE,
            columns=(SettingField(name="on", label="On", kind=FieldKind.BOOLEAN, default=False),),
        ),
    )
    assert describe(fields) == [
        {
            "name": "name",
            "label": "Name",
            "kind": "text",
            "required": True,
            "expressions": False,
            "help": "Who.",
        },
        {
            "name": "ttl",
            "label": "Time-to-Live",
            "kind": "integer",
            "required": False,
            "expressions": True,
            "minimum": 1,
            "maximum": 10,
        },
        {
            "name": "mode",
            "label": "Mode",
            "kind": "choice",
            "required": False,
            "expressions": False,
            "choices": ["a", "b"],
            "default": "a",
        },
        {
            "name": "rows",
            "label": "Rows",
            "kind": "table",
            "required": False,
            "expressions": False,
            "columns": [
                {
                    "name": "on",
                    "label": "On",
                    "kind": "boolean",
                    "required": False,
                    "expressions": False,
                    "default": False,
                }
            ],
        },
    ]


def test_describe_covers_every_field_of_a_real_schema() -> None:
    described = describe(XMPP_SETTINGS)
    assert [d["name"] for d in described] == [f.name for f in XMPP_SETTINGS]
    by_name = {d["name"]: d for d in described}
    assert by_name["level1_prefix"]["default"] == "Primary"
    assert by_name["mobile_session_timeout"]["choices"] == ["Off", "13 hours", "7 days"]
