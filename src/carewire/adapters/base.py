"""What an adapter kind declares, and what an instance is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from carewire.rules.actions import ActionSpec
from carewire.rules.settings import SettingField


class AdapterRuntime(Protocol):
    """The running part of an instance (kinds without one have no runtime)."""

    async def run(self) -> None:
        """Work until cancelled; raising counts as a crash (the manager restarts it)."""

    def health(self) -> str:
        """A short health note (``connected``, ``waiting for peer`` …)."""


@runtime_checkable
class MeteredRuntime(Protocol):
    """A runtime that counts what it does (an MLLP listener's messages …)."""

    def counters_view(self) -> Mapping[str, int | str | None]:
        """Its counters by name, JSON-ready; shown with the instance's health."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterConfig:
    """One configured adapter instance.

    Attributes:
        id: Database id.
        reference_name: Unique name people give it (``Production XMPP``).
        component: Its kind (``XMPP``).
        is_enabled: Whether it is used; a disabled instance is ignored.
        required_datasets: Dataset role → dataset name.
        settings: Its settings, validated against the kind's schema.
    """

    id: int | None = None
    reference_name: str
    component: str
    is_enabled: bool = False
    required_datasets: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)


RuntimeFactory = Callable[[AdapterConfig], AdapterRuntime]


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingSection:
    """A titled group of a kind's settings, with a short text for the console.

    Attributes:
        title: The heading (``Sessions``).
        help: What the settings do, their defaults, and when to change them.
        fields: The names of its settings, in order.
    """

    title: str
    help: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AdapterKind:
    """A kind of adapter (a component name in the console).

    Attributes:
        component: Its name (``XMPP``, ``DataUpdate``).
        description: One sentence for people.
        settings: The settings schema.
        required_datasets: Datasets it works on (roles, named after the built-in datasets).
        is_singleton: Only one instance may be enabled at a time.
        actions: Rule actions it contributes.
        factory: Builds the runtime of an enabled instance (None: nothing to run).
        sections: How the console groups and explains the settings (none: one group).
    """

    component: str
    description: str = ""
    settings: tuple[SettingField, ...] = ()
    required_datasets: tuple[str, ...] = ()
    is_singleton: bool = False
    actions: tuple[ActionSpec, ...] = ()
    factory: RuntimeFactory | None = None
    sections: tuple[SettingSection, ...] = ()

    def grouped_settings(self) -> list[tuple[SettingSection, tuple[SettingField, ...]]]:
        """The settings by section; any a section does not name come last, as Other Settings.

        A kind without sections has one group, Main Settings, without a text.
        """
        by_name = {f.name: f for f in self.settings}
        groups = [(s, tuple(by_name[n] for n in s.fields if n in by_name)) for s in self.sections]
        named = {n for s in self.sections for n in s.fields}
        rest = tuple(f for f in self.settings if f.name not in named)
        if rest:
            title = "Other Settings" if self.sections else "Main Settings"
            groups.append((SettingSection(title=title, help="", fields=()), rest))
        return [(s, fields) for s, fields in groups if fields]
