"""The ``[s2s]`` policy layered with the console's: either list allows, either switch tightens."""

from __future__ import annotations

from carewire.core.federation import FederationPolicy
from carewire.core.s2s_policy import LayeredFederationSettings, StaticFederationSettings


def _layered(
    file: FederationPolicy, console: FederationPolicy
) -> tuple[LayeredFederationSettings, StaticFederationSettings]:
    managed = StaticFederationSettings(console, {"b.example": frozenset({"bb"})})
    static = StaticFederationSettings(file, {"a.example": frozenset({"aa"})})
    return LayeredFederationSettings(static, managed), managed


def test_open_only_while_both_lists_are_empty() -> None:
    layered, managed = _layered(FederationPolicy(), FederationPolicy())
    assert layered.policy().permits("anyone.example")
    managed.update(FederationPolicy(allow=frozenset({"partner.example"})))
    assert not layered.policy().permits("anyone.example")
    assert layered.policy().permits("partner.example")


def test_a_domain_on_either_list_is_allowed() -> None:
    layered, _ = _layered(
        FederationPolicy(allow=frozenset({"file.example"})),
        FederationPolicy(allow=frozenset({"console.example"})),
    )
    policy = layered.policy()
    assert policy.permits("file.example") and policy.permits("console.example")
    assert not policy.permits("other.example")


def test_certificates_only_when_either_says_so_and_pins_from_both() -> None:
    layered, managed = _layered(FederationPolicy(certificates_only=True), FederationPolicy())
    assert layered.policy().certificates_only
    managed.update(FederationPolicy(certificates_only=False))
    assert layered.policy().certificates_only
    assert layered.pinned("a.example") == {"aa"}
    assert layered.pinned("b.example") == {"bb"}
    assert layered.pinned("c.example") == frozenset()


def test_console_changes_reach_the_streams() -> None:
    layered, managed = _layered(FederationPolicy(), FederationPolicy())
    calls: list[int] = []
    layered.on_change(lambda: calls.append(1))
    managed.update(FederationPolicy(certificates_only=True))
    assert calls == [1]
