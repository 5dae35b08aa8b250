"""Series -> anomaly shard points, and the anomaly rate from the shards' counters."""

from __future__ import annotations

import numpy as np

from ray_enterprise.anomaly.feed import AnomalyRate, anomaly_points, series_text
from ray_enterprise.anomaly.shard import service_of
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints


def test_one_point_per_series_per_batch_with_the_right_summary() -> None:
    labels = (("endpoint", "/s"), ("service", "search"))
    batch = MetricBatch(
        ts_ms=2_500,
        series=[
            SeriesPoints("hits", MetricType.COUNTER, (), np.array([5.0])),
            SeriesPoints("depth", MetricType.GAUGE, labels, np.array([1.0, 9.0])),
            SeriesPoints("lat_ms", MetricType.TIMER, labels, np.array([1.0, 2.0, 6.0])),
        ],
    )
    assert anomaly_points(batch) == [
        ("hits", 2.5, 5.0),
        ('depth{endpoint="/s",service="search"}', 2.5, 9.0),
        ('lat_ms{endpoint="/s",service="search"}', 2.5, 3.0),
    ]
    assert service_of(series_text("lat_ms", labels)) == "search"


def test_series_the_store_refused_and_values_that_are_not_finite_reach_no_detector() -> None:
    from ray_enterprise.observability.series import SeriesStore

    batch = MetricBatch(
        ts_ms=1_000,
        series=[
            SeriesPoints("bad name", MetricType.GAUGE, (), np.array([1.0])),
            SeriesPoints("depth", MetricType.GAUGE, (), np.array([4.0, np.nan])),
            SeriesPoints("all_nan", MetricType.GAUGE, (), np.array([np.nan])),
        ],
    )
    store = SeriesStore()
    store.ingest(batch)
    assert anomaly_points(batch, store.holds) == [("depth", 1.0, 4.0)]


def test_rate_is_new_events_over_new_points_and_survives_a_shard_restart() -> None:
    rate = AnomalyRate()
    assert rate.update([{"shard": 0, "points": 100, "events": 1}]) == 0.01
    assert rate.update([{"shard": 0, "points": 100, "events": 1}]) is None
    assert rate.update([{"shard": 0, "points": 150, "events": 6}]) == 0.1
    assert rate.update([{"shard": 0, "points": 10, "events": 5}]) == 0.5  # restarted
