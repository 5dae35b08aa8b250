"""The Numenta Anomaly Benchmark (NAB) score, computed the way NAB defines it.

NAB rewards a detector for flagging each labelled anomaly window early and punishes every flagged
point outside a window, less so just after a window (a late detection is nearly right). The rules,
re-implemented from NAB's description and checked against its published outputs:

- every row gets a weight: inside a window, a scaled sigmoid of its position (early is worth up to
  ``tp_weight``); outside, ``-fp_weight`` times a sigmoid of the distance past the previous window
  (a full ``-fp_weight`` when no window precedes it);
- the first 15 % of each file (at most 750 rows) is a probationary period, not scored;
- a window contributes the best weight among its flagged rows, or ``-fn_weight`` if none is
  flagged; every flagged row outside windows adds its (negative) weight;
- one threshold per profile is chosen over the whole corpus, the one with the best total;
- the total is normalised to 0..100 between the null detector (a constant score) and the perfect
  detector (``tp_weight`` per window).

The sweep over thresholds is exhaustive (every distinct score is tried), as NAB's optimiser does.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ray_enterprise.errors import RayEnterpriseError

__all__ = [
    "DEFAULT_PROFILES",
    "CostMatrix",
    "LabelledSeries",
    "NabError",
    "ProfileResult",
    "ScoredPoints",
    "load_corpus",
    "load_profiles",
    "probationary_length",
    "raw_at_threshold",
    "read_anomaly_scores",
    "scaled_sigmoid",
    "score_corpus",
    "scored_points",
    "sweep_thresholds",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PROBATION_PERCENT = 0.15
# NAB caps probation at the share of a 5000-row file, so long files are not mostly unscored.
PROBATION_CAP_ROWS = 5000
# The first threshold NAB tries: above every score, so nothing is flagged.
NOTHING_FLAGGED = 1.1
NULL_DETECTOR_SCORE = 0.5


class NabError(RayEnterpriseError):
    """A NAB corpus, label file or results file cannot be scored; ``path`` says which."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class CostMatrix:
    """One NAB application profile: how much a detection, a miss and a false alarm weigh."""

    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float = 1.0


DEFAULT_PROFILES: Mapping[str, CostMatrix] = {
    "standard": CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": CostMatrix(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}


@dataclass(frozen=True)
class LabelledSeries:
    """One data file of the corpus with its anomaly windows (inclusive timestamp ranges)."""

    name: str
    timestamps: tuple[datetime, ...]
    values: tuple[float, ...]
    windows: tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True)
class ScoredPoints:
    """The scorable rows of a corpus: the detector's score, the row's NAB weight, its window.

    ``window`` is -1 outside any window, else an index unique over the whole corpus.
    """

    scores: FloatArray
    weights: FloatArray
    window: IntArray
    n_windows: int

    @staticmethod
    def concat(parts: Sequence[ScoredPoints]) -> ScoredPoints:
        offset = 0
        windows = []
        for part in parts:
            windows.append(np.where(part.window >= 0, part.window + offset, -1))
            offset += part.n_windows
        return ScoredPoints(
            scores=np.concatenate([p.scores for p in parts]) if parts else np.zeros(0),
            weights=np.concatenate([p.weights for p in parts]) if parts else np.zeros(0),
            window=np.concatenate(windows).astype(np.int64) if parts else np.zeros(0, np.int64),
            n_windows=offset,
        )


@dataclass(frozen=True)
class ProfileResult:
    """The outcome for one detector and one profile."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    tp: int
    fp: int
    fn_windows: int


def scaled_sigmoid(position: float | FloatArray) -> FloatArray:
    """Weight of a row at ``position`` relative to a window's right edge.

    -1 is the left edge (worth ~0.987), 0 the right edge (0), positive positions are after the
    window and grow towards -1; past 3 window-lengths a false alarm costs the full -1.
    """
    x = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, value)


MAX_TP = float(scaled_sigmoid(-1.0))


def probationary_length(rows: int, percent: float = PROBATION_PERCENT) -> float:
    """Rows at the start of a file that are not scored (the detector is still learning)."""
    return min(math.floor(percent * rows), percent * PROBATION_CAP_ROWS)


def scored_points(
    series: LabelledSeries,
    anomaly_scores: Sequence[float] | FloatArray,
    costs: CostMatrix,
    probation_percent: float = PROBATION_PERCENT,
) -> ScoredPoints:
    """Weigh every row of one file and drop the probationary ones."""
    n = len(series.timestamps)
    scores = np.asarray(anomaly_scores, dtype=np.float64)
    if scores.shape != (n,):
        raise NabError(f"{len(scores)} anomaly scores for {n} rows", path=series.name)
    if not np.all(np.isfinite(scores)):
        raise NabError("anomaly scores must be finite numbers", path=series.name)
    index = {ts: i for i, ts in enumerate(series.timestamps)}
    spans = []
    for start, end in series.windows:
        if start not in index or end not in index:
            raise NabError(
                f"window {start}..{end} does not start and end on rows of the file",
                path=series.name,
            )
        spans.append((index[start], index[end]))
    spans.sort()  # the distance of a false alarm is measured from the window just before it
    rows = np.arange(n)
    weights = np.full(n, -costs.fp_weight)
    window = np.full(n, -1, dtype=np.int64)
    for k, (left, right) in enumerate(spans):
        width = right - left + 1
        inside = slice(left, right + 1)
        position = -(right - rows[inside] + 1) / width
        weights[inside] = scaled_sigmoid(position) * costs.tp_weight / MAX_TP
        window[inside] = k
        next_left = spans[k + 1][0] if k + 1 < len(spans) else n
        after = slice(right + 1, next_left)
        if width > 1:  # a one-row window has no length to measure distance by
            distance = (rows[after] - right) / (width - 1)
            weights[after] = scaled_sigmoid(distance) * costs.fp_weight
    keep = rows >= probationary_length(n, probation_percent)
    kept_windows = np.unique(window[keep & (window >= 0)])
    renumber = np.full(len(spans) + 1, -1, dtype=np.int64)
    renumber[kept_windows] = np.arange(len(kept_windows))
    return ScoredPoints(
        scores=scores[keep],
        weights=weights[keep],
        window=renumber[window[keep]],
        n_windows=len(kept_windows),
    )


def sweep_thresholds(points: ScoredPoints, costs: CostMatrix) -> ProfileResult:
    """The best threshold for ``points`` (raw score only; ``normalised`` is left at 0).

    Lowering the threshold past a row flags it: an outside row adds its weight, a window row
    raises its window's contribution to the best weight seen so far. A cumulative sum over rows
    sorted by score gives the total at every threshold at once.
    """
    order = np.argsort(-points.scores, kind="stable")
    scores = points.scores[order]
    weights = points.weights[order]
    window = points.window[order]
    delta = np.where(window < 0, weights, 0.0)
    for k in range(points.n_windows):
        idx = np.flatnonzero(window == k)
        best = np.maximum.accumulate(np.concatenate(([-costs.fn_weight], weights[idx])))
        delta[idx] = np.diff(best)
    base = -costs.fn_weight * points.n_windows
    totals = base + np.cumsum(delta)
    # A threshold flags every row scoring at least that much: read totals at the end of each run
    # of equal scores.
    ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], len(scores) > 0))
    candidates = np.concatenate(([base], totals[ends]))
    thresholds = np.concatenate(([NOTHING_FLAGGED], scores[ends]))
    best_i = int(np.argmax(candidates))  # first maximum: the highest threshold among ties
    flagged = 0 if best_i == 0 else int(ends[best_i - 1]) + 1
    in_window = window[:flagged] >= 0
    found = len(np.unique(window[:flagged][in_window]))
    return ProfileResult(
        profile="",
        threshold=float(thresholds[best_i]),
        raw=float(candidates[best_i]),
        normalised=0.0,
        tp=int(in_window.sum()),
        fp=int((~in_window).sum()),
        fn_windows=points.n_windows - found,
    )


def raw_at_threshold(points: ScoredPoints, costs: CostMatrix, threshold: float) -> float:
    """The raw score of ``points`` flagged at a threshold chosen elsewhere (rows scoring at
    least ``threshold``): how a threshold picked on some files does on others."""
    flagged = points.scores >= threshold
    outside = flagged & (points.window < 0)
    total = float(points.weights[outside].sum())
    best = np.full(points.n_windows, -costs.fn_weight)
    inside = flagged & (points.window >= 0)
    np.maximum.at(best, points.window[inside], points.weights[inside])
    return total + float(best.sum())


def score_corpus(
    corpus: Mapping[str, LabelledSeries],
    anomaly_scores: Mapping[str, Sequence[float] | FloatArray],
    profiles: Mapping[str, CostMatrix] = DEFAULT_PROFILES,
    probation_percent: float = PROBATION_PERCENT,
) -> dict[str, ProfileResult]:
    """Score one detector's outputs on every file of ``corpus``, for every profile.

    The perfect score counts the windows of the files scored, so a run on part of a corpus is
    normalised against that part.
    """
    missing = sorted(set(corpus) - set(anomaly_scores))
    if missing:
        raise NabError(f"no anomaly scores for {len(missing)} files, e.g. {missing[0]}")
    n_windows = sum(len(s.windows) for s in corpus.values())
    results = {}
    for name, costs in profiles.items():
        detector = _best(corpus, anomaly_scores, costs, probation_percent)
        null = _best(
            corpus,
            {k: np.full(len(s.timestamps), NULL_DETECTOR_SCORE) for k, s in corpus.items()},
            costs,
            probation_percent,
        )
        perfect = n_windows * costs.tp_weight
        span = perfect - null.raw
        normalised = 100.0 * (detector.raw - null.raw) / span if span else 0.0
        results[name] = ProfileResult(
            profile=name,
            threshold=detector.threshold,
            raw=detector.raw,
            normalised=normalised,
            tp=detector.tp,
            fp=detector.fp,
            fn_windows=detector.fn_windows,
        )
    return results


def _best(
    corpus: Mapping[str, LabelledSeries],
    anomaly_scores: Mapping[str, Sequence[float] | FloatArray],
    costs: CostMatrix,
    probation_percent: float,
) -> ProfileResult:
    parts = [
        scored_points(series, anomaly_scores[name], costs, probation_percent)
        for name, series in sorted(corpus.items())
    ]
    return sweep_thresholds(ScoredPoints.concat(parts), costs)


def load_profiles(path: Path | None = None) -> dict[str, CostMatrix]:
    """NAB's ``profiles.json`` if given and present, else NAB's three default profiles."""
    if path is None or not path.is_file():
        return dict(DEFAULT_PROFILES)
    raw = json.loads(path.read_text())
    try:
        return {
            name: CostMatrix(
                tp_weight=float(spec["CostMatrix"]["tpWeight"]),
                fp_weight=float(spec["CostMatrix"]["fpWeight"]),
                fn_weight=float(spec["CostMatrix"]["fnWeight"]),
                tn_weight=float(spec["CostMatrix"].get("tnWeight", 1.0)),
            )
            for name, spec in raw.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise NabError(f"not a NAB profiles file ({exc!r})", path=str(path)) from exc


def _parse_time(text: str, path: Path) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise NabError(f"bad timestamp {text!r}", path=str(path)) from exc


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def load_corpus(data_dir: Path, labels_path: Path) -> dict[str, LabelledSeries]:
    """Every ``<category>/<file>.csv`` under ``data_dir`` with its windows from ``labels_path``.

    A file without an entry in the labels is refused: scoring it as anomaly-free would silently
    count its real anomalies as false alarms.
    """
    labels = json.loads(labels_path.read_text())
    corpus = {}
    for path in sorted(data_dir.glob("*/*.csv")):
        name = f"{path.parent.name}/{path.name}"
        if name not in labels:
            raise NabError(f"{name} has no entry in {labels_path}", path=str(path))
        rows = _read_csv(path)
        try:
            values = tuple(float(r["value"]) for r in rows)
        except (KeyError, ValueError) as exc:
            raise NabError(f"expected numeric 'value' column ({exc!r})", path=str(path)) from exc
        corpus[name] = LabelledSeries(
            name=name,
            timestamps=tuple(_parse_time(r["timestamp"], path) for r in rows),
            values=values,
            windows=tuple(
                (_parse_time(a, labels_path), _parse_time(b, labels_path)) for a, b in labels[name]
            ),
        )
    if not corpus:
        raise NabError("no <category>/<file>.csv data files found", path=str(data_dir))
    return corpus


def read_anomaly_scores(path: Path) -> FloatArray:
    """The ``anomaly_score`` column of one NAB results file."""
    try:
        return np.array([float(r["anomaly_score"]) for r in _read_csv(path)], dtype=np.float64)
    except (KeyError, ValueError) as exc:
        raise NabError(
            f"expected numeric 'anomaly_score' column ({exc!r})", path=str(path)
        ) from exc


def iter_result_files(folder: Path, detector: str, names: Iterable[str]) -> dict[str, Path]:
    """Where NAB's layout keeps ``detector``'s output for each ``category/file.csv``.

    ``folder`` is the detector's own directory (NAB's ``results/<detector>``):
    ``folder/<category>/<detector>_<file>.csv``.
    """
    found = {}
    for name in names:
        category, file = name.split("/", 1)
        found[name] = folder / category / f"{detector}_{file}"
    return found
