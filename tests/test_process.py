"""The server process's heap settings once serving."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from carewire.process import GC_THRESHOLDS, settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_settling_freezes_start_up_objects_and_raises_the_first_threshold() -> None:
    kept = [object() for _ in range(10)]
    frozen = settle_heap()
    assert frozen >= len(kept) and gc.get_freeze_count() == frozen
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default collects far too often for a server
