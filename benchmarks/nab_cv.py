"""Cross-validated NAB scores: every choice is made on files other than those it is scored on.

NAB's own score picks each detector's threshold on the very files it then scores, and a
detector whose parameters were picked the same way is scored on what it was fitted to. Here the
corpus is cut into folds (one per category, or one per file); for each fold, on the *other*
folds only, the candidate (a detector configuration, or an ensemble) and its threshold are
chosen with NAB's rules, then the fold is scored at that threshold. The folds' raw scores add up
to one total, normalised between the null and the perfect detector over the whole corpus as NAB
does. A detector given alone is a family of one: only its threshold is chosen out of fold, so
published detectors are measured by the same protocol as ours.

>>> from datetime import datetime, timedelta
>>> t = [datetime(2020, 1, 1) + timedelta(minutes=i) for i in range(100)]
>>> series = {
...     f"c{c}/f{c}.csv": nab.LabelledSeries(f"c{c}/f{c}.csv", tuple(t), (0.0,) * 100,
...                                           ((t[60], t[70]),))
...     for c in range(3)}
>>> hit = np.zeros(100); hit[61] = 1.0
>>> outputs = {"good": {n: hit for n in series}, "blind": {n: np.zeros(100) for n in series}}
>>> result = cross_validate(series, outputs, nab.DEFAULT_PROFILES, category_folds(series))
>>> [c.candidate for c in result["standard"].choices]
['good', 'good', 'good']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks import nab_score as nab

__all__ = [
    "Candidate",
    "CrossValidated",
    "FoldChoice",
    "blend",
    "category_folds",
    "cross_validate",
    "file_folds",
    "reproductions",
    "select",
]

Outputs = Mapping[str, Mapping[str, np.ndarray]]  # candidate -> file -> per-row scores


@dataclass(frozen=True)
class FoldChoice:
    """What the other folds chose for one held-out fold, and how the fold then scored."""

    fold: str
    candidate: str
    threshold: float
    raw: float


@dataclass(frozen=True)
class CrossValidated:
    profile: str
    normalised: float
    choices: tuple[FoldChoice, ...]


def category_folds(names: Sequence[str] | Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Leave one category out: ``category/file.csv`` grouped by category."""
    folds: dict[str, list[str]] = {}
    for name in sorted(names):
        folds.setdefault(name.split("/", 1)[0], []).append(name)
    return {k: tuple(v) for k, v in folds.items()}


def file_folds(names: Sequence[str] | Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Leave one file out."""
    return {name: (name,) for name in sorted(names)}


def cross_validate(
    corpus: Mapping[str, nab.LabelledSeries],
    outputs: Outputs,
    profiles: Mapping[str, nab.CostMatrix],
    folds: Mapping[str, Sequence[str]],
) -> dict[str, CrossValidated]:
    """Per profile: the normalised score of the held-out folds, each scored with the candidate
    and threshold that did best on the other folds (ties go to the earlier candidate)."""
    names = sorted(corpus)
    results = {}
    for profile, costs in profiles.items():
        points = {
            label: {n: nab.scored_points(corpus[n], scores[n], costs) for n in names}
            for label, scores in outputs.items()
        }
        null = {
            n: nab.scored_points(
                corpus[n], np.full(len(corpus[n].values), nab.NULL_DETECTOR_SCORE), costs
            )
            for n in names
        }
        null_raw = nab.sweep_thresholds(nab.ScoredPoints.concat(list(null.values())), costs).raw
        perfect = sum(len(s.windows) for s in corpus.values()) * costs.tp_weight
        choices, total = [], 0.0
        for fold, held in folds.items():
            train = [n for n in names if n not in held]
            best: tuple[float, str, float] | None = None
            for label in outputs:
                fitted = nab.sweep_thresholds(
                    nab.ScoredPoints.concat([points[label][n] for n in train]), costs
                )
                if best is None or fitted.raw > best[0]:
                    best = (fitted.raw, label, fitted.threshold)
            assert best is not None, "cross_validate needs at least one candidate"
            _, label, threshold = best
            held_points = nab.ScoredPoints.concat([points[label][n] for n in held])
            raw = nab.raw_at_threshold(held_points, costs, threshold)
            choices.append(FoldChoice(fold, label, threshold, raw))
            total += raw
        span = perfect - null_raw
        normalised = 100.0 * (total - null_raw) / span if span else 0.0
        results[profile] = CrossValidated(profile, normalised, tuple(choices))
    return results


def blend(outputs: Outputs, weights: Mapping[str, float]) -> dict[str, np.ndarray]:
    """A weighted mean of several candidates' per-row scores (weights need not sum to 1)."""
    total = sum(weights.values())
    files = next(iter(outputs.values()))
    return {
        name: sum(w * np.asarray(outputs[label][name]) for label, w in weights.items()) / total
        for name in files
    }


@dataclass
class Candidate:
    """One detector's per-row scores over the corpus: ours (with its config), an ensemble of
    ours, or a published output. ``shardable``: it runs in a shard as it is (vectorised, and
    needs nothing of a series in advance)."""

    label: str
    source: str
    scores: Mapping[str, np.ndarray]
    config: Mapping[str, object] | None = None
    points_per_second: float | None = None
    shardable: bool = False

    @property
    def key(self) -> str:
        return f"{self.source}:{self.label}"


def select(
    corpus: Mapping[str, nab.LabelledSeries],
    profiles: Mapping[str, nab.CostMatrix],
    candidates: Sequence[Candidate],
    folds: Mapping[str, Mapping[str, Sequence[str]]],
) -> dict[str, dict[str, object]]:
    """The protocol's choice among ours (all of them, and those a shard can run): per fold kind
    and profile, the cross-validated score and which candidate each fold chose."""
    pools = {
        "ours": [c for c in candidates if c.source in ("ours", "ensemble")],
        "shard": [c for c in candidates if c.source == "ours" and c.shardable],
    }
    chosen: dict[str, dict[str, object]] = {}
    for pool, members in pools.items():
        if not members:
            continue
        outputs = {c.label: c.scores for c in members}
        for kind, fold in folds.items():
            result = cross_validate(corpus, outputs, profiles, fold)
            chosen[f"{pool}/{kind}"] = {
                p: {
                    "score": round(r.normalised, 3),
                    "chosen": sorted({c.candidate for c in r.choices}),
                    "folds": {c.fold: c.candidate for c in r.choices},
                }
                for p, r in result.items()
            }
    return chosen


def reproductions(
    corpus: Mapping[str, nab.LabelledSeries],
    profiles: Mapping[str, nab.CostMatrix],
    candidates: Sequence[Candidate],
) -> dict[str, dict[str, object]]:
    """Each detector of ours that shares its name with a published one, row by row against it:
    per-file correlation of the scores (1.0 where both are the same constant), the share of rows
    equal to 1e-6, and the score difference per profile (ours minus published)."""
    published = {c.label: c for c in candidates if c.source == "published"}
    table: dict[str, dict[str, object]] = {}
    for ours in candidates:
        theirs = published.get(ours.label)
        if ours.source != "ours" or theirs is None:
            continue
        correlations, equal = {}, 0
        for name in sorted(corpus):
            a, b = np.asarray(ours.scores[name]), np.asarray(theirs.scores[name])
            equal += int(np.isclose(a, b, atol=1e-6).sum())
            if np.ptp(a) == 0 or np.ptp(b) == 0:
                correlations[name] = 1.0 if np.allclose(a, b, atol=1e-6) else 0.0
            else:
                correlations[name] = float(np.corrcoef(a, b)[0, 1])
        mine = nab.score_corpus(corpus, ours.scores, profiles)
        their = nab.score_corpus(corpus, theirs.scores, profiles)
        table[ours.label] = {
            "min_correlation": round(min(correlations.values()), 4),
            "median_correlation": round(float(np.median(list(correlations.values()))), 4),
            "rows_equal": round(equal / sum(len(s.values) for s in corpus.values()), 4),
            "ours": {p: round(mine[p].normalised, 2) for p in profiles},
            "published": {p: round(their[p].normalised, 2) for p in profiles},
            "difference": {p: round(mine[p].normalised - their[p].normalised, 2) for p in profiles},
            "per_file": {n: round(c, 4) for n, c in correlations.items()},
        }
    return table
