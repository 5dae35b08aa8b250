"""The streaming ARTime: what it finds, that series stay apart, bounded state, checkpoints."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from ray_enterprise.anomaly.art import WindowART, haar_rows
from ray_enterprise.anomaly.artime import haar
from ray_enterprise.anomaly.detectors import DetectorConfigError, build_vector_detector
from ray_enterprise.anomaly.numpy_detectors import vector_from_state

SMALL: dict[str, Any] = {"step": 2, "probation": 200, "categories": 16}


def daily(n: int, seed: int = 0, period: int = 60) -> np.ndarray:
    """A repeating day: low at night, a plateau by day, a little noise."""
    rng = np.random.default_rng(seed)
    phase = np.arange(n) % period
    return 20.0 + 60.0 * (phase >= period // 2) + rng.normal(0.0, 0.5, n)


def run(detector: WindowART, data: np.ndarray) -> np.ndarray:
    """Scores of a (time x series) block, one frame per row."""
    return np.stack([detector.score_and_learn(row, float(t))[0] for t, row in enumerate(data)])


def test_haar_rows_is_the_reproductions_haar_row_by_row() -> None:
    rows = np.random.default_rng(1).random((5, 8))
    np.testing.assert_allclose(haar_rows(rows), np.stack([haar(r) for r in rows]), atol=1e-12)


def test_a_day_stuck_half_way_is_scored_and_the_days_before_it_are_not() -> None:
    values = daily(1500)
    values[1200:1260] = 50.0 + np.random.default_rng(2).normal(0.0, 0.5, 60)  # inside the range
    scores = run(WindowART(1, **SMALL), values[:, None])[:, 0]
    assert scores[1200:1290].max() > 0.5
    assert scores[900:1200].max() == 0.0  # learnt days: nothing founds a category


def test_a_value_past_the_range_seen_is_scored_though_the_range_was_never_given() -> None:
    values = daily(1500, seed=3)
    values[1210:1220] = 400.0
    scores = run(WindowART(1, **SMALL), values[:, None])[:, 0]
    assert scores[1210:1240].max() > 0.5
    assert scores[900:1210].max() == 0.0


def test_each_series_scores_as_if_alone_whatever_frames_it_misses() -> None:
    data = np.stack([daily(900, seed=s) * (s + 1) for s in range(3)], axis=1)
    data[700:705, 1] += 300.0
    data[100:131, 2] = np.nan  # series 2 sends nothing for a while
    together = run(WindowART(3, **SMALL), data)
    for s in range(3):
        present = ~np.isnan(data[:, s])
        alone = run(WindowART(1, **SMALL), data[present, s][:, None])[:, 0]
        np.testing.assert_array_equal(together[present, s], alone)
    assert np.count_nonzero(together[:, 1]) > 0


def test_state_is_fixed_per_series_however_many_categories_the_data_asks_for() -> None:
    detector = WindowART(2, **{**SMALL, "categories": 4})
    sizes = {name: getattr(detector, name).nbytes for name in WindowART.ARRAYS}
    run(detector, np.random.default_rng(4).random((3000, 2)) * 1e3)  # noise: a new shape each time
    assert {name: getattr(detector, name).nbytes for name in WindowART.ARRAYS} == sizes
    assert (detector.size > 0).sum(axis=1).tolist() == [4, 4]  # full, and no more


def test_a_checkpoint_resumes_with_the_same_scores() -> None:
    data = np.stack([daily(1200, seed=s) for s in range(2)], axis=1)
    data[1000:1010, 0] = 300.0
    original = build_vector_detector({"name": "art", "params": SMALL}, 2)
    run(original, data[:600])  # type: ignore[arg-type]
    restored = vector_from_state(pickle.loads(pickle.dumps(original.to_state())))
    after = np.stack([restored.score_and_learn(row, 0.0)[0] for row in data[600:]])
    expected = np.stack([original.score_and_learn(row, 0.0)[0] for row in data[600:]])
    np.testing.assert_array_equal(after, expected)
    assert after[400:430, 0].max() > 0.5


def test_a_grown_detector_keeps_its_rows_and_starts_new_ones_fresh() -> None:
    data = daily(700)[:, None]
    grown = WindowART(1, **SMALL)
    run(grown, data[:400])
    grown.resize(2)
    fresh = WindowART(1, **SMALL)
    both = np.concatenate([data[400:], data[:300]], axis=1)
    scores = run(grown, both)
    np.testing.assert_array_equal(scores[:, 1], run(fresh, data[:300])[:, 0])


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"window": 6}, "window"),
        ({"step": 0}, "step"),
        ({"probation": 10}, "probation"),
        ({"categories": 1}, "categories"),
        ({"headroom": -1.0}, "headroom"),
        ({"replay": True, "relearn": False}, "replay"),
        ({"vigilance": 0.9}, "vigilance"),
    ],
)
def test_bad_params_are_refused_naming_the_parameter(
    params: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(DetectorConfigError) as caught:
        build_vector_detector({"name": "art", "params": params}, 1)
    assert caught.value.parameter == parameter
    assert "art" in str(caught.value)


def test_replay_learns_the_probation_again_in_the_units_it_ended_with() -> None:
    values = daily(400)
    values[150:160] = 200.0  # the range grows late in the probation
    ends = 200  # probation points
    kept = WindowART(1, **SMALL)
    replayed = WindowART(1, **SMALL, replay=True)
    run(kept, values[:ends, None])
    run(replayed, values[:ends, None])
    assert (kept.size > 0).sum() == 1  # relearning alone: only the all-ones category
    assert (replayed.size > 0).sum() > 1
    assert replayed.rho_ub[0] == kept.rho_ub[0]  # the same vigilance, found before the replay
