"""NAB: our detectors on the Numenta Anomaly Benchmark, beside NAB's published detectors.

    python -m benchmarks.nab --data ../shared/nab --out /tmp/nab-out [--detector NAME ...] [--reuse]

Runs each named detector (``default`` when none is named; ``leaders`` for the reproductions of
ARTime and contextOSE, ``fast`` for our numpy detectors, ``grid`` for the default's neighbours,
``stream`` for the streaming ARTime and its ensembles with the default, ``all``) over every
``data/<category>/*.csv`` of a NAB-format directory and writes per-row scores in NAB's results
layout (``OUT/<category>/<detector>_<file>.csv``; ``--reuse`` reads them back instead of running
again). Ensembles of the detectors that ran (:data:`ENSEMBLES`) and the
published outputs under ``DATA/results/`` join them. Each is scored three ways, per profile:

- in-sample: NAB's own score, its threshold chosen on the very files it scores;
- leave-one-category-out and leave-one-file-out (benchmarks.nab_cv): each fold scored at the
  threshold the other folds chose. The README's figures are these.

Then the protocol chooses, for each fold, the best of ours on the other folds (all of them, and
separately those a shard runs), and each reproduction is compared row by row with its published
output: per-file correlation, rows equal, score difference. One configuration per detector for
the whole corpus: nothing is tuned per file. Figures: benchmarks/README.md. Ray is neither
imported here nor started: the detectors and the scorer are plain Python.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import nab_cv
from benchmarks import nab_score as nab
from benchmarks.nab_cv import Candidate
from ray_enterprise.anomaly.detectors import (
    DEFAULT_DETECTOR,
    DetectorConfigError,
    build_detector,
    build_vector_detector,
)

# Benchmark names avoid "_": NAB's own scorer splits result file names on the first one.
# Every detector that can be asked for by name, each with one configuration for all files. A
# detector that scores every point raw is run as a max of one with a quiet period (one anomaly,
# one alarm): the same suppression the default and the river adapter apply.
_QUIET = {"fire": 0.45, "quiet": 300}
DETECTORS: dict[str, Mapping[str, Any]] = {
    "default": DEFAULT_DETECTOR,
    "contextSurprise": {"name": "max", "of": [DEFAULT_DETECTOR["of"][0]], "params": _QUIET},
    "rangeNovelty": DEFAULT_DETECTOR["of"][1],
    "seasonalResidual": DEFAULT_DETECTOR["of"][2],
    "ewmRange": {
        "name": "max",
        "of": [
            {
                "name": "ewm_zscore",
                "params": {"alpha": 0.01, "smoothing": 0.2, "long_alpha": 0.001, "half": 12.0},
            },
            {"name": "range_novelty", "params": {"tolerance": 0.02, "warmup": 150}},
        ],
        "params": {"fire": 0.7, "quiet": 300},
    },
    "ewmZScore": {"name": "ewm_zscore", "params": {"alpha": 0.01, "half": 6.0, "warmup": 150}},
    "ewmLikelihood": {
        "name": "ewm_zscore",
        "params": {"alpha": 0.01, "smoothing": 0.2, "long_alpha": 0.001, "half": 12.0},
    },
    "windowMad": {
        "name": "max",
        "of": [{"name": "window_mad", "params": {"window": 128, "half": 12.0, "smoothing": 0.2}}],
        "params": _QUIET,
    },
    "gaussianScorer": {"name": "GaussianScorer", "params": {"grace_period": 150}},
    "sad": {"name": "StandardAbsoluteDeviation"},
    "halfSpaceTrees": {
        "name": "HalfSpaceTrees",
        "params": {"seed": 42, "window_size": 250},
        "scaler": "MinMaxScaler",
        "shingle": 4,
    },
    "loda": {"name": "LODA", "params": {"seed": 42}},
    "oneClassSVM": {"name": "OneClassSVM", "scaler": "StandardScaler"},
    # The published leaders, reproduced (ray_enterprise/anomaly/artime.py, context_ose.py).
    "ARTime": {"name": "artime"},
    "contextOSE": {"name": "context_ose"},
}
# The streaming ARTime (anomaly/art.py): range learnt online, vectorised, so a shard can run it;
# alone, as the louder of it and the default, and as their mean. The protocol chooses among
# these and the default's neighbours; only a candidate better out of fold becomes the default.
STREAM_ART: Mapping[str, Any] = {"name": "art"}
DETECTORS["artStream"] = STREAM_ART
DETECTORS["artStreamKeep"] = {"name": "art", "params": {"relearn": False}}
DETECTORS["artStreamMaxDefault"] = {"name": "max", "of": [DEFAULT_DETECTOR, STREAM_ART]}
DETECTORS["artStreamMeanDefault"] = {"name": "mean", "of": [DEFAULT_DETECTOR, STREAM_ART]}
STREAM_REPLAY: Mapping[str, Any] = {"name": "art", "params": {"replay": True}}
DETECTORS["artStreamReplay"] = STREAM_REPLAY
DETECTORS["artStreamReplayMeanDefault"] = {"name": "mean", "of": [DEFAULT_DETECTOR, STREAM_REPLAY]}
STREAM = (
    "artStream",
    "artStreamKeep",
    "artStreamMaxDefault",
    "artStreamMeanDefault",
    "artStreamReplay",
    "artStreamReplayMeanDefault",
)
# The default's neighbours, for the protocol to choose among: its alarm level and quiet period.
for _fire, _quiet in ((0.35, 300), (0.55, 300), (0.45, 150), (0.45, 600)):
    DETECTORS[f"default-f{_fire}-q{_quiet}"] = {
        **DEFAULT_DETECTOR,
        "params": {"fire": _fire, "quiet": _quiet},
    }
GRID = tuple(n for n in DETECTORS if n.startswith("default-"))
# What NAB hands every detector before the first row: the file's range and length. Only the
# reproductions take them (as their published runs did); they cannot run in a shard for it.
GIVEN_IN_ADVANCE = ("artime", "context_ose")
# Ensembles of ours tried when all their parts ran: weights of a mean of per-row scores.
ENSEMBLES: dict[str, dict[str, float]] = {
    "ARTime+contextOSE": {"ARTime": 1.0, "contextOSE": 1.0},
    "ARTime+default": {"ARTime": 1.0, "default": 1.0},
    "contextOSE+default": {"contextOSE": 1.0, "default": 1.0},
    "ARTime+contextOSE+default": {"ARTime": 1.0, "contextOSE": 1.0, "default": 1.0},
    "2ARTime+contextOSE": {"ARTime": 2.0, "contextOSE": 1.0},
}
LEADERS = ("ARTime", "contextOSE")
FAST = (
    "default",
    "contextSurprise",
    "rangeNovelty",
    "seasonalResidual",
    "ewmRange",
    "ewmZScore",
    "ewmLikelihood",
    "windowMad",
)
RANDOM_SEEDS = 20


def given_in_advance(config: Mapping[str, Any], series: nab.LabelledSeries) -> dict[str, Any]:
    """A reproduction's config with what NAB told it before the first row: the file's range,
    its length (ARTime) and a rest period of a fifth of the probation (contextOSE)."""
    params = dict(config.get("params", {}))
    params.update(low=min(series.values), high=max(series.values))
    rows = len(series.values)
    if config["name"] == "artime":
        params["length"] = rows
    else:
        params["rest"] = nab.probationary_length(rows) / 5.0
    return {**config, "params": params}


def shardable(config: Mapping[str, Any]) -> bool:
    """Runs in a shard as configured: a vectorised detector needs no series known in advance."""
    try:
        build_vector_detector(config, 1)
    except DetectorConfigError:
        return False
    return True


def run_detector(
    config: Mapping[str, Any], corpus: Mapping[str, nab.LabelledSeries]
) -> dict[str, np.ndarray]:
    """Scores of every row of every file; numpy detectors score all files in one vector pass."""
    names = sorted(corpus)
    if config.get("name") in GIVEN_IN_ADVANCE:
        return {
            name: _one_series(given_in_advance(config, corpus[name]), corpus[name])
            for name in names
        }
    try:
        vector = build_vector_detector(config, len(names))
    except DetectorConfigError:
        vector = None
    if vector is not None:
        # One shard holding every file as a series: NaN pads the shorter files.
        length = max(len(corpus[n].values) for n in names)
        values = np.full((length, len(names)), np.nan)
        for j, name in enumerate(names):
            values[: len(corpus[name].values), j] = corpus[name].values
        scores = np.zeros_like(values)
        for t in range(length):
            scores[t] = vector.score_and_learn(values[t], float(t))[0]
        return {n: scores[: len(corpus[n].values), j] for j, n in enumerate(names)}
    return {name: _one_series(config, corpus[name]) for name in names}


def _one_series(config: Mapping[str, Any], series: nab.LabelledSeries) -> np.ndarray:
    detector = build_detector(config)
    return np.array(
        [
            detector.score_and_learn(v, ts.timestamp()).score
            for v, ts in zip(series.values, series.timestamps, strict=True)
        ]
    )


def random_scores(corpus: Mapping[str, nab.LabelledSeries], seed: int) -> dict[str, np.ndarray]:
    """NAB's random detector: a uniform score in 0..1 for every row, from one seed."""
    rng = np.random.default_rng(seed)
    return {name: rng.random(len(corpus[name].values)) for name in sorted(corpus)}


def random_baseline(
    corpus: Mapping[str, nab.LabelledSeries], profiles: Mapping[str, nab.CostMatrix]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """The median score of the random detector over :data:`RANDOM_SEEDS` seeds, and its range.

    One seed is luck: on this corpus single seeds score anywhere from about 0 to 18 (standard).
    """
    runs = [
        nab.score_corpus(corpus, random_scores(corpus, s), profiles) for s in range(RANDOM_SEEDS)
    ]
    median, spread = {}, {}
    for profile in profiles:
        values = [r[profile].normalised for r in runs]
        median[profile] = float(np.median(values))
        spread[profile] = (min(values), max(values))
    return median, spread


def write_results(
    out: Path, detector: str, corpus: Mapping[str, nab.LabelledSeries], scores: Mapping[str, Any]
) -> None:
    for name, series in corpus.items():
        category, file = name.split("/", 1)
        path = out / category / f"{detector}_{file}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for ts, value, score in zip(
                series.timestamps, series.values, scores[name], strict=True
            ):
                writer.writerow([ts.strftime("%Y-%m-%d %H:%M:%S"), repr(value), repr(float(score))])


def read_results(
    out: Path, detector: str, corpus: Mapping[str, nab.LabelledSeries]
) -> dict[str, np.ndarray] | None:
    """A detector's results written by an earlier run, when every file has them."""
    paths = nab.iter_result_files(out, detector, corpus)
    if not all(p.is_file() for p in paths.values()):
        return None
    scores = {n: nab.read_anomaly_scores(p) for n, p in paths.items()}
    if any(len(scores[n]) != len(corpus[n].values) for n in corpus):
        return None
    return scores


def ensembles(ours: Sequence[Candidate]) -> list[Candidate]:
    """The :data:`ENSEMBLES` whose parts all ran."""
    by_label = {c.label: c.scores for c in ours if c.source == "ours"}
    return [
        Candidate(label, "ensemble", nab_cv.blend(by_label, weights), weights)
        for label, weights in ENSEMBLES.items()
        if all(part in by_label for part in weights)
    ]


def published(data: Path, corpus: Mapping[str, nab.LabelledSeries]) -> dict[str, dict[str, Any]]:
    """Published detectors' outputs found under ``data/results``, each complete for the corpus."""
    found: dict[str, dict[str, Any]] = {}
    results = data / "results"
    if not results.is_dir():
        return found
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        paths = nab.iter_result_files(folder, folder.name, corpus)
        if all(p.is_file() for p in paths.values()):
            found[folder.name] = {n: nab.read_anomaly_scores(p) for n, p in paths.items()}
    return found


def parse_detectors(names: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """``NAME`` from :data:`DETECTORS`, ``all``, ``fast``, ``leaders`` (the reproductions),
    ``grid`` (the default's neighbours), ``stream`` (the streaming ARTime, alone and with the
    default), or ``NAME=JSON`` for any config."""
    chosen: dict[str, Mapping[str, Any]] = {}
    for item in names or ["default"]:
        if item == "leaders":
            chosen.update({n: DETECTORS[n] for n in LEADERS})
        elif item == "all":
            chosen.update(DETECTORS)
        elif item == "fast":
            chosen.update({n: DETECTORS[n] for n in FAST})
        elif item == "grid":
            chosen.update({n: DETECTORS[n] for n in GRID})
        elif item == "stream":
            chosen.update({n: DETECTORS[n] for n in STREAM})
        elif "=" in item:
            label, text = item.split("=", 1)
            chosen[label] = json.loads(text)
        elif item in DETECTORS:
            chosen[item] = DETECTORS[item]
        else:
            raise SystemExit(
                f"unknown detector {item!r}: use one of {', '.join(DETECTORS)}, all, fast, "
                'leaders, grid, stream, or NAME=\'{"name": ..., "params": {...}}\''
            )
    return chosen


def run_all(
    data: Path, out: Path, chosen: Mapping[str, Mapping[str, Any]], reuse: bool
) -> tuple[dict[str, nab.LabelledSeries], dict[str, nab.CostMatrix], list[Candidate]]:
    """Every chosen detector of ours run (or read back with ``reuse``) and written, then the
    ensembles of those in :data:`ENSEMBLE_PARTS`, then the published outputs."""
    profiles = nab.load_profiles(data / "config" / "profiles.json")
    corpus = nab.load_corpus(data / "data", data / "labels" / "combined_windows.json")
    points = sum(len(s.values) for s in corpus.values())
    candidates: list[Candidate] = []
    for label, config in chosen.items():
        scores = read_results(out, label, corpus) if reuse else None
        rate = None
        if scores is None:
            started = time.perf_counter()
            scores = run_detector(config, corpus)
            rate = points / (time.perf_counter() - started)
            write_results(out, label, corpus, scores)
        candidates.append(Candidate(label, "ours", scores, config, rate, shardable(config)))
    candidates += ensembles(candidates)
    for label, scores in published(data, corpus).items():
        candidates.append(Candidate(label, "published", scores))
    return corpus, profiles, candidates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a NAB-format directory")
    parser.add_argument("--out", type=Path, required=True, help="where results are written")
    parser.add_argument("--detector", action="append", default=[], help="repeatable")
    parser.add_argument("--json", type=Path, help="results JSON (default OUT/nab_scores.json)")
    parser.add_argument(
        "--reuse", action="store_true", help="read a detector's results from OUT when all exist"
    )
    args = parser.parse_args(argv)

    chosen = parse_detectors(args.detector)
    corpus, profiles, candidates = run_all(args.data, args.out, chosen, args.reuse)
    rows = [_row(c, nab.score_corpus(corpus, c.scores, profiles)) for c in candidates]
    random_median, random_spread = random_baseline(corpus, profiles)
    folds = {"category": nab_cv.category_folds(corpus), "file": nab_cv.file_folds(corpus)}
    for row, candidate in zip(rows, candidates, strict=False):
        for kind, fold in folds.items():
            result = nab_cv.cross_validate(
                corpus, {candidate.key: candidate.scores}, profiles, fold
            )
            row[f"cv_{kind}"] = {p: round(r.normalised, 3) for p, r in result.items()}
    selections = nab_cv.select(corpus, profiles, candidates, folds)
    reproduction = nab_cv.reproductions(corpus, profiles, candidates)
    rows.append(
        {
            "detector": "random",
            "source": "baseline",
            "config": {"seeds": RANDOM_SEEDS, "range": random_spread},
            "scores": {p: round(v, 3) for p, v in random_median.items()},
        }
    )
    print_report(args.data, corpus, profiles, rows, selections, reproduction)
    low, high = random_spread["standard"]
    print(f"random: median of {RANDOM_SEEDS} seeds (standard {low:.2f}..{high:.2f} over seeds)")
    target = args.json or args.out / "nab_scores.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "data": str(args.data),
        "results": rows,
        "selections": selections,
        "reproduction": reproduction,
    }
    target.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {target}")
    return 0


def _row(candidate: Candidate, result: Mapping[str, nab.ProfileResult]) -> dict[str, Any]:
    return {
        "detector": candidate.label,
        "source": candidate.source,
        "config": candidate.config,
        "points_per_second": candidate.points_per_second,
        "scores": {p: round(r.normalised, 3) for p, r in result.items()},
        "thresholds": {p: r.threshold for p, r in result.items()},
    }


def print_report(
    data: Path,
    corpus: Mapping[str, nab.LabelledSeries],
    profiles: Mapping[str, nab.CostMatrix],
    rows: Sequence[Mapping[str, Any]],
    selections: Mapping[str, Mapping[str, Any]],
    reproduction: Mapping[str, Mapping[str, Any]],
) -> None:
    windows = sum(len(s.windows) for s in corpus.values())
    print(f"NAB on {data} ({len(corpus)} series, {windows} windows)")
    print("in-sample: NAB's score (threshold chosen on the files scored); leave-one-category-out")
    print("and leave-one-file-out: each fold scored at the threshold chosen on the other folds")
    short = {"standard": "std", "reward_low_FP_rate": "lowFP", "reward_low_FN_rate": "lowFN"}
    names = [short.get(p, p) for p in profiles]
    header = f"{'detector':<28}{'source':<10}" + "".join(f"{n:>7}" for n in names * 3)
    print(f"{'':<38}{'in-sample':^21}{'CV category':^21}{'CV file':^21}")
    print(header)
    print("-" * len(header))
    for row in sorted(rows, key=lambda r: -r["scores"].get("standard", 0.0)):
        cells = ""
        for field in ("scores", "cv_category", "cv_file"):
            values = row.get(field)
            cells += "".join(f"{values[p]:>7.2f}" if values else f"{'':>7}" for p in profiles)
        print(f"{row['detector']:<28}{row['source']:<10}{cells}")
    for key, chosen in selections.items():
        pool, kind = key.split("/")
        what = "any of ours" if pool == "ours" else "those a shard runs"
        scores = "  ".join(f"{short.get(p, p)} {v['score']:.2f}" for p, v in chosen.items())
        print(f"chosen by leave-one-{kind}-out among {what}: {scores}")
        print(f"    standard's folds chose {', '.join(chosen['standard']['chosen'])}")
    for label, r in reproduction.items():
        diffs = "  ".join(f"{short.get(p, p)} {r['difference'][p]:+.2f}" for p in profiles)
        print(
            f"reproduction {label}: per-file correlation min {r['min_correlation']:.4f}, "
            f"rows equal {100 * r['rows_equal']:.2f} %, score ours - published: {diffs}"
        )


if __name__ == "__main__":
    sys.exit(main())
