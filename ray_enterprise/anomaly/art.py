"""A vectorised, streaming ARTime: adaptive resonance over windows of every series of a shard.

ARTime (Hampton, 2021; :mod:`ray_enterprise.anomaly.artime` reproduces it) leads NAB's published
table, but it is told each series' minimum, maximum and length before the first row and keeps
one Python object per series with categories that grow without bound. This detector keeps its
structure and drops what a stream cannot know:

- every ``step`` points one value stands for them (the mean, or the extreme furthest from a
  running average when it is 10 % away from the mean), as in ARTime;
- the range is learnt online, the running minimum and maximum of the points seen so far, and
  the last ``window`` down-sampled values are re-normalised with the range of the moment each
  time they form a vector: a value past the old range compresses the whole window, which no
  category has seen;
- values close to the series' running median (a one-level-per-value tracker in place of
  ARTime's exact median of levels) snap to it, so noise around the usual level is one value;
- the window and its Haar transform (both scaled to 0..1) go to a dual-vigilance fuzzy ART of at
  most ``categories`` categories per series: when all are taken, the one unused for longest
  makes room, so memory per series is fixed;
- the probationary period (``probation`` points, NAB's 15 % of a typical file) trains the ART
  at ``initial_rho`` and sets both vigilances to the mean similarity of its second half (ARTime
  replays the period at a vigilance found by ordering its vectors, which needs them all at
  once); with ``relearn`` the categories then start again, since those learnt while the range
  was still growing are in other units; after it, the vigilances adapt, candidates are masked
  and scored as ARTime does;
- ``replay`` keeps the probation's down-sampled values (4 bytes each, ~120 per series) and,
  after relearning, trains the ART on its windows again with the range the probation ended
  with, as ARTime replays its probation with the range it is given (a one-off cost of ~110 ART
  steps per series at the end of probation);
- ``headroom`` widens the normalising range by that share of the span each time a value leaves
  it, so a creeping range re-normalises less often (0: the range is exactly what was seen).

Written from ARTime's description (in ARTimeNAB.jl, linked from NAB) and our own rewrite in
artime.py; no code was copied from its AGPL-3 repository or any other.

State is one row per series in arrays (float32 categories), so a shard checkpoints it like its
other numpy detectors. A step does work only for the series whose down-sample falls due (one
point in ``step``), as a few array operations over ``(rows, categories, 2 * window)``: at 64
categories that is ~2,000 values per series due, and over 10,000 series it runs 0.1-0.4 M
points/s (benchmarks/README.md), below a shard's 1 M target. With that, and its NAB scores out
of fold below the default's, it is an option (``{"name": "art"}``), not the default.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ray_enterprise.anomaly.numpy_detectors import ArrayState, FloatArray, keyword_arguments

__all__ = ["WindowART", "haar_rows"]

BoolArray = npt.NDArray[np.bool_]


def haar_rows(x: FloatArray) -> FloatArray:
    """The orthonormal Haar transform of each row (power-of-two length), ordered as
    :func:`ray_enterprise.anomaly.artime.haar`: coarsest average, then details coarse to fine."""
    details: list[FloatArray] = []
    current = np.asarray(x, dtype=np.float64)
    root = np.sqrt(2.0)
    while current.shape[1] > 1:
        even, odd = current[:, 0::2], current[:, 1::2]
        details.insert(0, (odd - even) / root)
        current = (even + odd) / root
    return np.concatenate([current, *details], axis=1)


def _unit_rows(x: FloatArray) -> FloatArray:
    shifted = x - x.min(axis=1, keepdims=True)
    top = shifted.max(axis=1, keepdims=True)
    return np.divide(shifted, top, out=np.zeros_like(shifted), where=top != 0)


class WindowART(ArrayState):
    """Anomaly scores from a streaming ARTime for ``n_series`` series at once."""

    kind: ClassVar[str] = "art"
    ARRAYS = (
        "seen",
        "ds",
        "block_sum",
        "block_max",
        "block_min",
        "average",
        "low",
        "high",
        "scale_low",
        "scale_high",
        "median",
        "recent",
        "probation_values",
        "weights",
        "size",
        "last_use",
        "rho_lb",
        "rho_ub",
        "probation_sum",
        "similarity_sum",
        "similarities",
        "shortfalls",
        "last_anomaly",
        "last_rho_update",
        "no_new_category",
        "masked",
        "last_anomaly_similarity",
        "anomaly_sum",
        "anomaly_last",
        "anomaly_n",
    )

    def __init__(
        self,
        n_series: int,
        *,
        step: int = 5,
        probation: int = 600,
        window: int = 8,
        levels: int = 80,
        snap: float = 0.075,
        initial_rho: float = 0.8,
        categories: int = 64,
        headroom: float = 0.0,
        relearn: bool = True,
        replay: bool = False,
    ) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if step < 1 or window < 2 or window & (window - 1):
            raise ValueError(f"need step >= 1 and window a power of two >= 2, got {step}, {window}")
        if probation < 2 * step * window:
            raise ValueError(f"probation must be >= 2 * step * window, got {probation}")
        if replay and not relearn:
            raise ValueError("replay learns the probation again after relearn: set relearn too")
        if headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {headroom}")
        if levels < 2 or not 0.0 <= snap < 1.0 or not 0.0 < initial_rho < 1.0 or categories < 2:
            raise ValueError(
                "need levels >= 2, snap in [0, 1), initial_rho in (0, 1) and categories >= 2"
            )
        self.step, self.window, self.levels, self.snap = step, window, levels, snap
        self.initial_rho, self.categories, self.headroom = initial_rho, categories, headroom
        self.relearn = relearn
        self.replay = replay
        self.trend = probation // step  # down-samples in the probationary period
        self.mask = int(window * 1.5)
        n, dim = n_series, 2 * window
        self.seen = np.zeros(n, dtype=np.int64)
        self.ds = np.zeros(n, dtype=np.int64)  # down-sampled values so far
        self.block_sum = np.zeros(n)
        self.block_max = np.full(n, -np.inf)
        self.block_min = np.full(n, np.inf)
        self.average = np.zeros(n)
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.scale_low = np.full(n, np.inf)  # the range values are normalised with
        self.scale_high = np.full(n, -np.inf)
        self.median = np.zeros(n)
        self.recent = np.zeros((n, window))
        # With ``replay``, the probation's down-sampled values, to learn again at its end.
        self.probation_values = np.zeros((n, self.trend if replay else 0), dtype=np.float32)
        # Complement-coded categories; a slot with size 0 is free.
        self.weights = np.zeros((n, categories, 2 * dim), dtype=np.float32)
        self.size = np.zeros((n, categories), dtype=np.float32)
        self.last_use = np.zeros((n, categories), dtype=np.int64)
        self.rho_lb = np.full(n, initial_rho)
        self.rho_ub = np.full(n, initial_rho)
        self.probation_sum = np.zeros(n)
        self.similarity_sum = np.zeros(n)
        self.similarities = np.ones((n, self.trend // 2 + 1), dtype=np.float32)
        self.shortfalls = np.zeros((n, self.trend + 1), dtype=np.float32)
        self.last_anomaly = np.zeros(n, dtype=np.int64)
        self.last_rho_update = np.zeros(n, dtype=np.int64)
        self.no_new_category = np.zeros(n, dtype=np.int64)
        self.masked = np.zeros(n, dtype=np.bool_)
        self.last_anomaly_similarity = np.zeros(n)
        self.anomaly_sum = np.zeros(n)  # similarities of the anomalies before the last one
        self.anomaly_last = np.zeros(n)
        self.anomaly_n = np.zeros(n, dtype=np.int64)

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        xs = np.where(ok, x, 0.0)
        self.block_sum += xs
        self.block_max = np.where(ok, np.fmax(self.block_max, x), self.block_max)
        self.block_min = np.where(ok, np.fmin(self.block_min, x), self.block_min)
        self.low = np.where(ok, np.fmin(self.low, x), self.low)
        self.high = np.where(ok, np.fmax(self.high, x), self.high)
        # The range values are normalised with moves only when a value leaves it, and then
        # leaves ``headroom`` of the span seen either side: each move re-normalises every
        # window, so a series whose range creeps should not move it at every new extreme.
        outside = ok & ((x < self.scale_low) | (x > self.scale_high))
        if outside.any():
            with np.errstate(invalid="ignore"):  # rows not yet seen have an infinite span
                room = self.headroom * (self.high - self.low) if self.headroom else 0.0
            self.scale_low = np.where(outside, self.low - room, self.scale_low)
            self.scale_high = np.where(outside, self.high + room, self.scale_high)
        self.seen += ok
        due = ok & (self.seen % self.step == 0)
        scores = np.zeros(self.n_series)
        if due.any():
            rows: Any = slice(None) if due.all() else np.flatnonzero(due)
            scores[rows] = self._downsampled(rows)
        return scores, np.minimum(1.0, self.ds / self.trend)

    def _downsampled(self, rows: Any) -> FloatArray:
        mean = self.block_sum[rows] / self.step
        top, bottom = self.block_max[rows].copy(), self.block_min[rows].copy()
        self.block_sum[rows] = 0.0
        self.block_max[rows] = -np.inf
        self.block_min[rows] = np.inf
        self.ds[rows] += 1
        i = self.ds[rows].copy()
        first = i == 1
        average = (np.where(first, mean, self.average[rows]) + mean) / 2.0
        self.average[rows] = average
        value = np.where(np.abs(top - average) < np.abs(bottom - average), bottom, top)
        value = np.where(np.abs(value - mean) < 0.1 * np.abs(mean), mean, value)

        low, span = self.scale_low[rows], self.scale_high[rows] - self.scale_low[rows]
        flat = span <= 0
        span = np.where(flat, 1.0, span)
        # The median as a level that moves one level towards each new value: ARTime's median
        # of levels without a histogram, which a range that keeps growing would invalidate.
        level = np.round((value - low) / span * self.levels)
        median = np.where(first, level, np.round((self.median[rows] - low) / span * self.levels))
        median += np.sign(level - median)
        self.median[rows] = low + median / self.levels * span
        near = np.abs(level - median) / self.levels < self.snap
        value = np.where(near & ~flat, self.median[rows], value)
        recent = np.roll(self.recent[rows], -1, axis=1)
        recent[:, -1] = value
        self.recent[rows] = recent
        if self.replay:
            kept = self.probation_values[rows]
            at = np.flatnonzero(i <= self.trend)
            kept[at, i[at] - 1] = value[at]
            self.probation_values[rows] = kept
        features = self._features(recent, low, span, flat)
        features = np.where((i >= self.window)[:, None], features, 0.0)
        similarity, energy, new_category = self._resonate(rows, features, i)
        return self._detect(rows, i, similarity, energy, new_category)

    def _features(
        self, recent: FloatArray, low: FloatArray, span: FloatArray, flat: BoolArray
    ) -> FloatArray:
        """Windows on levels of the range given, and their Haar transform, both in 0..1."""
        levels = np.round(np.clip((recent - low[:, None]) / span[:, None], 0.0, 1.0) * self.levels)
        levels = np.where(flat[:, None], 0.0, levels / self.levels)
        return np.concatenate([_unit_rows(haar_rows(_unit_rows(levels))), levels], axis=1)

    def _replay(self, r: npt.NDArray[np.int64]) -> None:
        """Train the fresh categories of rows ``r`` on their probationary windows, normalised
        with the range the probation ended with: ARTime's replay, with the range learnt."""
        values = self.probation_values[r].astype(np.float64)
        low = self.scale_low[r]
        span = self.scale_high[r] - low
        flat = span <= 0
        span = np.where(flat, 1.0, span)
        for k in range(self.window, self.trend + 1):
            features = self._features(values[:, k - self.window : k], low, span, flat)
            self._resonate(r, features, np.full(len(r), k, dtype=np.int64))

    def _resonate(
        self, rows: Any, features: FloatArray, i: npt.NDArray[np.int64]
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Present each row's vector to its series' ART: the best match, its agreement on the
        newest value, and whether nothing resonated (a new category below the lower vigilance)."""
        dim = features.shape[1]
        sample = np.concatenate([features, 1.0 - features], axis=1).astype(np.float32)
        weights = self.weights[rows]
        size = self.size[rows]
        used = size > 0
        # ARTime's first vector only founds the all-ones category everything matches weakly.
        first = i == 1
        if first.any():
            weights[first, 0] = 1.0
            size[first, 0] = sample.shape[1]
            used[first, 0] = True
        common = np.minimum(sample[:, None, :], weights)
        # A product with ones sums the last axis several times faster than .sum(axis=2).
        shared_all = common @ np.ones(common.shape[2], dtype=np.float32)
        fit = shared_all / np.where(used, size, 1.0)
        # The newest level and its complement: the last feature of each half.
        newest = weights[:, :, dim - 1] + weights[:, :, 2 * dim - 1]
        shared = common[:, :, dim - 1] + common[:, :, 2 * dim - 1]
        energy_all = np.divide(shared, newest, out=np.zeros_like(shared), where=newest > 0)
        match = np.where(used, fit**3 * energy_all**2, -1.0)
        best = np.argmax(match, axis=1)
        picked = np.arange(len(best))
        best_match = match[picked, best].astype(np.float64)
        positive = best_match > 0
        similarity = np.where(positive, best_match, 0.0)
        energy = np.where(positive, energy_all[picked, best].astype(np.float64), 0.0)

        learning = ~first & (i >= self.window)
        upper = learning[:, None] & used & (match >= self.rho_ub[rows][:, None])
        # Learning shrinks each resonating category to what it shares with the vector.
        weights[upper] = common[upper]
        size = np.where(upper, shared_all, size)
        resonated = upper.any(axis=1)
        last_use = np.where(upper, i[:, None], self.last_use[rows])
        found = learning & ~resonated
        if found.any():
            # A free slot, or else the category unused for longest.
            slot = np.argmin(np.where(used, last_use, -1), axis=1)
            r = np.flatnonzero(found)
            weights[r, slot[r]] = sample[r]
            size[r, slot[r]] = sample.shape[1] / 2  # complement coding: every vector's norm
            last_use[r, slot[r]] = i[r]
        self.weights[rows] = weights
        self.size[rows] = size
        self.last_use[rows] = last_use
        below = found & (best_match < self.rho_lb[rows])
        new_category = np.where(learning, below, ~first)
        similarity = np.where(first, 0.0, similarity)
        energy = np.where(first, 0.0, energy)
        return similarity, energy, new_category

    def _detect(
        self,
        rows: Any,
        i: npt.NDArray[np.int64],
        similarity: FloatArray,
        energy: FloatArray,
        new_category: BoolArray,
    ) -> FloatArray:
        """ARTime's masks and scores, and the vigilances that follow the series after probation."""
        trend, mask = self.trend, self.mask
        since = i - self.last_anomaly[rows]
        after_anomaly = since <= mask
        masked = self.masked[rows]
        settled = self.no_new_category[rows] >= mask
        masked &= ~((i > trend + mask) & settled)
        self.no_new_category[rows] = np.where(new_category, 0, self.no_new_category[rows] + 1)
        self.similarity_sum[rows] += similarity
        similarities, shortfalls = self.similarities[rows], self.shortfalls[rows]
        _put(similarities, i, similarity)
        _put(shortfalls, i, self.rho_ub[rows] - similarity)
        self.similarities[rows], self.shortfalls[rows] = similarities, shortfalls
        in_anomaly = (since < mask) & (self.anomaly_n[rows] > 0)
        self.anomaly_last[rows] = np.where(
            in_anomaly, np.minimum(self.anomaly_last[rows], similarity), self.anomaly_last[rows]
        )
        scale = np.where(after_anomaly, 0.90, 0.70)
        below_last = similarity < self.last_anomaly_similarity[rows] * scale
        fires = (i > trend) & new_category & (~(masked | after_anomaly) | below_last)
        scores = np.where(fires, self._confidence(rows, similarity, energy), 0.0)
        had = self.anomaly_n[rows] > 0
        self.anomaly_sum[rows] += np.where(fires & had, self.anomaly_last[rows], 0.0)
        self.anomaly_last[rows] = np.where(fires, similarity, self.anomaly_last[rows])
        self.anomaly_n[rows] += fires
        self.last_anomaly_similarity[rows] = np.where(
            fires, similarity, self.last_anomaly_similarity[rows]
        )
        self.last_anomaly[rows] = np.where(fires, i, self.last_anomaly[rows])
        self.masked[rows] = masked | new_category

        # Probation: learn at initial_rho; its second half's mean similarity is the vigilance.
        self.probation_sum[rows] += np.where((i > trend // 2) & (i <= trend), similarity, 0.0)
        ends = i == trend
        if ends.any():
            rho = self.probation_sum[rows] / (trend - trend // 2)
            self.rho_lb[rows] = np.where(ends, rho, self.rho_lb[rows])
            self.rho_ub[rows] = np.where(ends, rho, self.rho_ub[rows])
            if self.relearn:
                # Categories learnt while the range was still growing are in other units:
                # start again from the all-ones category with the vigilance just found.
                r = np.arange(self.n_series)[rows][ends]
                self.weights[r] = 0.0
                self.weights[r, 0] = 1.0
                self.size[r] = 0.0
                self.size[r, 0] = self.weights.shape[2]
                if self.replay:
                    self._replay(r)
        update = (i > trend) & ((since == mask) | (i - self.last_rho_update[rows] >= trend // 2))
        if update.any():
            self._update_vigilance(rows, i, update)
        return np.clip(scores, 0.0, 1.0)

    def _update_vigilance(self, rows: Any, i: npt.NDArray[np.int64], update: BoolArray) -> None:
        at = np.flatnonzero(update)
        r = np.arange(self.n_series)[rows][at]
        lowest = self.similarities[r].min(axis=1).astype(np.float64)
        upper = np.minimum(0.97, self.similarity_sum[r] / i[at])
        lower = self.rho_lb[r]
        rising = lower <= lowest
        shortfalls = self.shortfalls[r].astype(np.float64)
        large = shortfalls > 0.05
        count = large.sum(axis=1)
        fall = np.where(
            (i[at] > 2 * self.trend) & (count > 0),
            np.where(large, np.minimum(0.37, shortfalls), 0.0).sum(axis=1) / np.maximum(count, 1),
            0.0,
        )
        falling = lower - np.maximum(0.01, fall) / 2.0
        n = self.anomaly_n[r]
        anomaly_mean = (self.anomaly_sum[r] + self.anomaly_last[r]) / np.maximum(n, 1)
        falling = np.where(n > 0, np.maximum(anomaly_mean, falling), falling)
        lower = np.where(rising, lower + (lowest - lower) * 0.19, falling)
        self.rho_lb[r] = np.minimum(upper, lower)
        self.rho_ub[r] = upper
        self.last_rho_update[r] = i[at]
        self.masked[r] = True

    def _confidence(self, rows: Any, similarity: FloatArray, energy: FloatArray) -> FloatArray:
        gap = 1.0 - np.minimum(0.999, similarity)
        upper = (gap - (1.0 - self.rho_ub[rows])) / gap
        lower = (gap - (1.0 - self.rho_lb[rows])) / gap
        return np.asarray(
            np.minimum(1.0, upper * 0.35 + lower * 0.65 + (1.0 - energy) * 1.5), dtype=np.float64
        )


def _put(ring: npt.NDArray[np.float32], at: npt.NDArray[np.int64], value: FloatArray) -> None:
    """Overwrite each row's oldest entry; only the ring's min and mean are read, not its order."""
    ring[np.arange(len(ring)), at % ring.shape[1]] = value
