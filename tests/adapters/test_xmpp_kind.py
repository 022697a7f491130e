"""The XMPP adapter kind: its settings schema, its ten rule actions and what a firing does now."""

from __future__ import annotations

import dataclasses

from carewire.adapters import xmpp
from carewire.adapters.xmpp.settings import COMPONENT, SETTINGS
from carewire.assembly import Assembly
from carewire.datasets.definitions import builtin_datasets
from carewire.datasets.query import Filter, FilterOp, Query
from carewire.rules.model import Rule
from carewire.rules.settings import FieldKind, SettingField, validate_settings

ACTION_NAMES = [
    "Expire Conversation",
    "Leave Conversation",
    "Send Alert",
    "Send Mass Alert",
    "Send Invitation",
    "Send New Accept/Decline System Message",
    "Send New Message",
    "Send New System Message",
    "Start Conversation",
    "Update Presence",
]

#: The smallest valid settings of each action, on the USERS dataset.
MINIMAL: dict[str, dict[str, object]] = {
    "Expire Conversation": {"conversation": "#{login}"},
    "Leave Conversation": {"recipients": "#{login}", "conversation": "c"},
    "Send Alert": {"recipients": "#{login}", "subject": "s", "message": "m", "ttl": 10},
    "Send Mass Alert": {"recipients": "#{login}", "subject": "s", "message": "m", "ttl": 10},
    "Send Invitation": {"recipients": "#{login}", "conversation": "c"},
    "Send New Accept/Decline System Message": {"recipients": "#{login}", "sender": "x"},
    "Send New Message": {"recipients": "#{login}", "sender": "x", "message": "m"},
    "Send New System Message": {"recipients": "#{login}", "message": "m"},
    "Start Conversation": {"subject": "s", "recipients": "#{login}"},
    "Update Presence": {"recipients": "#{login}", "presence_type": "Available"},
}


def _fields() -> dict[str, SettingField]:
    return {f.name: f for f in SETTINGS}


def test_the_schema_has_every_setting_of_the_xmpp_adapter() -> None:
    f = _fields()
    expected = {
        "chat_domain": ("Chat Domain", FieldKind.TEXT),
        "help_link": ("Help Link", FieldKind.TEXT),
        "mobile_session_timeout": ("Mobile Session Timeout", FieldKind.CHOICE),
        "desktop_session_timeout": ("Desktop Session Timeout", FieldKind.CHOICE),
        "offline_message_timeout": ("Offline Message Timeout", FieldKind.CHOICE),
        "disable_acknowledgements": ("Disable Acknowledgments", FieldKind.BOOLEAN),
        "multiple_facility": ("Multiple Facility", FieldKind.BOOLEAN),
        "level1_prefix": ("Prefix for Assignment Level 1", FieldKind.TEXT),
        "level2_prefix": ("Prefix for Assignment Level 2", FieldKind.TEXT),
        "phone_number_transformations": ("Phone Number Transformations", FieldKind.TABLE),
        "patient_details": ("Patient Details", FieldKind.TABLE),
        "patient_location_transformations": ("Patient Location Transformations", FieldKind.TABLE),
        "custom_parameters": ("Custom Parameters", FieldKind.PARAMETERS),
    }
    assert {name: (x.label, x.kind) for name, x in f.items()} == expected
    assert [x.name for x in SETTINGS if x.is_required] == ["chat_domain"]


def test_choices_and_defaults() -> None:
    f = _fields()
    assert f["mobile_session_timeout"].choices == ("Off", "13 hours", "7 days")
    assert f["desktop_session_timeout"].choices[0] == "Off"
    assert {"15 minutes", "1 hour", "12 hours", "7 days"} <= set(
        f["desktop_session_timeout"].choices
    )
    assert f["offline_message_timeout"].choices[0] == "Default"
    assert {"1 hour", "1 day", "30 days"} <= set(f["offline_message_timeout"].choices)
    defaults = validate_settings(SETTINGS, {"chat_domain": "h.example"})
    assert defaults == {
        "chat_domain": "h.example",
        "mobile_session_timeout": "Off",
        "desktop_session_timeout": "Off",
        "offline_message_timeout": "Default",
        "disable_acknowledgements": False,
        "multiple_facility": False,
        "level1_prefix": "Primary",
        "level2_prefix": "Backup",
    }
    chosen = validate_settings(
        SETTINGS,
        {
            "chat_domain": "h.example",
            "mobile_session_timeout": "13 hours",
            "level1_prefix": "First",
            "level2_prefix": "Second",
        },
    )
    assert (chosen["mobile_session_timeout"], chosen["level1_prefix"]) == ("13 hours", "First")


def test_table_columns() -> None:
    f = _fields()

    def columns(name: str) -> list[tuple[str, bool]]:
        return [(c.name, c.is_required) for c in f[name].columns]

    assert columns("phone_number_transformations") == [
        ("reference_name", False),
        ("active", False),
        ("pattern", True),
        ("mask", True),
    ]
    assert columns("patient_details") == [
        ("label", True),
        ("attribute_path", True),
        ("hidden", False),
    ]
    assert columns("patient_location_transformations") == [
        ("reference_name", False),
        ("active", False),
        ("pattern", True),
        ("replacement", True),
    ]
    out = validate_settings(
        SETTINGS,
        {
            "chat_domain": "h.example",
            "patient_details": [{"label": "MRN", "attribute_path": "mrn"}],
            "patient_location_transformations": [{"pattern": "^(\\d+)$", "replacement": "Bed $1"}],
        },
    )
    assert out["patient_details"] == [{"label": "MRN", "attribute_path": "mrn", "hidden": False}]
    assert out["patient_location_transformations"] == [
        {"active": True, "pattern": "^(\\d+)$", "replacement": "Bed $1"}
    ]


def test_the_kind_is_a_singleton_with_builtin_datasets_and_ten_actions() -> None:
    kind = xmpp.make_kind(xmpp.GatewaySlot())
    assert kind.component == COMPONENT == "XMPP"
    assert kind.is_singleton is True
    assert kind.factory is None
    builtin = {ds.name for ds in builtin_datasets()}
    assert set(kind.required_datasets) <= builtin
    assert {"USERS", "CONVERSATIONS", "DELIVERIES", "PATIENTS"} <= set(kind.required_datasets)
    assert [a.name for a in kind.actions] == ACTION_NAMES
    assert {a.component for a in kind.actions} == {"XMPP"}


async def test_every_action_is_registered_and_without_a_server_each_firing_ends_in_error(
    platform: Assembly,
) -> None:
    p = platform
    assert [s.name for s in p.rules.actions.for_component("XMPP")] == ACTION_NAMES
    await p.adapters.create("XMPP", "Chat", is_enabled=True, settings={"chat_domain": "h.example"})
    for name in ACTION_NAMES:
        await p.rules.create(
            Rule(name=name, dataset="USERS", adapter="Chat", action=name, settings=MINIMAL[name])
        )
    await p.datasets.create("USERS", {"login": "nurse1"})
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()

    page = await p.datasets.query(
        "DELIVERIES",
        Query(filters=(Filter(field="interface_name", op=FilterOp.EQ, value="Chat"),)),
    )
    got = {str(r.get("rule")): (r.get("status"), str(r.get("status_text"))) for r in page.records}
    assert sorted(got) == sorted(ACTION_NAMES)
    for name, (status, text) in got.items():
        assert status == "Error"
        assert text == (
            f"{name}: no XMPP server runs in this process; start `carewire serve` "
            "(firings from the command line are handed to it)"
        )


async def test_a_process_without_the_server_hands_xmpp_firings_over(platform: Assembly) -> None:
    """The CLI's engine schedules XMPP firings due at once, for the server's scheduler."""
    p = platform
    p.engine.config = dataclasses.replace(p.engine.config, hand_over=frozenset({"XMPP"}))
    await p.adapters.create("XMPP", "Chat", is_enabled=True, settings={"chat_domain": "h.example"})
    await p.rules.create(
        Rule(
            name="tell",
            dataset="USERS",
            adapter="Chat",
            action="Send New System Message",
            settings={"recipients": "#{login}", "message": "Welcome"},
        )
    )
    await p.datasets.create("USERS", {"login": "nurse2"})
    while not p.engine._queue.empty():
        await p.engine.process(p.engine._queue.get_nowait())
        p.engine._queue.task_done()
    [delivery] = (await p.datasets.query("DELIVERIES", Query())).records
    assert delivery.get("status") == "Queued"
    due = await p.engine._store.due(p.engine._clock.now(), 10)
    assert [f.delivery_id for f in due] == [delivery.id]
