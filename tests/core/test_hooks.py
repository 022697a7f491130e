"""The hook bus: priorities, propagation, sync and async handlers."""

from __future__ import annotations

import pytest

from carewire.core.hooks import HookBus


async def test_priority_order_and_stop() -> None:
    bus = HookBus()
    calls: list[str] = []
    bus.on("e", lambda p: calls.append("low"), priority=-5)
    bus.on("e", lambda p: calls.append("high"), priority=10)

    async def mid(p: object) -> bool:
        calls.append("mid")
        return p == "stop"

    bus.on("e", mid)
    assert await bus.fire("e", "go") is False
    assert calls == ["high", "mid", "low"]
    calls.clear()
    assert await bus.fire("e", "stop") is True
    assert calls == ["high", "mid"]


async def test_same_priority_keeps_registration_order_and_off() -> None:
    bus = HookBus()
    calls: list[int] = []

    def one(_p: object) -> None:
        calls.append(1)

    bus.on("e", one)
    bus.on("e", lambda p: calls.append(2))
    await bus.fire("e", None)
    bus.off("e", one)
    await bus.fire("e", None)
    assert calls == [1, 2, 2]
    assert not bus.has_handlers("other")
    assert await bus.fire("other", None) is False


def test_fire_sync_refuses_async_handlers() -> None:
    bus = HookBus()
    bus.on("s", lambda p: True)
    assert bus.fire_sync("s", None) is True

    async def bad(_p: object) -> None:
        return None

    bus2 = HookBus()
    bus2.on("s", bad)
    with pytest.raises(TypeError):
        bus2.fire_sync("s", None)
