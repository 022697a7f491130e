"""The adapter manager on a real database: instances, the singleton rule, datasets, supervision.

Supervision is tested with a small adapter kind registered for the test; its
runtime crashes when the test says so, which makes every state the manager
reports observable in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from carewire.adapters import manager as manager_module
from carewire.adapters.base import AdapterConfig, AdapterKind
from carewire.adapters.manager import Health, State, UnknownAdapterError
from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.datasets.definitions import builtin_datasets
from carewire.errors import ConflictError, ValidationError
from carewire.rules.model import Rule
from carewire.rules.settings import HEADLINE, SettingField, SettingsError

XMPP = {"chat_domain": "h.example"}

STAFF = AdapterKind(
    component="Staff",
    description="A test kind that keeps its users in a USERS dataset.",
    settings=(SettingField(name="host", label="Host", is_required=True),),
    required_datasets=("USERS",),
)


# --- create, validate, rename, remove ----------------------------------------


async def test_create_validates_name_kind_and_settings_and_fills_defaults(
    platform: Assembly,
) -> None:
    m = platform.adapters
    with pytest.raises(SettingsError) as info:
        await m.create("XMPP", "Chat")
    assert str(info.value) == f"{HEADLINE}\n- Required: Chat Domain"
    with pytest.raises(SettingsError) as info:
        await m.create("XMPP", "Chat", settings={**XMPP, "mobile_session_timeout": "1 day"})
    assert info.value.problems == ("Mobile Session Timeout: must be one of Off, 13 hours, 7 days",)
    assert m.list() == []

    chat = await m.create("XMPP", "  Chat  ", is_enabled=True, settings=XMPP)
    assert chat.id is not None
    assert chat.reference_name == "Chat"
    assert chat.settings == {
        "chat_domain": "h.example",
        "mobile_session_timeout": "Off",
        "desktop_session_timeout": "Off",
        "offline_message_timeout": "Default",
        "disable_acknowledgements": False,
        "multiple_facility": False,
        "level1_prefix": "Primary",
        "level2_prefix": "Backup",
    }
    assert chat.required_datasets["USERS"] == "USERS"
    assert set(chat.required_datasets) == set(m.kind("XMPP").required_datasets)
    assert m.get("Chat") == chat
    assert m.component_of("Chat") == "XMPP"
    assert m.component_of("Nope") is None

    await m.load()
    assert m.list() == [chat]

    await m.create("DataUpdate", "Data")
    with pytest.raises(ConflictError, match="an adapter named 'Data' already exists"):
        await m.create("DataUpdate", " Data ")
    with pytest.raises(ConflictError, match="an adapter named 'Data' already exists"):
        await m.create("XMPP", "Data", settings=XMPP)
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValidationError, match="Reference Name: 1 to 200 characters"):
            await m.create("DataUpdate", bad)
    assert (await m.create("DataUpdate", "y" * 200)).reference_name == "y" * 200
    with pytest.raises(UnknownAdapterError, match=r"unknown component 'Pager' \(known: "):
        await m.create("Pager", "P")
    with pytest.raises(UnknownAdapterError, match="no adapter is named 'Nope'"):
        m.get("Nope")
    with pytest.raises(ValueError, match="registered twice"):
        m.register_kind(AdapterKind(component="XMPP"))
    assert [k.component for k in m.kinds()] == [
        "AssignmentManager",
        "DataUpdate",
        "HL7 ADT",
        "PCD Alarms",
        "XMPP",
    ]


async def test_only_one_xmpp_adapter_can_be_enabled(platform: Assembly) -> None:
    m = platform.adapters
    await m.create("XMPP", "Chat A", is_enabled=True, settings=XMPP)
    with pytest.raises(ConflictError) as info:
        await m.create("XMPP", "Chat B", is_enabled=True, settings=XMPP)
    assert str(info.value) == (
        "only one XMPP adapter can be enabled at a time; disable 'Chat A' first"
    )
    assert [c.reference_name for c in m.list()] == ["Chat A"]

    second = await m.create("XMPP", "Chat B", settings=XMPP)
    assert second.is_enabled is False
    with pytest.raises(ConflictError, match="disable 'Chat A' first"):
        await m.enable("Chat B")
    assert m.get("Chat B").is_enabled is False
    # Saving the enabled one again is not a conflict with itself.
    await m.update("Chat A", settings={"chat_domain": "new.example"})

    await m.disable("Chat A")
    assert (await m.enable("Chat B")).is_enabled is True
    await m.load()
    assert [(c.reference_name, c.is_enabled) for c in m.list()] == [
        ("Chat A", False),
        ("Chat B", True),
    ]


async def test_list_search_and_rename(platform: Assembly) -> None:
    m = platform.adapters
    await m.create("DataUpdate", "Data Feed", is_enabled=True)
    await m.create("DataUpdate", "archive updates")
    await m.create("XMPP", "Chat", is_enabled=True, settings=XMPP)

    def names(search: str = "", *, include_disabled: bool = True) -> list[str]:
        return [c.reference_name for c in m.list(include_disabled=include_disabled, search=search)]

    assert names() == ["archive updates", "Chat", "Data Feed"]
    assert names(include_disabled=False) == ["Chat", "Data Feed"]
    assert names("xmpp") == ["Chat"]
    assert names("DATA") == ["archive updates", "Data Feed"]
    assert names("  feed ") == ["Data Feed"]
    assert names("data", include_disabled=False) == ["Data Feed"]
    assert names("pager") == []

    renamed = await m.update("Chat", new_reference_name="Main Chat")
    assert renamed.reference_name == "Main Chat"
    assert renamed.is_enabled is True
    assert renamed.settings == m.get("Main Chat").settings
    with pytest.raises(UnknownAdapterError):
        m.get("Chat")
    with pytest.raises(ConflictError, match="an adapter named 'Data Feed' already exists"):
        await m.update("Main Chat", new_reference_name="Data Feed")
    with pytest.raises(SettingsError, match="Required: Chat Domain"):
        await m.update("Main Chat", settings={"help_link": "https://help.example"})
    assert m.get("Main Chat").settings["chat_domain"] == "h.example"
    assert names("main") == ["Main Chat"]
    await m.load()
    assert names() == ["archive updates", "Data Feed", "Main Chat"]


async def test_an_adapter_used_by_rules_cannot_be_removed_or_renamed(platform: Assembly) -> None:
    p = platform
    await p.adapters.create("DataUpdate", "Data", is_enabled=True)
    rule = await p.rules.create(
        Rule(
            name="mark-user",
            dataset="USERS",
            adapter="Data",
            action="Update Record",
            settings={"updates": "title=Seen"},
        )
    )
    assert rule.id is not None
    with pytest.raises(ConflictError) as info:
        await p.adapters.remove("Data")
    assert str(info.value) == (
        "1 rule(s) use the adapter 'Data' (mark-user); "
        "delete them or move them to another adapter first"
    )
    with pytest.raises(ConflictError, match="it cannot be renamed"):
        await p.adapters.update("Data", new_reference_name="Data 2")
    assert p.adapters.get("Data").reference_name == "Data"

    await p.rules.delete(rule.id)
    await p.adapters.remove("Data")
    with pytest.raises(UnknownAdapterError):
        p.adapters.get("Data")
    assert p.adapters.view("Data") is None
    with pytest.raises(UnknownAdapterError):
        await p.adapters.remove("Data")
    await p.adapters.load()
    assert p.adapters.list() == []


# --- required datasets -------------------------------------------------------


async def test_required_datasets_are_created_from_the_builtin_definition(
    platform: Assembly,
) -> None:
    p = platform
    p.adapters.register_kind(STAFF)
    assert "STAFF_USERS" not in p.registry
    staff = await p.adapters.create(
        "Staff", "Staff", settings={"host": "h"}, required_datasets={"USERS": "STAFF_USERS"}
    )
    assert staff.required_datasets == {"USERS": "STAFF_USERS"}
    users = next(ds for ds in builtin_datasets() if ds.name == "USERS")
    created = p.registry.get("STAFF_USERS")
    assert created.attributes == users.attributes
    assert created.description == users.description
    # The new dataset is usable at once.
    rec = await p.datasets.create("STAFF_USERS", {"login": "nurse1"})
    assert (await p.datasets.get("STAFF_USERS", rec.id)).get("login") == "nurse1"

    # Without a choice the role's own dataset is used (it exists, so nothing is created).
    plain = await p.adapters.create("Staff", "Staff 2", settings={"host": "h"})
    assert plain.required_datasets == {"USERS": "USERS"}

    with pytest.raises(ValidationError, match="Staff does not use the dataset role"):
        await p.adapters.create(
            "Staff", "Staff 3", settings={"host": "h"}, required_datasets={"BEDS": "MY_BEDS"}
        )
    assert "MY_BEDS" not in p.registry
    assert "Staff 3" not in [c.reference_name for c in p.adapters.list()]


async def test_a_refused_create_creates_no_dataset(local: Assembly) -> None:
    p = local
    await p.adapters.create("XMPP", "Chat", is_enabled=True, settings=XMPP)
    with pytest.raises(ConflictError):
        await p.adapters.create(
            "XMPP",
            "Chat B",
            is_enabled=True,
            settings=XMPP,
            required_datasets={"USERS": "OTHER_USERS"},
        )
    assert "OTHER_USERS" not in p.registry


# --- supervision -------------------------------------------------------------
#
# Supervision is about tasks, not storage, so these tests run on SQLite only.


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Assembly]:
    """A platform on a SQLite file."""
    p = await assemble(
        Options(url=f"sqlite+aiosqlite:///{tmp_path / 'local.db'}", clock=FakeClock())
    )
    try:
        yield p
    finally:
        await p.close()


class _Script:
    """Drives the test runtimes: attempt n crashes when ``crash[n]`` is set."""

    def __init__(self, crashes: int) -> None:
        self.crash = [asyncio.Event() for _ in range(crashes)]
        self.started: list[str] = []
        self.cancelled: list[str] = []


class _Runtime:
    def __init__(self, script: _Script, config: AdapterConfig) -> None:
        self._script = script
        self._name = config.reference_name
        self._attempt = sum(1 for n in script.started if n == self._name)

    async def run(self) -> None:
        self._script.started.append(self._name)
        try:
            if self._attempt < len(self._script.crash):
                await self._script.crash[self._attempt].wait()
                raise RuntimeError(f"boom {self._attempt + 1}")
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self._script.cancelled.append(self._name)
            raise

    def health(self) -> str:
        return f"attempt {self._attempt + 1}"


def _kind(script: _Script) -> AdapterKind:
    return AdapterKind(
        component="Pump",
        settings=(SettingField(name="host", label="Host", is_required=True),),
        factory=lambda config: _Runtime(script, config),
    )


async def _until(check: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``check`` holds (the supervisor runs in between)."""
    try:
        async with asyncio.timeout(5):
            while not check():
                await asyncio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_a_crashing_runtime_is_restarted_after_a_back_off(
    local: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "BACKOFF_START", 0.01)
    m = local.adapters
    script = _Script(crashes=2)
    m.register_kind(_kind(script))
    await m.create("Pump", "Pump", is_enabled=True, settings={"host": "h"})
    assert m.health("Pump") == Health(state=State.STOPPED)
    assert script.started == []  # nothing runs before the manager starts

    await m.start()
    await _until(lambda: len(script.started) == 1, "the first run")
    assert m.health("Pump") == Health(state=State.RUNNING, note="attempt 1")
    view = m.view("Pump")
    assert view is not None
    assert isinstance(view.runtime, _Runtime)

    script.crash[0].set()
    await _until(lambda: m.health("Pump").state is State.RESTARTING, "the first crash")
    assert m.health("Pump") == Health(
        state=State.RESTARTING, restarts=1, last_error="RuntimeError: boom 1", note="attempt 1"
    )
    await _until(lambda: m.health("Pump").state is State.RUNNING, "the first restart")
    assert m.health("Pump") == Health(
        state=State.RUNNING, restarts=1, last_error="RuntimeError: boom 1", note="attempt 2"
    )

    script.crash[1].set()
    await _until(lambda: m.health("Pump").restarts == 2, "the second crash")
    assert m.health("Pump").state is State.RESTARTING
    await _until(lambda: m.health("Pump").state is State.RUNNING, "the second restart")
    assert m.health("Pump") == Health(
        state=State.RUNNING, restarts=2, last_error="RuntimeError: boom 2", note="attempt 3"
    )
    assert script.started == ["Pump"] * 3
    assert script.cancelled == []


async def test_disabling_stops_the_runtime_and_enabling_starts_it(local: Assembly) -> None:
    m = local.adapters
    script = _Script(crashes=0)
    m.register_kind(_kind(script))
    await m.create("Pump", "Pump", is_enabled=True, settings={"host": "h"})
    await m.start()
    await _until(lambda: script.started == ["Pump"], "the runtime to start")

    await m.disable("Pump")
    assert script.cancelled == ["Pump"]
    assert m.health("Pump") == Health(state=State.DISABLED)
    view = m.view("Pump")
    assert view is not None
    assert (view.is_enabled, view.runtime) == (False, None)

    await m.enable("Pump")
    await _until(lambda: script.started == ["Pump", "Pump"], "the runtime to start again")
    assert m.health("Pump").state is State.RUNNING
    await m.update("Pump", settings={"host": "other"})  # a settings change restarts it
    await _until(lambda: len(script.started) == 3, "the restart after a settings change")
    assert script.cancelled == ["Pump", "Pump"]


async def test_stop_cancels_every_runtime(local: Assembly) -> None:
    m = local.adapters
    script = _Script(crashes=0)
    m.register_kind(_kind(script))
    await m.create("Pump", "Pump A", is_enabled=True, settings={"host": "a"})
    await m.create("Pump", "Pump B", is_enabled=True, settings={"host": "b"})
    await m.create("Pump", "Pump C", settings={"host": "c"})
    await m.create("DataUpdate", "Data", is_enabled=True)
    await m.start()
    await _until(lambda: len(script.started) == 2, "both runtimes")
    assert sorted(script.started) == ["Pump A", "Pump B"]
    states = {c.reference_name: m.health(c.reference_name).state for c in m.list()}
    assert states == {
        "Data": State.RUNNING,  # no runtime: running means enabled and started
        "Pump A": State.RUNNING,
        "Pump B": State.RUNNING,
        "Pump C": State.DISABLED,
    }

    await m.stop()
    assert sorted(script.cancelled) == ["Pump A", "Pump B"]
    states = {c.reference_name: m.health(c.reference_name).state for c in m.list()}
    assert states == {
        "Data": State.STOPPED,
        "Pump A": State.STOPPED,
        "Pump B": State.STOPPED,
        "Pump C": State.DISABLED,
    }
    with pytest.raises(UnknownAdapterError):
        m.health("Nope")


async def test_a_runtime_that_returns_is_restarted_without_an_error(
    local: Assembly, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "BACKOFF_START", 0.01)
    m = local.adapters
    runs: list[int] = []
    forever = asyncio.Event()

    class Once:
        async def run(self) -> None:
            runs.append(1)
            if len(runs) > 1:
                await forever.wait()

        def health(self) -> str:
            return "ok"

    def factory(_config: AdapterConfig) -> Once:
        return Once()

    m.register_kind(AdapterKind(component="Once", factory=factory))
    await m.create("Once", "Once", is_enabled=True)
    await m.start()
    await _until(lambda: len(runs) == 2, "the restart")
    assert m.health("Once") == Health(state=State.RUNNING, restarts=1, note="ok")
