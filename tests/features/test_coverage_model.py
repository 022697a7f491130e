"""The coverage decisions (features/coverage/model.py), without an event loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carewire.features.coverage import stanzas as cs
from carewire.features.coverage.model import (
    Busy,
    CoverageMode,
    HoldReason,
    Priority,
    Unreachable,
    hold_reason,
    next_change,
    plan_coverage,
    prune,
    unreachable,
)
from carewire.xmpp.xml import make

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


def test_priorities_parse_any_case_and_default_to_normal() -> None:
    assert Priority.parse("urgent") is Priority.URGENT
    assert Priority.parse("Critical") is Priority.CRITICAL
    assert Priority.parse("") is Priority.NORMAL
    assert Priority.parse("whatever") is Priority.NORMAL


def test_an_unanswered_urgent_alert_holds_traffic_below_urgent() -> None:
    busy = Busy().with_alert("a1", LATER)
    assert hold_reason(busy, Priority.NORMAL, NOW) is HoldReason.URGENT_ALERT
    assert hold_reason(busy, Priority.IMPORTANT, NOW) is HoldReason.URGENT_ALERT
    assert hold_reason(busy, Priority.URGENT, NOW) is None
    assert hold_reason(busy, Priority.CRITICAL, NOW) is None
    assert hold_reason(busy.without_alert("a1"), Priority.NORMAL, NOW) is None


def test_expiry_and_the_end_of_dnd_release() -> None:
    busy = Busy(dnd_until=LATER).with_alert("a1", NOW + timedelta(minutes=5))
    assert next_change(busy) == NOW + timedelta(minutes=5)
    at = NOW + timedelta(minutes=10)
    assert hold_reason(busy, Priority.NORMAL, at) is HoldReason.DND
    assert prune(busy, at).urgent == ()
    assert prune(busy, LATER).is_idle
    assert hold_reason(busy, Priority.NORMAL, LATER) is None


def test_presence_dnd_holds_until_it_changes() -> None:
    busy = Busy(is_presence_dnd=True)
    assert hold_reason(busy, Priority.NORMAL, NOW) is HoldReason.DND
    assert next_change(busy) is None
    assert hold_reason(None, Priority.NORMAL, NOW) is None


@given(st.sampled_from(Priority), st.booleans(), st.booleans())
def test_urgent_and_critical_always_break_through(p: Priority, alert: bool, dnd: bool) -> None:
    busy = Busy(dnd_until=LATER if dnd else None, is_presence_dnd=dnd)
    if alert:
        busy = busy.with_alert("a", LATER)
    held = hold_reason(busy, p, NOW) is not None
    assert held == (p < Priority.URGENT and (alert or dnd))


@pytest.mark.parametrize(
    ("on_shift", "online", "expected"),
    [
        (True, True, None),
        (None, True, None),
        (None, False, Unreachable.OFFLINE),
        (False, True, Unreachable.OFF_SHIFT),
        (True, False, Unreachable.OFFLINE),
        (False, False, Unreachable.OFF_SHIFT_OFFLINE),
    ],
)
def test_unreachable(on_shift: bool | None, online: bool, expected: Unreachable | None) -> None:
    assert unreachable(is_on_shift=on_shift, is_online=online) is expected


def test_record_alerts_everyone_and_names_the_unreachable() -> None:
    plan = plan_coverage(["a", "b"], {"a": Unreachable.OFF_SHIFT}, mode=CoverageMode.RECORD)
    assert plan.notify == ("a", "b")
    assert plan.uncovered == (("a", Unreachable.OFF_SHIFT),)
    assert plan.rerouted_from == ()


def test_reroute_goes_to_reachable_cover() -> None:
    reasons = {"a": Unreachable.OFF_SHIFT, "c1": Unreachable.OFFLINE}
    plan = plan_coverage(["a"], reasons, mode=CoverageMode.REROUTE, covering=["c1", "c2", "c2"])
    assert plan.notify == ("c2",)
    assert plan.covering == ("c2",)
    assert plan.rerouted_from == ("a",)


def test_reroute_without_cover_never_drops_the_alert() -> None:
    plan = plan_coverage(
        ["a"],
        {"a": Unreachable.OFFLINE, "c": Unreachable.OFFLINE},
        mode=CoverageMode.REROUTE,
        covering=["c"],
    )
    assert plan.notify == ("a",)
    assert plan.is_without_cover
    assert plan_coverage(["a"], {}, mode=CoverageMode.REROUTE, covering=["c"]).notify == ("a",)


def test_dnd_requests() -> None:
    el = make(cs.DND, {"until": "2026-03-01T09:00:00Z", "reason": "procedure"})
    assert cs.parse_dnd(el, NOW) == cs.DndRequest(
        until=NOW + timedelta(hours=1), reason="procedure"
    )
    for until in (
        "",
        "tomorrow",
        "2026-03-01T09:00:00",
        "2026-03-01T07:00:00Z",
        "2026-03-03T07:00:00Z",
    ):
        with pytest.raises(cs.CoverageFormatError):
            cs.parse_dnd(make(cs.DND, {"until": until} if until else {}), NOW)


def test_status_and_notice_elements() -> None:
    status = cs.build_status(reason="dnd", until=LATER, held=2)
    assert status.attrib == {
        "busy": "true",
        "held": "2",
        "reason": "dnd",
        "until": "2026-03-01T08:30:00Z",
    }
    assert cs.build_status(reason="", until=None, held=0).get("busy") == "false"
    notice = cs.build_notice(
        server="d", to="a@d/r", about="b@d", message_id="m1", state="held", reason="dnd", body="x"
    )
    (el,) = notice.findall(cs.NOTICE)
    assert el.attrib == {"jid": "b@d", "state": "held", "reason": "dnd", "id": "m1"}
    assert notice.get("type") == "chat" and notice.get("from") == "d"
