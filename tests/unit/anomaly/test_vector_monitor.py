from __future__ import annotations

import math
import pickle
import random
import tracemalloc
from typing import Any

import numpy as np

from ray_enterprise.anomaly.detectors import DEFAULT_DETECTOR, build_vector_detector
from ray_enterprise.anomaly.numpy_detectors import vector_from_state
from ray_enterprise.anomaly.vector_monitor import VectorAnomalyMonitor

EWM = {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 30}}
# Every vectorised detector, warm within a few dozen points.
EVERY_KIND = {
    "name": "max",
    "of": [
        {"name": "context_surprise", "params": {"bins": 4, "lags": [1, 2], "warmup": 20}},
        {"name": "range_novelty", "params": {"warmup": 10}},
        {"name": "seasonal_residual", "params": {"warmup": 16, "settle": 10}},
        {"name": "window_mad", "params": {"window": 8, "smoothing": 0.1}},
        {"name": "ewm_zscore", "params": {"smoothing": 0.1, "warmup": 5}},
    ],
    "params": {"fire": 0.5, "quiet": 5},
}


def numpy_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of every numpy array reachable from ``obj``'s attributes, lists and dicts."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(numpy_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(numpy_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__"):
        return numpy_bytes(vars(obj), seen)
    return 0


def feed(monitor: VectorAnomalyMonitor, series: int, frames: range) -> None:
    rng = np.random.default_rng(frames.start)
    for t in frames:
        values = 100.0 + rng.normal(0.0, 1.0, series)
        monitor.observe_points([(f"s{i}", float(t), float(v)) for i, v in enumerate(values)])


def wave(t: int, rnd: random.Random) -> float:
    return 100.0 + 5.0 * math.sin(t / 10.0) + rnd.gauss(0.0, 1.0)


def test_one_frame_scores_every_series_and_finds_only_the_spiking_one() -> None:
    monitor = VectorAnomalyMonitor(EWM, capacity=50, min_samples=60, period=0)
    rnd = random.Random(3)
    names = [f"s{i}" for i in range(50)]
    events = []
    for t in range(300):
        points = [
            (n, float(t), wave(t, rnd) + (90.0 if n == "s7" and t == 250 else 0.0)) for n in names
        ]
        events += monitor.observe_points(points)
    assert [(e.series, e.timestamp) for e in events] == [("s7", 250.0)]
    assert monitor.admitted == 300 * 50


def test_no_event_during_warm_up_even_for_a_huge_value() -> None:
    monitor = VectorAnomalyMonitor(EWM, capacity=4, min_samples=100)
    rnd = random.Random(1)
    for t in range(99):
        value = 1e9 if t == 50 else wave(t, rnd)
        assert monitor.observe_points([("a", float(t), value)]) == []


def test_bad_points_are_counted_by_reason() -> None:
    monitor = VectorAnomalyMonitor(EWM, capacity=1)
    monitor.observe_points([("a", 5.0, 1.0)])
    monitor.observe_points(
        [("a", 6.0, float("nan")), ("a", 7.0, float("inf")), ("a", 8.0, "x"), ("a", 4.0, 1.0)]
    )
    monitor.observe_points([("b", 9.0, 1.0), ("a", "later", 1.0)])
    assert dict(monitor.refused) == {
        "nan": 1, "infinite": 1, "not_a_number": 1, "out_of_order": 1, "capacity": 1,
        "bad_timestamp": 1,
    }  # fmt: skip


def test_state_round_trips_through_pickle() -> None:
    monitor = VectorAnomalyMonitor(EWM, capacity=3, min_samples=10)
    for t in range(40):
        monitor.observe_points([("a", float(t), float(t % 5)), ("b", float(t), 1.0)])
    clone = VectorAnomalyMonitor(EWM, capacity=3, min_samples=10)
    clone.load_state(pickle.loads(pickle.dumps(monitor.to_state())))
    assert clone.samples("a") == monitor.samples("a") == 40
    a = monitor.observe_points([("a", 41.0, 50.0)])
    b = clone.observe_points([("a", 41.0, 50.0)])
    assert [(e.score, e.series) for e in a] == [(e.score, e.series) for e in b]
    assert np.array_equal(monitor.mean, clone.mean)


def test_state_of_100_series_is_sized_for_them_not_for_a_capacity_of_10000() -> None:
    monitor = VectorAnomalyMonitor(DEFAULT_DETECTOR, capacity=10_000)
    feed(monitor, 100, range(3))
    # One series: the default detector's rows plus the monitor's six float64 baselines.
    row = numpy_bytes(build_vector_detector(DEFAULT_DETECTOR, 1)) + 6 * 8
    assert row > 30_000  # at capacity 10,000 that would be 360 MB, held or not
    assert numpy_bytes(monitor) <= 2 * 100 * row  # rows grow by doubling
    assert len(pickle.dumps(monitor.to_state())) <= 100 * row + 65_536  # only rows in use


def test_twenty_checkpoints_of_100_series_do_not_grow_memory() -> None:
    monitor = VectorAnomalyMonitor(DEFAULT_DETECTOR, capacity=10_000)
    feed(monitor, 100, range(3))
    blob = pickle.dumps(monitor.to_state())
    tracemalloc.start()  # counts what is allocated from here on and still held
    try:
        for t in range(3, 23):
            blob = pickle.dumps(monitor.to_state())
            feed(monitor, 100, range(t, t + 1))
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < len(blob) + 1_000_000  # the last checkpoint, and nothing piling up
    # A checkpoint holds a copy of the rows in use, the pickler's buffer and the pickle (~3.8 MB
    # each here) while the previous one is still referenced; at capacity rows that was ~1.4 GB.
    assert peak < 5 * len(blob) + 1_000_000 < 24_000_000


def test_rows_grown_as_series_arrive_score_like_rows_allocated_up_front() -> None:
    grown, full = build_vector_detector(EVERY_KIND, 2), build_vector_detector(EVERY_KIND, 40)
    rng = np.random.default_rng(5)
    spike = 0.0
    for t in range(200):
        active = min(40, 2 + t // 4)  # a new series every 4 frames
        if t == 100:  # through a checkpoint of the rows in use, as a shard restart does
            grown = vector_from_state(pickle.loads(pickle.dumps(grown.to_state(active))))
        if grown.n_series < active:
            grown.resize(min(40, 2 * grown.n_series))
        values = np.full(40, np.nan)
        values[:active] = 10.0 * np.sin(t / 3.0) + rng.normal(0.0, 1.0, active)
        values[7] = 50.0 if t == 150 else values[7]
        scores, confidence = grown.score_and_learn(values[: grown.n_series], float(t))
        full_scores, full_confidence = full.score_and_learn(values, float(t))
        assert np.array_equal(scores, full_scores[: grown.n_series]), t
        assert np.array_equal(confidence, full_confidence[: grown.n_series]), t
        spike = full_scores[7] if t == 150 else spike
    assert spike > 0.5  # the check covered scoring, not only warm-up zeros


def test_restore_from_a_checkpoint_of_all_capacity_rows_keeps_only_the_rows_in_use() -> None:
    monitor = VectorAnomalyMonitor(EWM, capacity=1000, min_samples=10)
    feed(monitor, 3, range(40))
    state = monitor.to_state()
    detector = vector_from_state(state["detector"])
    detector.resize(1000)  # checkpoints before rows grew had every row
    state["detector"] = detector.to_state()
    state["arrays"] = {k: np.resize(v, 1000) for k, v in state["arrays"].items()}
    clone = VectorAnomalyMonitor(EWM, capacity=1000, min_samples=10)
    clone.load_state(state)
    assert clone.rows == clone.detector.n_series == len(clone.mean) == 64
    assert clone.samples("s2") == 40
    assert np.array_equal(clone.detector.to_state(3)["arrays"]["mean"], monitor.detector.mean[:3])
