"""The rate-limited update queue (carewire.adapters.assignments.queue), pure."""

from __future__ import annotations

import pytest

from carewire.adapters.assignments.lifecycle import Change, Kind
from carewire.adapters.assignments.queue import UpdateQueue


def change(n: int, kind: Kind = Kind.ACTIVATE, location: int | None = None) -> Change:
    return Change(assignment=n, kind=kind, expect="next", location=location)


def test_four_thousand_a_minute_is_sixty_six_a_second() -> None:
    q = UpdateQueue()
    assert (q.per_second, q.depth) == (66, 10_000)
    for n in range(150):
        assert q.offer(change(n))
    assert [len(q.take()), len(q.take()), len(q.take()), len(q.take())] == [66, 66, 18, 0]
    stats = q.stats()
    assert (stats.taken, stats.highest, stats.queued) == (150, 150, 0)


def test_no_minute_ever_holds_more_than_the_per_minute_limit() -> None:
    q = UpdateQueue(per_minute=4000)
    for n in range(5000):
        q.offer(change(n))
    taken = [len(q.take(0.05 + k)) for k in range(60)]  # 60 checks, each a little late
    assert taken == [66] * 60  # 3,960
    assert len(q.take(60.0)) == 40  # on time: the first check is still within this minute
    assert len(q.take(61.0)) == 66  # the minute has moved on


def test_changes_come_out_oldest_first() -> None:
    q = UpdateQueue(per_minute=120)
    for n in (5, 3, 9):
        q.offer(change(n))
    assert [c.assignment for c in q.take()] == [5, 3]
    assert [c.assignment for c in q.take()] == [9]


def test_the_same_change_is_never_queued_twice() -> None:
    q = UpdateQueue()
    q.offer(change(1, Kind.MOVE, location=3))
    q.offer(change(2))
    q.offer(change(1, Kind.MOVE, location=4))  # the later target replaces it, in its place
    q.offer(change(1, Kind.ACTIVATE))  # another kind of change to the same assignment
    taken = q.take()
    assert [(c.assignment, c.kind, c.location) for c in taken] == [
        (1, Kind.MOVE, 4),
        (2, Kind.ACTIVATE, None),
        (1, Kind.ACTIVATE, None),
    ]
    assert q.stats().replaced == 1


def test_a_full_queue_refuses_and_counts() -> None:
    q = UpdateQueue(depth=3)
    assert [q.offer(change(n)) for n in range(5)] == [True, True, True, False, False]
    assert q.offer(change(1))  # already queued: replaced, not refused
    stats = q.stats()
    assert (stats.queued, stats.refused, stats.highest) == (3, 2, 3)


@pytest.mark.parametrize(("per_minute", "depth"), [(59, 10), (4000, 0)])
def test_nonsense_limits_are_refused(per_minute: int, depth: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        UpdateQueue(per_minute=per_minute, depth=depth)
