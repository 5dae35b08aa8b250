"""Series -> anomaly shard points, and the anomaly rate from the shards' counters."""

from __future__ import annotations

import numpy as np

from ray_enterprise.alerts.sources import AnomalyInput
from ray_enterprise.anomaly.feed import AnomalyRate, anomaly_points, series_text
from ray_enterprise.anomaly.series import service_of, text_of
from ray_enterprise.anomaly.shard import shard_of
from ray_enterprise.anomaly.vector_monitor import VectorAnomalyMonitor
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
        (("hits", ()), 2.5, 5.0),
        (("depth", labels), 2.5, 9.0),
        (("lat_ms", labels), 2.5, 3.0),
    ]
    assert service_of(labels) == "search"
    assert text_of(("lat_ms", labels)) == series_text("lat_ms", labels)
    assert series_text("lat_ms", labels) == 'lat_ms{endpoint="/s",service="search"}'


def gauge_batch(
    t: int, series: dict[str, tuple[tuple[str, str], ...]], value: float
) -> MetricBatch:
    return MetricBatch(
        ts_ms=t * 1000,
        series=[
            SeriesPoints("lat_ms", MetricType.GAUGE, labels, np.array([value]))
            for labels in series.values()
        ],
    )


def test_a_label_value_cannot_make_an_anomaly_count_against_another_service() -> None:
    # Before labels travelled as data, this tag value printed as a second service label and
    # the regex that read the text back found "admin".
    forged = (("tag", 'x",service="admin'), ("service", "api"))
    admin = (("tag", "x"), ("service", "admin"))
    monitor = VectorAnomalyMonitor(
        {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 10}}, min_samples=20
    )
    events = []
    for t in range(60):
        value = 500.0 if t == 50 else 10.0 + t % 3
        batch = gauge_batch(t, {"forged": forged}, value)
        batch.series.append(SeriesPoints("lat_ms", MetricType.GAUGE, admin, np.array([10.0])))
        events += monitor.observe_points(anomaly_points(batch))
    [event] = events
    assert dict(event.labels) == dict(forged)
    assert service_of(event.labels) == "api"
    assert AnomalyInput.from_event(event, service_of(event.labels)).service == "api"
    # Two label sets, two series: their texts differ, so neither shares the other's detector.
    assert len(monitor.index) == 2
    assert text_of(("lat_ms", forged)) != text_of(("lat_ms", admin))
    assert event.series == text_of(("lat_ms", forged))
    assert shard_of(("lat_ms", forged), 4) == shard_of(text_of(("lat_ms", forged)), 4)


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
    assert anomaly_points(batch, store.holds) == [(("depth", ()), 1.0, 4.0)]


def test_rate_is_new_events_over_new_points_and_survives_a_shard_restart() -> None:
    rate = AnomalyRate()
    assert rate.update([{"shard": 0, "points": 100, "events": 1}]) == 0.01
    assert rate.update([{"shard": 0, "points": 100, "events": 1}]) is None
    assert rate.update([{"shard": 0, "points": 150, "events": 6}]) == 0.1
    assert rate.update([{"shard": 0, "points": 10, "events": 5}]) == 0.5  # restarted
