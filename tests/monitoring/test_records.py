"""The record meter (deliveries, rule firings, alert latency) and the latency buckets, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carewire.core.stats import ALERT_BUCKETS, LatencyBuckets
from carewire.datasets.model import ChangeKind, DatasetName, Origin, RecordChanged, RecordId
from carewire.monitoring.records import RecordMeter

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def change(
    dataset: str,
    kind: ChangeKind,
    new: dict[str, object] | None,
    old: dict[str, object] | None = None,
    record_id: int = 1,
) -> RecordChanged:
    return RecordChanged(
        dataset=DatasetName(dataset),
        record_id=RecordId(record_id),
        kind=kind,
        old=old,
        new=new,
        origin=Origin(),
        at=T0,
    )


def firing(meter: RecordMeter, message: int, triggered: datetime, rule: str = "r") -> None:
    base = {"rule": rule, "status": "Processing", "triggered_at": triggered, "message": None}
    meter(change("DELIVERIES", ChangeKind.CREATE, base))
    meter(change("DELIVERIES", ChangeKind.UPDATE, {**base, "message": message}, base))


def receipt(meter: RecordMeter, message: int, at: datetime, record_id: int = 1) -> None:
    old = {"message": message, "sent_at": T0, "received_at": None}
    meter(
        change(
            "MESSAGE_DELIVERIES",
            ChangeKind.UPDATE,
            {**old, "received_at": at},
            old,
            record_id,
        )
    )


def test_buckets_count_and_estimate_quantiles_like_prometheus() -> None:
    b = LatencyBuckets((0.1, 0.5, 1.0))
    assert b.quantile(0.5) is None and b.count == 0
    for v in (0.05, 0.2, 0.3, 0.7, 5.0):
        b.observe(v)
    assert b.cumulative() == [(0.1, 1), (0.5, 3), (1.0, 4), (float("inf"), 5)]
    assert b.total == pytest.approx(6.25)
    assert b.quantile(0.5) == pytest.approx(0.1 + 0.4 * (2.5 - 1) / 2)
    assert b.quantile(0.99) == 1.0  # above every finite bound: the highest one


def test_a_link_then_the_first_receipt_measures_from_the_record_write() -> None:
    meter = RecordMeter()
    firing(meter, 7, T0)
    receipt(meter, 7, T0 + timedelta(milliseconds=300))
    receipt(meter, 7, T0 + timedelta(seconds=9), record_id=2)  # a second recipient: not again
    assert meter.alert_latency.count == 1
    assert meter.alert_latency.total == pytest.approx(0.3)
    assert meter.firings == {"r": 1}
    assert meter.delivery_states["received"] == 2


def test_a_receipt_committed_before_the_link_is_matched_when_the_link_comes() -> None:
    meter = RecordMeter()
    receipt(meter, 9, T0 + timedelta(milliseconds=40))
    assert meter.alert_latency.count == 0
    firing(meter, 9, T0)
    assert meter.alert_latency.count == 1
    assert meter.alert_latency.total == pytest.approx(0.04)


def test_open_alerts_close_when_acknowledged_and_age_out_after_a_day() -> None:
    meter = RecordMeter()
    firing(meter, 1, T0)
    firing(meter, 2, T0 + timedelta(minutes=5))
    assert meter.open_alerts(T0 + timedelta(minutes=10)) == [T0, T0 + timedelta(minutes=5)]
    old = {"message": 1, "sent_at": T0, "acknowledged": None}
    meter(change("MESSAGE_DELIVERIES", ChangeKind.UPDATE, {**old, "acknowledged": T0}, old))
    assert meter.open_alerts(T0 + timedelta(minutes=10)) == [T0 + timedelta(minutes=5)]
    assert meter.open_alerts(T0 + timedelta(days=2)) == []
    assert meter.delivery_states["acknowledged"] == 1


def test_errors_count_once_per_firing_and_other_datasets_are_ignored() -> None:
    meter = RecordMeter()
    refused = {"rule": "bad", "status": "Error", "triggered_at": T0}
    meter(change("DELIVERIES", ChangeKind.CREATE, refused))
    meter(change("DELIVERIES", ChangeKind.UPDATE, {**refused, "status_text": "x"}, refused))
    meter(change("NURSE_CALLS", ChangeKind.CREATE, {"status": "Error"}))
    new = {"message": 3, "sent_at": T0, "failed_at": T0}
    meter(change("MESSAGE_DELIVERIES", ChangeKind.CREATE, new))
    assert meter.firings == {"bad": 1} and meter.errors == {"bad": 1}
    assert meter.delivery_states == {"sent": 1, "failed": 1}


def test_alert_buckets_cover_the_objective() -> None:
    assert 1.0 in ALERT_BUCKETS  # the default objective is a bucket bound: no interpolation
