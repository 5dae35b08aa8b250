"""Detectors, baselines, events, bad points and checkpoints: the pure core of anomaly detection."""

from __future__ import annotations

import math
import pickle
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ray_enterprise.anomaly.detectors import (
    DEFAULT_DETECTOR,
    DetectorConfigError,
    Score,
    build_detector,
    build_vector_detector,
    restore_detector,
)
from ray_enterprise.anomaly.events import (
    AnomalyEvent,
    AnomalyMonitor,
    Baseline,
    EventRateLimiter,
)
from ray_enterprise.anomaly.numpy_detectors import vector_from_state
from ray_enterprise.anomaly.point_gate import PointGate, Refused
from ray_enterprise.anomaly.seasonal import dominant_period
from ray_enterprise.errors import RayEnterpriseError
from tests.support import FakeClock

NUMPY_CONFIGS: dict[str, dict[str, Any]] = {
    "ewm_zscore": {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 20}},
    "ewm_likelihood": {"name": "ewm_zscore", "params": {"smoothing": 0.5, "warmup": 20}},
    "window_mad": {"name": "window_mad", "params": {"window": 32}},
    "range_novelty": {"name": "range_novelty", "params": {"warmup": 20}},
    "context_surprise": {"name": "context_surprise", "params": {"warmup": 50, "table": 256}},
    "seasonal_residual": {"name": "seasonal_residual", "params": {"warmup": 100, "settle": 20}},
    "art": {"name": "art", "params": {"step": 1, "probation": 200, "categories": 16}},
    "default": {"name": "default"},
}
RIVER_CONFIGS: dict[str, dict[str, Any]] = {
    "HalfSpaceTrees": {
        "name": "HalfSpaceTrees",
        "params": {"seed": 1, "window_size": 100},
        "scaler": "MinMaxScaler",
        "shingle": 2,
    },
    "GaussianScorer": {"name": "GaussianScorer", "params": {"grace_period": 20}},
    "StandardAbsoluteDeviation": {"name": "StandardAbsoluteDeviation"},
    "LODA": {"name": "LODA", "params": {"seed": 1, "n_random_cuts": 10}},
    "OneClassSVM": {"name": "OneClassSVM", "scaler": "StandardScaler"},
}
ALL_CONFIGS = {**NUMPY_CONFIGS, **RIVER_CONFIGS}


def seasonal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50.0 + 5.0 * np.sin(np.arange(n) * 2 * np.pi / 50) + rng.normal(0.0, 0.3, n)


def feed(detector: Any, values: np.ndarray, start: int = 0) -> list[Score]:
    return [detector.score_and_learn(float(v), float(start + i)) for i, v in enumerate(values)]


@pytest.mark.parametrize("name", sorted(set(NUMPY_CONFIGS) - {"context_surprise"}))
def test_numpy_detectors_score_an_injected_spike_above_everything_before_it(name: str) -> None:
    detector = build_detector(NUMPY_CONFIGS[name])
    values = seasonal(700)
    values[650] += 60.0
    scores = [s.score for s in feed(detector, values)]
    assert scores[650] > 0.5
    assert scores[650] > max(scores[400:650])


def test_context_surprise_finds_a_broken_pattern_at_ordinary_levels() -> None:
    rng = np.random.default_rng(0)
    saw = np.tile(np.arange(10.0), 150) + rng.normal(0.0, 0.05, 1500)
    saw[1200:1250] = np.tile(np.arange(9.0, -1.0, -1.0), 5) + rng.normal(0.0, 0.05, 50)
    scores = {}
    for name in ("context_surprise", "range_novelty"):
        detector = build_detector({"name": name, "params": {"warmup": 100}})
        scores[name] = np.array([s.score for s in feed(detector, saw)])
    surprise = scores["context_surprise"]
    assert surprise[1200:1250].max() > 1.5 * surprise[400:1200].max()
    assert scores["range_novelty"][1200:1250].max() == 0.0  # every level was seen before


def test_dominant_period_is_the_cycle_length_or_one_when_there_is_none() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(600)
    block = np.stack(
        [
            np.sin(2 * np.pi * t / 37) + rng.normal(0.0, 0.2, 600),
            np.where(t % 90 < 30, 5.0, 1.0),  # a square wave: high a third of each cycle
            rng.normal(0.0, 1.0, 600),  # noise has no period
            np.cumsum(rng.normal(0.0, 1.0, 600)),  # a random walk is smooth, not seasonal
        ]
    )
    assert dominant_period(block, 0.3).tolist() == [37, 90, 1, 1]


def test_seasonal_residual_finds_a_daily_jump_that_does_not_come() -> None:
    # Every "day" of 50 points the series jumps up for 10 points; on day 25 it stays flat:
    # every value is ordinary, only the missing jump is not.
    rng = np.random.default_rng(2)
    day = np.where(np.arange(50) % 50 >= 30, 20.0, 10.0)
    days = np.tile(day, 30) + rng.normal(0.0, 0.3, 1500)
    days[25 * 50 + 30 : 25 * 50 + 40] = 10.0 + rng.normal(0.0, 0.3, 10)
    scores = {}
    for name in ("seasonal_residual", "range_novelty"):
        detector = build_detector(NUMPY_CONFIGS[name])
        scores[name] = np.array([s.score for s in feed(detector, days)])
    missing = slice(25 * 50 + 30, 25 * 50 + 40)
    assert scores["seasonal_residual"][missing].max() > 0.5
    settled = scores["seasonal_residual"][300:1250]  # period found, residual scale learnt
    assert scores["seasonal_residual"][missing].max() > 1.5 * settled.max()
    assert scores["range_novelty"][missing].max() == 0.0


@pytest.mark.parametrize("name", ["StandardAbsoluteDeviation", "GaussianScorer", "LODA"])
def test_river_detectors_judging_points_alone_score_a_spike_above_typical_points(
    name: str,
) -> None:
    detector = build_detector({**RIVER_CONFIGS[name], "smoothing": 0.0, "quiet": 0})
    values = seasonal(400)
    values[350] += 60.0
    scores = [s.score for s in feed(detector, values)]
    assert scores[350] > max(scores[200:350])


@pytest.mark.parametrize("name", sorted(RIVER_CONFIGS))
def test_river_detectors_find_a_lasting_level_shift_with_their_defaults(name: str) -> None:
    # The likelihood layer answers a lasting change, not the first odd point; HalfSpaceTrees
    # used to score exactly 1.0 when its first window filled, and so alarmed on every series.
    values = seasonal(1200)
    values[1000:] += 40.0
    scores = np.array([s.score for s in feed(build_detector(RIVER_CONFIGS[name]), values)])
    assert scores[1000:1050].max() > scores[:1000].max()


@pytest.mark.parametrize(
    ("option", "value"), [("smoothing", 1.5), ("fire", 0.0), ("quiet", -1), ("warmup", 2.5)]
)
def test_river_adapter_refuses_bad_options(option: str, value: float) -> None:
    with pytest.raises(DetectorConfigError) as caught:
        build_detector({"name": "GaussianScorer", option: value})
    assert caught.value.parameter == option


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_scores_and_confidence_stay_within_unit_interval(name: str) -> None:
    values = np.concatenate([seasonal(150), [1e9, -1e9, 0.0, 50.0, 50.0, 1e-9]])
    for result in feed(build_detector(ALL_CONFIGS[name]), values):
        assert 0.0 <= result.score <= 1.0 and 0.0 <= result.confidence <= 1.0


@pytest.mark.parametrize("name", sorted(ALL_CONFIGS))
def test_restored_detector_continues_exactly_where_the_original_was(name: str) -> None:
    values = seasonal(300, seed=1)
    original = build_detector(ALL_CONFIGS[name])
    feed(original, values[:200])
    restored = restore_detector(pickle.loads(pickle.dumps(original.to_state())))
    assert feed(restored, values[200:], 200) == feed(original, values[200:], 200)


def test_vectorised_shard_scores_each_series_as_if_alone() -> None:
    data = np.stack([seasonal(300, seed=s) * (s + 1) for s in range(4)], axis=1)
    data[250, 2] += 500.0
    data[100:120, 1] = np.nan  # series 1 sends nothing for a while
    shard = build_vector_detector(DEFAULT_DETECTOR, 4)
    together = np.stack([shard.score_and_learn(data[t], float(t))[0] for t in range(300)])
    for s in range(4):
        alone = build_detector(DEFAULT_DETECTOR)
        present = ~np.isnan(data[:, s])
        scores = [alone.score_and_learn(v, 0.0).score for v in data[present, s]]
        np.testing.assert_allclose(together[present, s], scores, atol=1e-12)
    assert together[250, 2] > 0.0


@pytest.mark.parametrize("config", [DEFAULT_DETECTOR, *NUMPY_CONFIGS.values()], ids=str)
def test_a_shard_with_series_that_sent_nothing_yet_warns_of_nothing(
    config: dict[str, Any],
) -> None:
    """A shard has slots for series that have not sent a value yet (the shard is sized ahead):
    their empty state must not print numpy warnings into every operator's log."""
    shard = build_vector_detector(config, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in range(300):
            scores, _ = shard.score_and_learn(np.array([np.nan, 10.0 + t % 7, np.nan]), float(t))
            assert np.all(np.isfinite(scores))


def test_vector_state_round_trips_through_pickle() -> None:
    shard = build_vector_detector(DEFAULT_DETECTOR, 3)
    rows = np.stack([seasonal(200, seed=s) for s in range(3)], axis=1)
    for t in range(200):
        shard.score_and_learn(rows[t], float(t))
    copy = vector_from_state(pickle.loads(pickle.dumps(shard.to_state())))
    probe = np.array([50.0, 500.0, 49.0])
    np.testing.assert_array_equal(
        shard.score_and_learn(probe, 200.0)[0], copy.score_and_learn(probe, 200.0)[0]
    )


def test_combination_stays_quiet_after_an_alarm() -> None:
    detector = build_detector(
        {
            "name": "max",
            "of": [{"name": "range_novelty", "params": {"warmup": 10}}],
            "params": {"fire": 0.6, "quiet": 5},
        }
    )
    feed(detector, seasonal(50))
    loud = feed(detector, np.array([1000.0, 2000.0, 3000.0]), 50)
    assert loud[0].score > 0.6
    assert all(s.score < 0.6 for s in loud[1:])


def test_mean_combination_averages_its_parts() -> None:
    parts = [{"name": "range_novelty", "params": {"warmup": 5}}] * 2
    mean = build_detector({"name": "mean", "of": parts})
    single = build_detector(parts[0])
    values = np.append(seasonal(30), 200.0)
    assert feed(mean, values)[-1].score == pytest.approx(feed(single, values)[-1].score)


@pytest.mark.parametrize(
    ("config", "parameter"),
    [
        ({"name": "no_such_detector"}, "name"),
        ({"name": "HalfSpaceTrees", "params": {"n_treez": 3}}, "n_treez"),
        ({"name": "HalfSpaceTrees", "scaler": "NoSuchScaler"}, "scaler"),
        ({"name": "GaussianScorer", "scaler": "MinMaxScaler"}, "scaler"),
        ({"name": "ewm_zscore", "params": {"alpha": 3.0}}, "alpha"),
        ({"name": "ewm_zscore", "params": {"beta": 1}}, "beta"),
        ({"name": "max", "of": []}, "of"),
        ({"name": "max", "of": [{"name": "ewm_zscore"}], "params": {"fire": 7}}, "fire"),
        ({"params": {}}, "name"),
    ],
)
def test_bad_config_names_the_detector_and_parameter(
    config: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(DetectorConfigError) as caught:
        build_detector(config)
    assert caught.value.parameter == parameter
    assert isinstance(caught.value, RayEnterpriseError)
    assert parameter in str(caught.value)


def test_river_models_cannot_be_vectorised() -> None:
    with pytest.raises(DetectorConfigError, match="per series"):
        build_vector_detector({"name": "HalfSpaceTrees"}, 10)


MONITORED: dict[str, dict[str, Any]] = {
    "default": {"name": "default"},
    "fast_zscore": {
        "name": "max",
        "of": [{"name": "ewm_zscore", "params": {"alpha": 0.05}}],
        "params": {"quiet": 20},
    },
}


def run_monitor(config: str, values: np.ndarray) -> list[AnomalyEvent]:
    """Events of a monitor on ``MONITORED[config]``; the default names itself "default"."""
    clock = FakeClock(0.0)
    name = None if config == "default" else config
    monitor = AnomalyMonitor(
        MONITORED[config], min_samples=300, period=60.0, clock=clock, detector_name=name
    )
    events = []
    for t, v in enumerate(values):
        clock.now = float(t)
        event = monitor.observe("cpu", float(v), float(t))
        if event is not None:
            events.append(event)
    assert monitor.recent_events("cpu") == events
    return events


@pytest.mark.parametrize("config", sorted(MONITORED))
def test_monitor_finds_an_injected_spike_once(config: str) -> None:
    values = seasonal(1200)
    values[900] += 60.0
    events = run_monitor(config, values)
    assert [e.timestamp for e in events] == [900.0]
    # confidence is how much history the score rests on: the default's sequence model wants 1200
    assert events[0].value == pytest.approx(values[900]) and 0.5 < events[0].confidence <= 1.0
    assert events[0].detector == config


@pytest.mark.parametrize("config", sorted(MONITORED))
def test_monitor_finds_an_injected_level_shift(config: str) -> None:
    values = seasonal(1200)
    values[900:] += 40.0
    times = [e.timestamp for e in run_monitor(config, values)]
    assert times and all(900 <= t <= 910 for t in times)


@pytest.mark.parametrize("config", sorted(MONITORED))
def test_monitor_raises_no_event_during_warmup(config: str) -> None:
    values = seasonal(400)
    values[20] += 80.0
    values[250] -= 80.0
    assert run_monitor(config, values) == []


def test_restarted_monitor_keeps_its_baseline_and_detectors() -> None:
    clock = FakeClock(0.0)
    monitor = AnomalyMonitor(min_samples=200, clock=clock)
    for t, v in enumerate(seasonal(600)):
        monitor.observe("mem", float(v), float(t))
    restored = AnomalyMonitor.from_state(
        pickle.loads(pickle.dumps(monitor.to_state())), clock=clock
    )
    fresh = AnomalyMonitor(min_samples=200, clock=clock)
    assert restored.observe("mem", 150.0, 600.0) is not None  # warm: alarms at once
    assert fresh.observe("mem", 150.0, 600.0) is None  # a cold start would still be learning
    assert restored.observe("mem", 50.0, 599.0) is None  # and remembers the last timestamp
    assert restored.gate.refused["out_of_order"] == 1


def test_bad_points_are_refused_counted_and_never_reach_the_detector() -> None:
    monitor = AnomalyMonitor(min_samples=10)
    for t in range(50):
        monitor.observe("s", 1.0 + t % 3, float(t))
    before = monitor.detectors["s"].to_state()
    bad: list[tuple[Any, Any]] = [
        (math.nan, 100.0),
        (math.inf, 101.0),
        (-math.inf, 102.0),
        ("12", 103.0),
        (None, 104.0),
        (True, 105.0),
        (1.0, 10.0),
        (1.0, 49.0),
        (1.0, math.nan),
        (1.0, "now"),
        (10**400, 106.0),
    ]
    for value, ts in bad:
        assert monitor.observe("s", value, ts) is None
    assert dict(monitor.gate.refused) == {
        "nan": 1,
        "infinite": 3,
        "not_a_number": 3,
        "out_of_order": 2,
        "bad_timestamp": 2,
    }
    assert pickle.dumps(monitor.detectors["s"].to_state()) == pickle.dumps(before)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True),
                st.integers(min_value=-(10**400), max_value=10**400),
                st.text(max_size=3),
                st.none(),
                st.booleans(),
            ),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=2)
            ),
        ),
        max_size=40,
    )
)
def test_monitor_never_raises_on_arbitrary_points(points: list[tuple[Any, Any]]) -> None:
    monitor = AnomalyMonitor(min_samples=5)
    for value, ts in points:
        event = monitor.observe("s", value, ts)
        assert event is None or 0.0 <= event.score <= 1.0
    assert monitor.gate.admitted + sum(monitor.gate.refused.values()) == len(points)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12), min_size=1, max_size=80))
def test_vector_scores_stay_in_unit_interval_for_any_finite_values(values: list[float]) -> None:
    shard = build_vector_detector(
        {
            "name": "max",
            "of": [
                {"name": "ewm_zscore", "params": {"warmup": 2, "smoothing": 0.3}},
                {"name": "window_mad", "params": {"window": 4}},
                {"name": "range_novelty", "params": {"warmup": 2}},
                {"name": "context_surprise", "params": {"warmup": 3, "table": 16}},
                {"name": "seasonal_residual", "params": {"warmup": 8, "settle": 2}},
                {"name": "art", "params": {"step": 1, "probation": 16, "window": 4}},
            ],
        },
        2,
    )
    for t, v in enumerate(values):
        scores, confidence = shard.score_and_learn(np.array([v, -v]), float(t))
        assert np.all((scores >= 0) & (scores <= 1)) and np.all(
            (confidence >= 0) & (confidence <= 1)
        )


def test_baseline_learns_a_higher_threshold_for_noisier_scores() -> None:
    calm, noisy = (
        Baseline(min_samples=50, k=3.0, floor=0.0),
        Baseline(min_samples=50, k=3.0, floor=0.0),
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        calm.is_anomaly(0.1)
        noisy.is_anomaly(float(rng.uniform(0.0, 0.4)))
    assert noisy.threshold > calm.threshold
    assert calm.is_anomaly(0.9) and not noisy.is_anomaly(0.3)


def test_baseline_decides_nothing_before_min_samples() -> None:
    baseline = Baseline(min_samples=10)
    assert not any(baseline.is_anomaly(1.0) for _ in range(10))
    assert baseline.is_anomaly(1.0)


def test_rate_limiter_allows_max_events_per_period_per_series() -> None:
    clock = FakeClock(0.0)
    limiter = EventRateLimiter(max_events=2, period=10.0, clock=clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
    clock.now = 9.9
    assert not limiter.allow("a")
    clock.now = 10.0
    assert limiter.allow("a")
    assert limiter.suppressed == 2


def test_point_gate_refuses_equal_timestamps_per_series_only() -> None:
    gate = PointGate()
    assert not isinstance(gate.check("a", 1.0, 5.0), Refused)
    assert gate.check("a", 2.0, 5.0) == Refused("a", "out_of_order")
    assert not isinstance(gate.check("b", 1.0, 5.0), Refused)
    assert not isinstance(gate.check("a", np.float32(2.0), np.int64(6)), Refused)


def test_point_gate_fast_path_for_plain_floats_refuses_and_counts_like_the_full_checks() -> None:
    gate = PointGate()
    assert gate.refusal("a", 1.0, 1.0) is None
    assert gate.refusal("a", 2.0, 1.0) == "out_of_order"  # plain floats, equal timestamp
    assert gate.refusal("a", math.nan, 2.0) == "nan"
    assert gate.refusal("a", -math.inf, 3.0) == "infinite"
    assert gate.refusal("a", 1.0, math.inf) == "bad_timestamp"
    assert gate.refusal("a", 3, 4) is None  # ints take the full checks and are admitted
    assert gate.refusal("a", 5.0, 3.5) == "out_of_order"  # ... and set the last timestamp
    assert gate.admitted == 2
    assert dict(gate.refused) == {"out_of_order": 2, "nan": 1, "infinite": 1, "bad_timestamp": 1}
