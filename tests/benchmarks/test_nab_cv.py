"""The cross-validated NAB protocol: every choice is made on folds other than the one scored."""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta

import numpy as np
import pytest

from benchmarks import nab_cv
from benchmarks import nab_score as nab

START = datetime(2024, 1, 1)
ROWS = 200


def labelled(name: str) -> nab.LabelledSeries:
    stamps = tuple(START + timedelta(minutes=5 * i) for i in range(ROWS))
    return nab.LabelledSeries(name, stamps, (0.0,) * ROWS, ((stamps[120], stamps[140]),))


def flagged(at: int, score: float) -> np.ndarray:
    scores = np.zeros(ROWS)
    scores[at] = score
    return scores


def test_the_module_example_runs() -> None:
    assert doctest.testmod(nab_cv).failed == 0


def test_a_threshold_is_chosen_on_the_other_folds_not_on_the_one_scored() -> None:
    corpus = {n: labelled(n) for n in ("a/1.csv", "b/1.csv")}
    # Loud in a, quiet in b: one threshold for both (NAB's in-sample) catches both windows; the
    # threshold a teaches (0.9) misses b's window, and b's (0.3) is fine for a.
    scores = {"a/1.csv": flagged(121, 0.9), "b/1.csv": flagged(121, 0.3)}
    standard = {"standard": nab.DEFAULT_PROFILES["standard"]}
    in_sample = nab.score_corpus(corpus, scores, standard)["standard"].normalised
    cv = nab_cv.cross_validate(corpus, {"x": scores}, standard, nab_cv.category_folds(corpus))[
        "standard"
    ]
    assert in_sample == pytest.approx(100.0, abs=2.0)
    assert cv.normalised == pytest.approx(in_sample / 2, abs=2.0)
    assert {c.fold: c.threshold for c in cv.choices} == {"a": 0.3, "b": 0.9}


def test_a_candidate_good_only_on_the_held_out_fold_is_never_chosen_for_it() -> None:
    corpus = {n: labelled(n) for n in ("a/1.csv", "b/1.csv", "c/1.csv")}
    hit, miss = flagged(121, 1.0), flagged(30 + 10, 1.0)  # row 40: after probation, no window
    steady = {n: hit for n in corpus}
    lucky = {"a/1.csv": miss, "b/1.csv": miss, "c/1.csv": hit}
    result = nab_cv.cross_validate(
        corpus,
        {"lucky": lucky, "steady": steady},
        {"standard": nab.DEFAULT_PROFILES["standard"]},
        nab_cv.category_folds(corpus),
    )["standard"]
    assert [c.candidate for c in result.choices] == ["steady"] * 3


def test_a_fixed_threshold_scores_as_the_sweep_does_at_its_own_choice() -> None:
    rng = np.random.default_rng(2)
    corpus = {n: labelled(n) for n in ("a/1.csv", "a/2.csv", "b/1.csv")}
    costs = nab.DEFAULT_PROFILES["reward_low_FN_rate"]
    points = nab.ScoredPoints.concat(
        [nab.scored_points(s, rng.random(ROWS), costs) for s in corpus.values()]
    )
    best = nab.sweep_thresholds(points, costs)
    assert nab.raw_at_threshold(points, costs, best.threshold) == pytest.approx(best.raw)


def test_folds_leave_out_one_category_or_one_file() -> None:
    names = ["a/1.csv", "a/2.csv", "b/1.csv"]
    assert nab_cv.category_folds(names) == {"a": ("a/1.csv", "a/2.csv"), "b": ("b/1.csv",)}
    assert list(nab_cv.file_folds(names).values()) == [(n,) for n in names]


def test_a_blend_is_the_weighted_mean_of_its_parts() -> None:
    outputs = {"x": {"f": np.array([0.0, 1.0])}, "y": {"f": np.array([1.0, 1.0])}}
    np.testing.assert_allclose(nab_cv.blend(outputs, {"x": 3.0, "y": 1.0})["f"], [0.25, 1.0])
