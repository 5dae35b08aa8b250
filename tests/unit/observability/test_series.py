"""Series store: ring buffers, window stats over a fake clock, totals, cardinality, rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ray_enterprise.alerts.matchers import parse_matchers
from ray_enterprise.alerts.rules import RuleEngine, WindowSource, parse_rule
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.series import (
    MAX_REFUSAL_KEYS,
    OTHER_METRIC,
    RingBuffer,
    SeriesStore,
    WindowStats,
)
from tests.support import FakeClock


def batch(
    ts_s: float, name: str, kind: MetricType, values: list[float], **labels: str
) -> MetricBatch:
    points = SeriesPoints(name, kind, tuple(sorted(labels.items())), np.array(values, float))
    return MetricBatch(ts_ms=int(ts_s * 1000), series=[points])


def test_ring_keeps_the_last_capacity_points_in_order() -> None:
    ring = RingBuffer(4)
    ring.extend(1, np.array([1.0, 2.0, 3.0]))
    ring.extend(2, np.array([4.0, 5.0]))
    ts, values = ring.ordered()
    assert values.tolist() == [2.0, 3.0, 4.0, 5.0]
    assert ts.tolist() == [1, 1, 2, 2]
    ring.extend(3, np.arange(10.0))
    assert ring.ordered()[1].tolist() == [6.0, 7.0, 8.0, 9.0]
    assert len(ring) == 4


@given(
    st.integers(min_value=1, max_value=16),
    st.lists(st.lists(st.floats(-1e6, 1e6), max_size=20), max_size=20),
)
def test_ring_equals_the_tail_of_everything_written(
    capacity: int, chunks: list[list[float]]
) -> None:
    ring = RingBuffer(capacity)
    written: list[float] = []
    for i, chunk in enumerate(chunks):
        ring.extend(i, np.array(chunk, dtype=float))
        written.extend(chunk)
    assert ring.ordered()[1].tolist() == written[-capacity:]


def test_windows_see_only_their_span_of_time() -> None:
    clock = FakeClock(10_000.0)
    store = SeriesStore(clock=clock)
    store.ingest(batch(10_000 - 3000, "lat", MetricType.TIMER, [1000.0]))  # 50 min ago
    store.ingest(batch(10_000 - 200, "lat", MetricType.TIMER, [100.0, 300.0]))  # 3m20s ago
    store.ingest(batch(10_000 - 10, "lat", MetricType.TIMER, [1.0, 2.0, 3.0]))
    series = store.get("lat", {})
    assert series is not None
    stats = store.stats(series)
    assert stats["1m"] == WindowStats.of(np.array([1.0, 2.0, 3.0]))
    assert stats["1m"].count == 3 and stats["1m"].mean == 2.0 and stats["1m"].p50 == 2.0
    assert stats["5m"].count == 5 and stats["5m"].max == 300.0
    assert stats["1h"].count == 6 and stats["1h"].sum == 1406.0
    clock.now += 120  # two minutes later the last minute is empty
    assert store.stats(series)["1m"] == WindowStats()


def test_percentiles_match_numpy() -> None:
    values = np.random.default_rng(7).exponential(50.0, 1000)
    stats = WindowStats.of(values)
    assert stats.p95 == pytest.approx(np.quantile(values, 0.95))
    assert stats.p99 == pytest.approx(np.quantile(values, 0.99))
    assert stats.min == values.min() and stats.count == 1000


def test_totals_survive_the_ring_and_counters_count_deltas() -> None:
    store = SeriesStore(capacity=2, clock=FakeClock(10_000.0))
    for i in range(5):
        store.ingest(batch(9_000 + i, "reqs", MetricType.COUNTER, [10.0]))
    series = store.get("reqs", {})
    assert series is not None
    assert series.total_sum == 50.0 and series.total_count == 5
    assert len(series.ring) == 2


def test_histogram_buckets_are_cumulative() -> None:
    store = SeriesStore(buckets=(1.0, 10.0, 100.0), clock=FakeClock(10_000.0))
    store.ingest(batch(9_999, "size", MetricType.HISTOGRAM, [0.5, 1.0, 5.0, 50.0, 500.0]))
    series = store.get("size", {})
    assert series is not None
    assert series.bucket_counts.tolist() == [2, 3, 4]
    assert series.total_count == 5


def test_out_of_order_batches_keep_windows_searchable() -> None:
    store = SeriesStore(clock=FakeClock(10_000.0))
    store.ingest(batch(9_990, "g", MetricType.GAUGE, [1.0]))
    store.ingest(batch(9_980, "g", MetricType.GAUGE, [2.0]))  # a slower collector's batch
    store.ingest(batch(9_995, "g", MetricType.GAUGE, [3.0]))
    series = store.get("g", {})
    assert series is not None
    assert store.stats(series)["1m"].count == 3


def test_store_cardinality_limit_refuses_and_counts_points() -> None:
    store = SeriesStore(cardinality_limit=2, clock=FakeClock(10_000.0))
    for user in range(4):
        store.ingest(batch(9_999, "per_user", MetricType.COUNTER, [1.0], user=str(user)))
    assert len(store) == 2
    assert store.refused == {("per_user", "cardinality"): 2}
    assert "cardinality limit of 2" in store.refusal_messages[("per_user", "cardinality")]


def test_a_batch_built_by_hand_has_nan_and_infinite_values_refused_and_counted() -> None:
    store = SeriesStore(clock=FakeClock(10_000.0))
    nan, inf = float("nan"), float("inf")
    store.ingest(batch(9_999, "latency_ms", MetricType.GAUGE, [1.0, nan, 3.0, inf, nan]))
    store.ingest(batch(9_999, "all_bad", MetricType.GAUGE, [nan]))
    [series] = list(store)  # "all_bad" never became a series
    described = store.describe(series)
    assert (described["total_count"], described["total_sum"]) == (2, 4.0)
    assert store.refused == {
        ("latency_ms", "nan"): 2,
        ("latency_ms", "infinite"): 1,
        ("all_bad", "nan"): 1,
    }
    assert store.refusal_messages[("latency_ms", "nan")] == "value of metric 'latency_ms' is NaN"


def test_a_batch_built_by_hand_has_bad_names_and_tags_refused_and_counted() -> None:
    store = SeriesStore(clock=FakeClock(10_000.0))
    store.ingest(batch(9_999, "bad name", MetricType.GAUGE, [1.0, 2.0]))
    store.ingest(batch(9_999, "ok_total", MetricType.GAUGE, [1.0], **{"bad-tag": "x"}))
    store.ingest(batch(9_999, "ok", MetricType.GAUGE, [1.0], service="api"))
    assert [s.name for s in store] == ["ok"]
    assert store.refused == {("bad name", "invalid_name"): 2, ("ok_total", "invalid_tag"): 1}
    assert "must match" in store.refusal_messages[("bad name", "invalid_name")]


def test_refusal_counts_stay_bounded_when_a_client_invents_names() -> None:
    store = SeriesStore(clock=FakeClock(10_000.0))
    for i in range(MAX_REFUSAL_KEYS + 500):
        store.ingest(batch(9_999, f"bad name {i}", MetricType.GAUGE, [1.0]))
    assert len(store.refused) == MAX_REFUSAL_KEYS + 1
    assert store.refused[(OTHER_METRIC, "invalid_name")] == 500
    assert sum(store.refused.values()) == MAX_REFUSAL_KEYS + 500  # every point still counted
    assert len(store.refusal_messages) == MAX_REFUSAL_KEYS + 1


def test_store_is_a_window_source_for_metric_rules() -> None:
    clock = FakeClock(10_000.0)
    store = SeriesStore(clock=clock)
    source: WindowSource = store
    store.ingest(batch(9_990, "errors", MetricType.GAUGE, [5.0, 7.0], service="api"))
    store.ingest(batch(9_990, "errors", MetricType.GAUGE, [1.0], service="db"))
    found = source.window_values("errors", parse_matchers('{service="api"}'), 9_000_000, 10_000_000)
    assert dict(found) == {(("service", "api"),): [5.0, 7.0]}
    rule = parse_rule("high_errors", 'max(errors{service="api"}[1m]) > 6')
    engine = RuleEngine([rule])
    results = engine.evaluate(store, store.now_ms())
    assert [r.firing for r in results] == [True]


def test_a_snapshot_restores_windows_totals_buckets_and_refusals() -> None:
    clock = FakeClock(10_000.0)
    store = SeriesStore(capacity=16, cardinality_limit=2, clock=clock)
    for i in range(5):
        store.ingest(batch(clock.now - 50 + i, "latency_ms", MetricType.HISTOGRAM, [i, 2.0 * i]))
    store.ingest(batch(clock.now, "hits", MetricType.COUNTER, [3.0], route="/a"))
    for route in ("/b", "/c"):  # the third series of "hits" is refused: limit 2
        store.ingest(batch(clock.now, "hits", MetricType.COUNTER, [1.0], route=route))
    again = SeriesStore(capacity=16, cardinality_limit=2, clock=clock)
    assert again.restore(store.snapshot()) == 3
    for name, labels in (("latency_ms", {}), ("hits", {"route": "/a"}), ("hits", {"route": "/b"})):
        before, after = store.get(name, labels), again.get(name, labels)
        assert before is not None and after is not None
        assert store.describe(before) == again.describe(after)
        assert after.bucket_counts.tolist() == before.bucket_counts.tolist()
    assert again.refused == store.refused and again.points == store.points
    # The restored store goes on: new points land after the old ones; limits still hold.
    again.ingest(batch(clock.now, "latency_ms", MetricType.HISTOGRAM, [99.0]))
    restored = again.get("latency_ms", {})
    assert restored is not None and restored.ring.ordered()[1][-1] == 99.0
    assert again.ingest(batch(clock.now, "hits", MetricType.COUNTER, [1.0], route="/d"))


def test_a_snapshot_keeps_at_most_its_point_budget() -> None:
    store = SeriesStore(capacity=1000)
    for s in range(10):
        store.ingest(batch(1.0, "load", MetricType.GAUGE, list(range(1000)), host=str(s)))
    state = store.snapshot(max_points=2000)
    assert sum(len(s["values"]) for s in state["series"]) <= 2000 + 64 * 10
    assert all(s["values"][-1] == 999.0 for s in state["series"])  # the newest are kept
