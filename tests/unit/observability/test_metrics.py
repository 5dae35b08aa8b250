"""The per-process recorder: validation once per key, bounded buffer, aggregation, shipping."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, merge_batches
from ray_enterprise.observability.metric_names import (
    MetricNameError,
    RefusalReason,
    check_name,
    check_tags,
)
from ray_enterprise.observability.recorder import Recorder
from tests.support import FakeClock


class Sink:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.batches: list[MetricBatch] = []

    def __call__(self, batch: MetricBatch) -> bool:
        if self.accept:
            self.batches.append(batch)
        return self.accept


def recorder(**kwargs: object) -> Recorder:
    # sink=None: no flush thread; tests drain by hand.
    return Recorder(sink=None, clock=FakeClock(), **kwargs)  # type: ignore[arg-type]


def by_name(batch: MetricBatch) -> dict[str, list[float]]:
    return {s.name: s.values.tolist() for s in batch.series}


def test_counter_points_are_summed_per_flush_and_labels_include_the_service() -> None:
    rec = recorder()
    for _ in range(5):
        assert rec.record("requests", 2, MetricType.COUNTER, {"code": "200"}, "api")
    batch = rec.drain()
    assert len(batch.series) == 1
    series = batch.series[0]
    assert series.values.tolist() == [10.0]
    assert series.labels == (("code", "200"), ("service", "api"))
    assert batch.ts_ms == 1_000_000


def test_timer_and_histogram_keep_every_value_and_gauges_keep_order() -> None:
    rec = recorder()
    for v in (3.0, 1.0, 2.0):
        rec.record("latency_ms", v, MetricType.TIMER)
        rec.record("level", v, MetricType.GAUGE)
    assert by_name(rec.drain()) == {"latency_ms": [3.0, 1.0, 2.0], "level": [3.0, 1.0, 2.0]}
    assert rec.drain().series == []


def test_tag_order_does_not_make_a_second_series() -> None:
    rec = recorder()
    rec.record("m", 1.0, MetricType.GAUGE, {"a": "1", "b": "2"})
    rec.record("m", 2.0, MetricType.GAUGE, {"b": "2", "a": "1"})
    batch = rec.drain()
    assert [s.values.tolist() for s in batch.series] == [[1.0, 2.0]]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (float("nan"), RefusalReason.NAN),
        (float("inf"), RefusalReason.INFINITE),
        (-math.inf, RefusalReason.INFINITE),
        ("12", RefusalReason.NOT_A_NUMBER),
        (None, RefusalReason.NOT_A_NUMBER),
        (True, RefusalReason.NOT_A_NUMBER),
        ([1.0], RefusalReason.NOT_A_NUMBER),
    ],
)
def test_non_finite_and_non_numeric_values_are_refused_and_counted(
    value: object, reason: RefusalReason
) -> None:
    rec = recorder()
    assert not rec.record("m", value, MetricType.GAUGE)  # type: ignore[arg-type]
    assert not rec.record("m", value, MetricType.GAUGE)  # type: ignore[arg-type]
    batch = rec.drain()
    assert batch.series == []
    assert batch.refused == {("m", reason.value): 2}
    assert ("m", reason.value) in batch.messages


def test_numpy_scalars_ints_and_decimals_are_numbers() -> None:
    rec = recorder()
    for v in (np.float32(1.5), np.int64(2), 3, Decimal("4.5")):
        assert rec.record("m", v, MetricType.HISTOGRAM)  # type: ignore[arg-type]
    assert by_name(rec.drain()) == {"m": [1.5, 2.0, 3.0, 4.5]}


@pytest.mark.parametrize(
    ("name", "tags", "reason"),
    [
        ("bad name", {}, RefusalReason.INVALID_NAME),
        ("9lives", {}, RefusalReason.INVALID_NAME),
        ("__internal", {}, RefusalReason.INVALID_NAME),
        ("latency_bucket", {}, RefusalReason.INVALID_NAME),
        ("ok", {"bad-tag": "x"}, RefusalReason.INVALID_TAG),
        ("ok", {"service": "x"}, RefusalReason.INVALID_TAG),
        ("ok", {"__x": "x"}, RefusalReason.INVALID_TAG),
        ("ok", {"t": 5}, RefusalReason.INVALID_TAG),
        ("ok", {"t": ["unhashable"]}, RefusalReason.INVALID_TAG),
    ],
)
def test_names_and_tags_breaking_prometheus_rules_are_refused(
    name: str, tags: dict[str, object], reason: RefusalReason
) -> None:
    rec = recorder()
    assert not rec.record(name, 1.0, MetricType.GAUGE, tags)  # type: ignore[arg-type]
    assert rec.drain().refused == {(name, reason.value): 1}


def test_negative_counter_increments_and_type_conflicts_are_refused() -> None:
    rec = recorder()
    assert not rec.record("c", -1.0, MetricType.COUNTER)
    assert rec.record("c", 1.0, MetricType.COUNTER)
    assert not rec.record("c", 1.0, MetricType.GAUGE)
    assert rec.drain().refused == {("c", "negative_counter"): 1, ("c", "type_conflict"): 1}


def test_cardinality_limit_admits_known_series_and_refuses_new_ones() -> None:
    rec = recorder(cardinality_limit=3)
    for user in range(10):
        rec.record("per_user", 1.0, MetricType.COUNTER, {"user": str(user)})
    assert rec.record("per_user", 1.0, MetricType.COUNTER, {"user": "0"})
    batch = rec.drain()
    assert sorted(s.labels for s in batch.series) == [(("user", str(u)),) for u in range(3)]
    assert batch.refused == {("per_user", "cardinality"): 7}


def test_full_buffer_drops_and_counts() -> None:
    rec = recorder(capacity=3)
    results = [rec.record("m", float(i), MetricType.HISTOGRAM) for i in range(5)]
    assert results == [True, True, True, False, False]
    batch = rec.drain()
    assert batch.dropped == 2
    assert by_name(batch) == {"m": [0.0, 1.0, 2.0]}


def test_unshipped_batches_are_retried_then_dropped_and_counted() -> None:
    sink = Sink(accept=False)
    rec = Recorder(sink=sink, clock=FakeClock(), max_pending=2, autostart=False)
    for i in range(3):
        rec.record("m", float(i), MetricType.HISTOGRAM)
        assert not rec.flush()
    assert rec.stats().pending_batches == 2
    assert rec.stats().dropped == 1  # the oldest batch fell out
    sink.accept = True
    assert rec.flush()
    assert [b.point_count for b in sink.batches] == [1, 1]
    assert sum(b.dropped for b in sink.batches) == 1


def test_handles_validate_once_and_raise_clear_errors() -> None:
    rec = recorder()
    hits = rec.counter("hits", {"route": "/a"}, "api")
    hits.inc()
    hits.inc(2)
    level = rec.gauge("queue_depth")
    level.inc(5)
    level.dec(2)
    clock = FakeClock(10.0)
    timer = rec.timer("op_ms", clock=clock)
    with timer:
        clock.now += 0.25
    with timer.time():
        clock.now += 0.5
    rec.histogram("size").observe(7)
    assert by_name(rec.drain()) == {
        "hits": [3.0],
        "queue_depth": [5.0, 3.0],
        "op_ms": [250.0, 500.0],
        "size": [7.0],
    }
    with pytest.raises(MetricNameError, match="must match"):
        rec.counter("bad name")
    with pytest.raises(ValueError, match="only goes up"):
        hits.inc(-1)


def test_merge_sums_counters_and_concatenates_the_rest_in_order() -> None:
    rec_a, rec_b = recorder(), recorder()
    for rec, base in ((rec_a, 0.0), (rec_b, 10.0)):
        rec.record("c", 1.0, MetricType.COUNTER)
        rec.record("t", base, MetricType.TIMER)
        rec.record("bad name", 1.0)
    merged = merge_batches([rec_a.drain(), rec_b.drain()])
    assert by_name(merged) == {"c": [2.0], "t": [0.0, 10.0]}
    assert merged.refused == {("bad name", "invalid_name"): 2}


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e9)))
def test_counter_total_is_exact_whatever_the_increments(increments: list[float]) -> None:
    rec = recorder()
    for inc in increments:
        rec.record("c", inc, MetricType.COUNTER)
    batch = rec.drain()
    total = sum(s.values.sum() for s in batch.series)
    assert total == pytest.approx(math.fsum(increments), rel=1e-9, abs=1e-9)


@given(st.text(max_size=20))
def test_name_check_agrees_with_the_prometheus_pattern(name: str) -> None:
    import re

    ok = bool(re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name)) and not name.startswith("__")
    ok = ok and not name.endswith(("_bucket", "_count", "_sum", "_created"))
    assert (check_name(name) is None) == ok


def test_tag_check_reports_the_tag_and_what_to_do() -> None:
    refusal = check_tags("m", {"service": "x"})
    assert refusal is not None and "service_name=" in refusal.message
