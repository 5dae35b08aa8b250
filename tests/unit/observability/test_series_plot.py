"""Plot points: one per flush, reduced as the anomaly feed reduces a batch."""

from __future__ import annotations

import numpy as np

from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.series import RingBuffer, Series
from ray_enterprise.observability.series_plot import plot_points, plot_unit


def series_of(kind: MetricType, batches: list[tuple[int, list[float]]]) -> Series:
    series = Series("m", kind, (), RingBuffer(64), ())
    for ts_ms, values in batches:
        series.add(ts_ms, np.asarray(values, dtype=np.float64))
    return series


BATCHES = [(1_000, [1.0, 3.0]), (2_000, [5.0]), (3_000, [2.0, 2.0, 8.0])]


def test_each_flush_is_one_point_reduced_by_the_metric_type() -> None:
    assert plot_points(series_of(MetricType.COUNTER, BATCHES), 0, 10) == [
        (1.0, 4.0),
        (2.0, 5.0),
        (3.0, 12.0),
    ]
    assert plot_points(series_of(MetricType.GAUGE, BATCHES), 0, 10) == [
        (1.0, 3.0),
        (2.0, 5.0),
        (3.0, 8.0),
    ]
    assert plot_points(series_of(MetricType.TIMER, BATCHES), 0, 10) == [
        (1.0, 2.0),
        (2.0, 5.0),
        (3.0, 4.0),
    ]


def test_only_points_since_the_start_and_the_newest_few() -> None:
    gauge = series_of(MetricType.GAUGE, BATCHES)
    assert plot_points(gauge, 1_500, 10) == [(2.0, 5.0), (3.0, 8.0)]
    assert plot_points(gauge, 0, 1) == [(3.0, 8.0)]
    assert plot_points(gauge, 9_000, 10) == []
    assert plot_points(series_of(MetricType.GAUGE, []), 0, 10) == []


def test_the_unit_comes_from_the_name_and_a_counter_plots_its_rise_per_flush() -> None:
    assert plot_unit("page_latency_ms", MetricType.GAUGE) == "ms"
    assert plot_unit("payload_bytes", MetricType.HISTOGRAM) == "bytes"
    assert plot_unit("gc_pause_seconds", MetricType.GAUGE) == "s"
    assert plot_unit("requests_total", MetricType.COUNTER) == "count per flush"
    assert plot_unit("sent_bytes_total", MetricType.COUNTER) == "bytes per flush"
    assert plot_unit("handler", MetricType.TIMER) == "ms"  # timers record milliseconds
    assert plot_unit("queue_depth", MetricType.GAUGE) == ""
