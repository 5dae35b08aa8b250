"""The series store under a flood of invented names: bounded in series and in memory, every
refusal counted; values no float can hold are refused, not raised."""

from __future__ import annotations

import numpy as np

from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.metric_names import MAX_NAME_LEN, RefusalReason, check_value
from ray_enterprise.observability.recorder import Recorder
from ray_enterprise.observability.series import (
    INITIAL_RING,
    MAX_REFUSAL_KEYS,
    RingBuffer,
    SeriesStore,
)
from tests.support import FakeClock


def one_point_each(names: list[str], ts_ms: int = 1_000) -> MetricBatch:
    series = [SeriesPoints(n, MetricType.GAUGE, (), np.array([1.0])) for n in names]
    return MetricBatch(ts_ms=ts_ms, series=series)


def test_twenty_thousand_distinct_names_stop_at_the_series_limit_and_are_counted() -> None:
    store = SeriesStore(series_limit=5_000, clock=FakeClock())
    names = [f"flood_{i}" for i in range(20_000)]
    refusals = store.ingest(one_point_each(names))
    assert len(store) == 5_000
    assert {r.reason for r in refusals} == {RefusalReason.SERIES_LIMIT}
    assert sum(store.refused.values()) == 15_000  # every refused point counted
    assert len(store.refused) <= MAX_REFUSAL_KEYS + 1  # names past 1,000 count as <other>
    assert "limit of 5000 series" in next(iter(store.refusal_messages.values()))
    # A series already held still takes points: the limit refuses only new ones.
    store.ingest(one_point_each(["flood_0"], ts_ms=2_000))
    held = store.get("flood_0", {})
    assert held is not None and held.total_count == 2


def test_a_one_point_series_holds_a_small_ring_that_grows_to_its_capacity() -> None:
    store = SeriesStore(capacity=8192, clock=FakeClock())
    store.ingest(one_point_each(["one_point"]))
    [series] = list(store)
    assert series.ring.allocated == INITIAL_RING  # not 8,192 points up front
    ring = RingBuffer(100)
    for i in range(250):
        ring.extend(i, np.array([float(i)]))
        assert ring.allocated <= 100
    ts, values = ring.ordered()
    assert list(values) == [float(i) for i in range(150, 250)] and list(ts) == list(range(150, 250))


def test_a_ring_grown_by_a_big_batch_keeps_its_order() -> None:
    ring = RingBuffer(64)
    ring.extend(1, np.arange(10, dtype=float))
    ring.extend(2, np.arange(10, 50, dtype=float))
    ring.extend(3, np.arange(50, 70, dtype=float))
    assert ring.allocated == 64
    assert list(ring.ordered()[1]) == [float(i) for i in range(6, 70)]


def test_an_overlong_name_is_refused_and_counted_under_a_bounded_key() -> None:
    store = SeriesStore(clock=FakeClock())
    long_name = "n" * 100_000
    [refusal] = store.ingest(one_point_each([long_name]))
    assert refusal.reason is RefusalReason.INVALID_NAME and len(store) == 0
    [(metric, reason)] = store.refused
    assert reason == "invalid_name" and len(metric) == MAX_NAME_LEN
    assert "100000 characters" in refusal.message and len(refusal.message) < 400


def test_a_value_too_large_for_a_float_is_refused_not_raised() -> None:
    number, refusal = check_value("big", 10**400)
    assert number is None and refusal is not None and refusal.reason is RefusalReason.INFINITE
    recorder = Recorder(autostart=False)
    assert not recorder.record("big_value", 10**400)  # raised OverflowError before
    assert recorder.stats().refused == {("big_value", "infinite"): 1}


def test_a_checkpoint_from_before_the_limits_brings_back_only_what_fits() -> None:
    flooded = SeriesStore(series_limit=100_000, clock=FakeClock())
    flooded.ingest(one_point_each([f"old_{i}" for i in range(300)]))
    restarted = SeriesStore(series_limit=200, clock=FakeClock())
    assert restarted.restore(flooded.snapshot()) == 200 and len(restarted) == 200
