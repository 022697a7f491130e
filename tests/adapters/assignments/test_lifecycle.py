"""The assignment lifecycle's decisions (carewire.adapters.assignments.lifecycle), pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carewire.adapters.assignments.lifecycle import (
    Assignment,
    Kind,
    copy_values,
    due,
    follow_bed,
    initial,
    location_id,
    location_name,
    patient_left,
)

NOW = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def a(state: str = "", **kw: object) -> Assignment:
    return Assignment(id=7, state=state, **kw)  # type: ignore[arg-type]


def test_a_new_assignment_without_a_state_becomes_next_assigned_now() -> None:
    change = initial(a(), NOW)
    assert change is not None and change.kind is Kind.INITIAL and change.expect == ""
    assert change.values == {"state": "next", "assigned_at": NOW}


def test_an_assigned_at_already_set_is_kept() -> None:
    earlier = NOW - HOUR
    change = initial(a(assigned_at=earlier), NOW)
    assert change is not None and change.values["assigned_at"] == earlier


def test_an_assignment_with_a_state_is_left_alone_at_creation() -> None:
    assert initial(a("active"), NOW) is None


@pytest.mark.parametrize(
    ("state", "start", "end", "expected"),
    [
        ("next", -HOUR, HOUR, ("active", "accepted_at")),
        ("next", None, None, ("active", "accepted_at")),  # no start: it has come
        ("next", 0 * HOUR, None, ("active", "accepted_at")),  # starting this instant
        ("next", HOUR, 2 * HOUR, None),  # not yet
        ("next", -2 * HOUR, -HOUR, ("deleted", "ended_at")),  # ended before it ever started
        ("next", HOUR, -HOUR, ("deleted", "ended_at")),
        ("active", -HOUR, -HOUR / 2, ("expired", "ended_at")),
        ("active", -HOUR, 0 * HOUR, ("expired", "ended_at")),
        ("active", -HOUR, HOUR, None),
        ("active", -HOUR, None, None),  # no end: it never ends by itself
        ("expired", -2 * HOUR, -HOUR, None),
        ("deleted", None, -HOUR, None),
        ("", -HOUR, HOUR, None),  # no state yet: the initial change comes first
    ],
)
def test_the_minute_tick_moves_each_group(
    state: str, start: timedelta | None, end: timedelta | None, expected: tuple[str, str] | None
) -> None:
    assignment = a(
        state,
        start_time=None if start is None else NOW + start,
        end_time=None if end is None else NOW + end,
    )
    change = due(assignment, NOW)
    if expected is None:
        assert change is None
        return
    new_state, stamp = expected
    assert change is not None and change.expect == state
    assert change.values == {"state": new_state, stamp: NOW}


def test_a_patient_who_leaves_ends_active_and_deletes_next_assignments() -> None:
    changes = patient_left(
        [
            Assignment(id=1, state="active"),
            Assignment(id=2, state="next"),
            Assignment(id=3, state="expired"),
        ],
        NOW,
    )
    assert [(c.assignment, c.kind, c.values["state"]) for c in changes] == [
        (1, Kind.EXPIRE, "expired"),
        (2, Kind.DELETE, "deleted"),
    ]


def test_a_next_assignment_follows_the_bed_by_moving() -> None:
    change = follow_bed(a("next", location=3), 9, NOW)
    assert change is not None and change.kind is Kind.MOVE and change.location == 9
    assert change.values == {}


def test_an_active_assignment_is_expired_and_copied_at_the_new_bed() -> None:
    change = follow_bed(a("active", location=3), 9, NOW)
    assert change is not None and change.kind is Kind.COPY and change.location == 9
    assert change.values == {"state": "expired", "ended_at": NOW}


def test_an_active_assignment_without_a_location_simply_gets_one() -> None:
    change = follow_bed(a("active"), 9, NOW)
    assert change is not None and change.kind is Kind.MOVE


def test_losing_the_bed_moves_to_no_location() -> None:
    change = follow_bed(a("next", location=3), None, NOW)
    assert change is not None and change.kind is Kind.MOVE and change.location is None


@pytest.mark.parametrize("state", ["expired", "deleted", ""])
def test_ended_or_new_assignments_do_not_follow(state: str) -> None:
    assert follow_bed(a(state, location=3), 9, NOW) is None


def test_an_assignment_already_at_the_bed_stays() -> None:
    assert follow_bed(a("active", location=9), 9, NOW) is None


def test_a_copy_is_active_at_the_new_location_with_its_own_id() -> None:
    original = {
        "assignment_id": "rn-17",
        "interface_id": "staffing",
        "level": "Primary",
        "state": "expired",
        "usr": 4,
        "location": 3,
        "patient": 8,
        "ended_at": NOW,
        "start_time": NOW - HOUR,
    }
    copy = copy_values(original, 41, 9, NOW)
    assert copy["assignment_id"] == "rn-17~41"
    assert (copy["state"], copy["location"], copy["accepted_at"], copy["assigned_at"]) == (
        "active",
        9,
        NOW,
        NOW,
    )
    assert (copy["usr"], copy["patient"], copy["level"], copy["start_time"]) == (
        4,
        8,
        "Primary",
        NOW - HOUR,
    )
    assert "ended_at" not in copy
    again = copy_values({**original, "assignment_id": "rn-17~41"}, 55, 10, NOW)
    assert again["assignment_id"] == "rn-17~55"  # copies of copies do not grow the id


def test_bed_locations_are_named_and_numbered() -> None:
    assert location_id("am-bed-", 12) == "am-bed-12"
    assert location_name("101", "A") == "101 A"


def test_records_with_odd_values_read_as_unset() -> None:
    read = Assignment.of(5, {"state": 3, "start_time": "soon", "location": True, "patient": 2})
    assert (read.state, read.start_time, read.location, read.patient) == ("", None, None, 2)
