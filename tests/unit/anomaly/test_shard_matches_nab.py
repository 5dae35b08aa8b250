"""A detector scores a series in a shard exactly as benchmarks/nab.py scores it: the default,
and the streaming ARTime the protocol weighs against it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from benchmarks import nab, nab_score
from ray_enterprise.anomaly.detectors import DEFAULT_DETECTOR
from ray_enterprise.anomaly.shard import build_monitor
from ray_enterprise.anomaly.vector_monitor import VectorAnomalyMonitor
from tests.benchmarks.test_nab_score import nab_dir

NAB = nab_dir()
FILES = {
    "realKnownCause/nyc_taxi.csv": 900,
    "artificialWithAnomaly/art_daily_jumpsup.csv": 1000,
}
# Rows per file for each detector: enough to be past its warm-up and score something.
CASES = {
    "default": (DEFAULT_DETECTOR, FILES),
    "art": (
        nab.DETECTORS["artStream"],
        {"realKnownCause/nyc_taxi.csv": 1800, "artificialWithAnomaly/art_daily_jumpsup.csv": 3200},
    ),
}


@pytest.mark.skipif(NAB is None, reason="NAB subset not found at ../shared/nab")
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_shard_gives_the_nab_benchmark_scores_through_a_checkpoint(case: str) -> None:
    assert NAB is not None
    config, files = CASES[case]
    corpus = nab_score.load_corpus(NAB / "data", NAB / "labels" / "combined_windows.json")
    series = {
        name: nab_score.LabelledSeries(
            name, corpus[name].timestamps[:rows], corpus[name].values[:rows], ()
        )
        for name, rows in files.items()
    }
    expected = nab.run_detector(config, series)

    # The shard's own path: its monitor, points as ingest() takes them, a checkpoint half way.
    monitor = build_monitor(config, min_samples=100, capacity=10_000)
    assert isinstance(monitor, VectorAnomalyMonitor)
    got: dict[str, list[float]] = {name: [] for name in series}
    for t in range(max(files.values())):
        if t == 500:
            state = pickle.loads(pickle.dumps(monitor.to_state()))
            monitor = build_monitor(config, min_samples=100, capacity=10_000)
            monitor.load_state(state)
        points = [(n, float(t), s.values[t]) for n, s in series.items() if t < len(s.values)]
        monitor.observe_points(points)
        assert isinstance(monitor, VectorAnomalyMonitor)
        for name, _, _ in points:
            got[name].append(float(monitor.scores[monitor.index[name]]))
    for name in series:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        assert np.count_nonzero(expected[name]) > 0, name  # warm: real scores, not zeros
