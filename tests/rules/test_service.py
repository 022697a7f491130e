"""The rule service on a real database: validation when a rule is saved, changes, files.

Every refusal is checked for its message, since that is what an administrator
reads in the console or on the command line.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
import yaml
from sqlalchemy.engine import make_url

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.errors import ConflictError
from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, Trigger
from carewire.rules.service import RuleError, RuleNotFoundError
from carewire.rules.settings import HEADLINE, SettingsError
from carewire.storage.rules import SqlRuleStore
from tests.templates import prefill
from tests.world import CHAT, UPDATES, add_adapters, define_ward

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


async def _setup(p: Assembly) -> None:
    """The world's datasets, empty (CALLS.room n:1 ↔ WARDS.calls …), and its two adapters."""
    await define_ward(p)
    await add_adapters(p)


@pytest.fixture
async def platform(db_url: str) -> AsyncIterator[Assembly]:
    """A platform with the world's datasets and two adapters."""
    p = await assemble(Options(url=await prefill(db_url), clock=FakeClock(START)))
    try:
        await _setup(p)
        yield p
    finally:
        await p.close()


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Assembly]:
    """The same platform on SQLite only, for validation that never reaches storage."""
    p = await assemble(
        Options(
            url=await prefill(f"sqlite+aiosqlite:///{tmp_path / 'local.db'}"),
            clock=FakeClock(START),
        )
    )
    try:
        await _setup(p)
        yield p
    finally:
        await p.close()


@pytest.fixture
async def fresh_url(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second empty database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"carewire_t_{secrets.token_hex(8)}"
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _rule(**kw: object) -> Rule:
    """A valid Update Record rule on CALLS, with ``kw`` changed."""
    base = Rule(
        name="mark",
        dataset="CALLS",
        adapter=UPDATES,
        action="Update Record",
        settings={"updates": "status=Seen"},
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _all(*conditions: Condition) -> Group:
    return Group(mode=Mode.ALL, items=conditions)


# --- valid rules -------------------------------------------------------------


async def test_valid_rules_for_both_adapter_kinds_are_saved_and_reloaded(
    platform: Assembly,
) -> None:
    p = platform
    update = _rule(
        name="busy-room",
        purpose="A high call makes its room busy",
        trigger=Trigger(on_create=True, on_update=True, attributes=("status", "room")),
        conditions=_all(
            Condition(path="room.status", op=Op.EQUALS, value="Open"),
            Condition(path="level", op=Op.GREATER_OR_EQUAL, value="2"),
            Condition(path="priority", op=Op.IN, value=["High", "Critical"]),
            Condition(path="status", op=Op.CHANGED),
        ),
        settings={"updates": "room.status=Busy #{call_id}\nlevel=#{level}"},
    )
    create = _rule(
        name="open-ward",
        action="Create Record",
        settings={"dataset": "WARDS", "values": "name=#{call_id}\nstatus=Open", "upsert": True},
    )
    alert = _rule(
        name="page",
        adapter=CHAT,
        action="Send Alert",
        defer_seconds=30,
        settings={
            "recipients": ["nurse1", "#{room.name}"],
            "subject": "Call #{call_id}",
            "message": "Room #{room.name.upcase}",
            "ttl": "#{level}",
        },
    )
    start = _rule(
        name="talk",
        dataset="WARDS",
        adapter=CHAT,
        action="Start Conversation",
        settings={"subject": "#{name}", "recipients": "#{calls.call_id}"},
    )
    saved = [await p.rules.create(r) for r in (update, create, alert, start)]

    ids = [s.id for s in saved]
    assert None not in ids
    assert len(set(ids)) == 4
    for given, got in zip((update, create, alert, start), saved, strict=True):
        assert got == replace(given, id=got.id)
        assert got.id is not None
        assert p.rules.get(got.id) == got
        assert p.rules.find(got.name) == got
    assert [r.name for r in p.rules.list_rules("CALLS")] == ["busy-room", "open-ward", "page"]
    assert [c.rule.name for c in p.rules.compiled_for("WARDS")] == ["talk"]

    compiled = next(c for c in p.rules.compiled_for("CALLS") if c.rule.name == "busy-room")
    assert compiled.spec.name == "Update Record"
    assert isinstance(compiled.conditions, Group)
    values = [c.value for c in compiled.conditions.items if isinstance(c, Condition)]
    assert values == ["Open", 2, ("High", "Critical"), None]
    assert sorted(path.text for path in compiled.paths) == [
        "level",
        "priority",
        "room.status",
        "status",
    ]

    before = p.rules.list_rules()
    await p.rules.load()
    assert p.rules.list_rules() == before


# --- refusals ----------------------------------------------------------------

REFUSALS: list[tuple[Rule, list[str]]] = [
    (_rule(dataset="NOPE"), ["Dataset: unknown dataset 'NOPE'"]),
    (_rule(adapter="Pager"), ["Adapter: no adapter is named 'Pager'"]),
    (
        _rule(dataset="NOPE", adapter="Pager"),
        ["Dataset: unknown dataset 'NOPE'", "Adapter: no adapter is named 'Pager'"],
    ),
    (
        _rule(action="Send Alert"),
        [
            "Rule Action: the DataUpdate adapter has no action 'Send Alert' "
            "(it has: Update Record, Create Record)"
        ],
    ),
    (
        _rule(adapter=CHAT, action="Update Record"),
        [
            "Rule Action: the XMPP adapter has no action 'Update Record' "
            "(it has: Expire Conversation, Leave Conversation, Send Alert"
        ],
    ),
    (
        _rule(trigger=Trigger(on_create=False, on_update=False)),
        ["Trigger Events: choose Create Event, Update Event or both"],
    ),
    (
        _rule(trigger=Trigger(on_update=True, attributes=("status", "colour"))),
        ["Trigger Events: CALLS has no attribute or link 'colour'"],
    ),
    (
        _rule(conditions=_all(Condition(path="room.nope", op=Op.EQUALS, value="x"))),
        ["Trigger Conditions: CALLS: path 'room.nope': WARDS has no attribute or link 'nope'"],
    ),
    (
        _rule(conditions=_all(Condition(path="status.name", op=Op.EMPTY))),
        ["Trigger Conditions: CALLS: path 'status.name': 'status' is an attribute of CALLS"],
    ),
    (
        _rule(conditions=_all(Condition(path="room.status", op=Op.CHANGED_TO, value="Busy"))),
        [
            "Trigger Conditions: changed_to needs an attribute of CALLS itself, "
            "not the path 'room.status'"
        ],
    ),
    (
        _rule(conditions=_all(Condition(path="level", op=Op.GREATER, value="abc"))),
        ["Trigger Conditions: level greater: CALLS, level: 'abc' is not a valid Integer"],
    ),
    (
        _rule(conditions=_all(Condition(path="level", op=Op.IN, value=[1, "two"]))),
        ["Trigger Conditions: level in: CALLS, level: 'two' is not a valid Integer"],
    ),
    (
        _rule(
            trigger=Trigger(on_create=False),
            conditions=_all(Condition(path="nope", op=Op.EMPTY)),
        ),
        [
            "Trigger Events: choose Create Event, Update Event or both",
            "Trigger Conditions: CALLS: path 'nope': CALLS has no attribute or link 'nope'",
        ],
    ),
]


async def test_invalid_rules_are_refused_with_each_problem_named(platform: Assembly) -> None:
    for rule, expected in REFUSALS:
        with pytest.raises(RuleError) as info:
            await platform.rules.create(rule)
        problems = info.value.problems
        assert len(problems) == len(expected), (rule, problems)
        for got, want in zip(problems, expected, strict=True):
            assert got.startswith(want), (rule, got)
        assert str(info.value) == "rule 'mark': " + "; ".join(problems)
    assert platform.rules.list_rules() == []


async def test_incomplete_or_invalid_settings_are_refused_with_console_messages(
    platform: Assembly,
) -> None:
    p = platform

    async def refused(rule: Rule) -> SettingsError:
        with pytest.raises(SettingsError) as info:
            await p.rules.create(rule)
        return info.value

    assert str(await refused(_rule(action=""))) == f"{HEADLINE}\n- Required: Rule Action"
    leave = _rule(adapter=CHAT, action="Leave Conversation", settings={})
    assert str(await refused(leave)) == (
        "The information provided is either invalid or incomplete.\n"
        "- Required: Recipients\n"
        "- Required: Conversation"
    )
    bad_value = await refused(_rule(settings={"updates": "status=#{room.nope}"}))
    assert bad_value.problems == (
        "Updates: template '#{room.nope}': CALLS: path 'room.nope': "
        "WARDS has no attribute or link 'nope'",
    )
    bad_path = await refused(_rule(settings={"updates": "room.colour=Busy"}))
    assert bad_path.problems == (
        "Updates: CALLS: path 'room.colour': WARDS has no attribute or link 'colour'",
    )
    bad_subject = await refused(
        _rule(
            adapter=CHAT,
            action="Send Mass Alert",
            settings={"recipients": "n", "subject": "#{nope}", "message": "m", "ttl": 64801},
        )
    )
    assert bad_subject.problems == (
        "Subject: template '#{nope}': CALLS: path 'nope': CALLS has no attribute or link 'nope'",
        "Time-to-Live: must be between 1 and 64800 inclusive",
    )
    assert p.rules.list_rules() == []


async def test_create_record_into_an_unknown_dataset_is_a_settings_problem(
    local: Assembly,
) -> None:
    rule = _rule(action="Create Record", settings={"dataset": "NOPE", "values": "a=b"})
    with pytest.raises(SettingsError) as info:
        await local.rules.create(rule)
    assert info.value.problems == ("Dataset: unknown dataset 'NOPE'",)


# --- changes -----------------------------------------------------------------


async def test_update_set_active_delete_and_unique_names(platform: Assembly) -> None:
    p = platform
    first = await p.rules.create(_rule(name="first"))
    second = await p.rules.create(_rule(name="second"))
    assert first.id is not None
    assert second.id is not None

    with pytest.raises(ConflictError, match="a rule named 'first' already exists"):
        await p.rules.create(_rule(name="first", purpose="again"))
    with pytest.raises(ConflictError, match="a rule named 'first' already exists"):
        await p.rules.update(second.id, replace(second, name="first"))
    assert p.rules.get(second.id).name == "second"
    assert [r.name for r in p.rules.list_rules()] == ["first", "second"]

    changed = await p.rules.update(first.id, replace(first, settings={"updates": "level=3"}))
    assert changed.id == first.id
    assert p.rules.get(first.id).settings == {"updates": "level=3"}
    with pytest.raises(RuleError, match="unknown dataset 'NOPE'"):
        await p.rules.update(first.id, replace(first, dataset="NOPE"))
    assert p.rules.get(first.id) == changed
    with pytest.raises(RuleNotFoundError, match="no rule with id 9999"):
        await p.rules.update(9999, first)

    off = await p.rules.set_active(first.id, False)
    assert off.is_active is False
    assert [c.rule.name for c in p.rules.compiled_for("CALLS")] == ["second"]
    await p.rules.set_active(first.id, True)
    assert [c.rule.name for c in p.rules.compiled_for("CALLS")] == ["first", "second"]

    await p.rules.delete(second.id)
    with pytest.raises(RuleNotFoundError):
        p.rules.get(second.id)
    with pytest.raises(RuleNotFoundError):
        await p.rules.delete(second.id)
    assert p.rules.find("second") is None

    await p.rules.load()
    assert p.rules.list_rules() == [changed]
    assert p.rules.get(first.id).settings == {"updates": "level=3"}


async def test_compiled_for_skips_inactive_rules_and_rules_that_no_longer_compile(
    platform: Assembly, caplog: pytest.LogCaptureFixture
) -> None:
    p = platform
    await p.rules.create(_rule(name="on"))
    await p.rules.create(_rule(name="off", is_active=False))
    # A rule saved by an older release whose action this adapter no longer has.
    await SqlRuleStore(p.db).insert(_rule(name="stale", action="Send Alert"), START)
    await p.rules.load()
    assert [r.name for r in p.rules.list_rules("CALLS")] == ["on", "off", "stale"]
    with caplog.at_level(logging.ERROR, logger="carewire.rules.service"):
        assert [c.rule.name for c in p.rules.compiled_for("CALLS")] == ["on"]
    assert any("stale" in r.getMessage() for r in caplog.records)
    assert p.rules.compiled_for("WARDS") == ()


# --- rule files --------------------------------------------------------------


async def test_export_then_import_into_a_fresh_database_creates_then_updates(
    platform: Assembly, fresh_url: str
) -> None:
    p = platform
    await p.rules.create(
        _rule(
            name="b-escalate",
            defer_seconds=60,
            conditions=_all(Condition(path="level", op=Op.GREATER, value=2)),
            settings={"updates": "status=Escalated"},
        )
    )
    await p.rules.create(_rule(name="a-mark", is_active=False))
    await p.rules.create(
        _rule(
            name="0-ward",
            dataset="WARDS",
            adapter=CHAT,
            action="Expire Conversation",
            settings={"conversation": "#{name}"},
        )
    )
    exported = p.rules.export()
    assert [(d["dataset"], d["name"]) for d in exported] == [
        ("CALLS", "a-mark"),
        ("CALLS", "b-escalate"),
        ("WARDS", "0-ward"),
    ]
    assert [d["name"] for d in p.rules.export("WARDS")] == ["0-ward"]
    text = yaml.safe_dump(exported, sort_keys=False)

    q = await assemble(Options(url=fresh_url, clock=FakeClock(START)))
    try:
        await _setup(q)
        assert await q.rules.import_rules(yaml.safe_load(text)) == (3, 0)
        assert q.rules.export() == exported
        ids = {r.name: r.id for r in q.rules.list_rules()}

        again = yaml.safe_load(text)
        again[1]["purpose"] = "changed"
        again[1]["defer_seconds"] = 90
        assert await q.rules.import_rules(again) == (0, 3)
        escalate = q.rules.find("b-escalate")
        assert escalate is not None
        assert (escalate.purpose, escalate.defer_seconds) == ("changed", 90)
        assert {r.name: r.id for r in q.rules.list_rules()} == ids
        await q.rules.load()
        assert q.rules.export()[1]["purpose"] == "changed"
    finally:
        await q.close()


async def test_an_import_with_an_invalid_rule_saves_nothing_and_lists_each_problem(
    platform: Assembly,
) -> None:
    p = platform
    kept = await p.rules.create(_rule(name="kept", purpose="original"))
    data: list[object] = [
        {
            "name": "kept",
            "purpose": "overwritten?",
            "dataset": "CALLS",
            "adapter": "Data",
            "action": "Update Record",
            "settings": {"updates": "status=x"},
        },
        {"name": "new", "dataset": "NOPE", "adapter": "Data", "action": "Update Record"},
        "not a rule",
        {"name": "unsettled", "dataset": "CALLS", "adapter": "Data", "action": "Update Record"},
    ]
    with pytest.raises(RuleError) as info:
        await p.rules.import_rules(data)
    assert info.value.problems == (
        "#2: rule 'new': Dataset: unknown dataset 'NOPE'",
        "#3: a rule must be a mapping of its fields",
        f"#4: {HEADLINE}\n- Required: Updates",
    )
    assert p.rules.list_rules() == [kept]
    await p.rules.load()
    assert p.rules.list_rules() == [kept]

    twice: dict[str, object] = {
        "name": "twice",
        "dataset": "CALLS",
        "adapter": "Data",
        "action": "Update Record",
        "settings": {"updates": "status=x"},
    }
    with pytest.raises(RuleError) as info:
        await p.rules.import_rules([twice, dict(twice)])
    assert info.value.problems == ("the name 'twice' appears twice",)
    assert p.rules.list_rules() == [kept]


async def test_an_import_with_an_unknown_target_dataset_lists_the_problem(
    local: Assembly,
) -> None:
    data = [
        {
            "name": "copy",
            "dataset": "CALLS",
            "adapter": "Data",
            "action": "Create Record",
            "settings": {"dataset": "NOPE", "values": "a=b"},
        }
    ]
    with pytest.raises(RuleError) as info:
        await local.rules.import_rules(data)
    assert info.value.problems[0].startswith("#1: ")
