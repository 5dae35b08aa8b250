from __future__ import annotations

import math
import pickle
import random

import numpy as np

from ray_enterprise.observability.vector_monitor import VectorAnomalyMonitor

EWM = {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 30}}


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
