"""A vectorised sequence detector: how surprising is this value after the values before it?

Each series' values are cut into ``bins`` levels (fixed from its first ``warmup`` points, with
room either side); the levels at ``lags`` points back form a context, and the detector counts
which level followed each context. A point's raw surprise is ``-log P(level | context)``; a run of
surprising points, judged against the series' usual surprise, is an anomaly. This sees what a
z-score cannot: a daily pattern that goes flat, or a jump that does not come, at ordinary levels.

Counts live in per-series hashed tables of ``table`` slots (float32), so memory is
``2 * 4 * table`` bytes per series and a step is a few fancy-indexing operations for all series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ray_enterprise.anomaly.numpy_detectors import (
    ArrayState,
    FloatArray,
    keyword_arguments,
    relative_surprise,
    squash,
)

__all__ = ["ContextSurprise"]

_MIX = np.int64(2654435761)  # Knuth's multiplicative hash: spreads nearby contexts over slots


class ContextSurprise(ArrayState):
    """Surprise of each point's level given the levels at ``lags`` earlier points."""

    kind: ClassVar[str] = "context_surprise"
    ARRAYS = (
        "history",
        "low",
        "high",
        "seen",
        "context_counts",
        "pair_counts",
        "short",
        "long_mean",
        "long_var",
    )

    def __init__(
        self,
        n_series: int,
        *,
        bins: int = 10,
        lags: Sequence[int] = (1, 2, 3, 4),
        warmup: int = 300,
        prior: float = 0.1,
        smoothing: float = 0.03,
        long_alpha: float = 0.001,
        half: float = 12.0,
        table: int = 4096,
        margin: float = 0.1,
    ) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if bins < 2 or not lags or min(lags) < 1 or warmup < 2 or prior <= 0 or half <= 0:
            raise ValueError(
                "need bins >= 2, lags >= 1 (at least one), warmup >= 2, prior > 0, half > 0"
            )
        if table < 16 or not 0.0 < smoothing <= 1.0 or not 0.0 < long_alpha <= 1.0:
            raise ValueError("need table >= 16, smoothing and long_alpha in (0, 1]")
        self.bins, self.lags, self.warmup, self.prior = bins, tuple(lags), warmup, prior
        self.smoothing, self.long_alpha, self.half = smoothing, long_alpha, half
        self.table, self.margin = table, margin
        self.history = np.zeros((n_series, max(self.lags)), dtype=np.int64)
        self.low = np.full(n_series, np.inf)
        self.high = np.full(n_series, -np.inf)
        self.seen = np.zeros(n_series)
        self.context_counts = np.zeros((n_series, table), dtype=np.float32)
        self.pair_counts = np.zeros((n_series, table), dtype=np.float32)
        self._start_surprise()

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        learning_range = ok & (self.seen < self.warmup)
        self.low = np.where(learning_range, np.fmin(self.low, x), self.low)
        self.high = np.where(learning_range, np.fmax(self.high, x), self.high)
        # A series with no finite value yet has an infinite range (inf - inf is NaN): its
        # level is NaN and becomes 0 below, so numpy's warning about it says nothing.
        with np.errstate(invalid="ignore"):
            span = self.high - self.low
            span = np.where(span > 0, span, 1e-2 * np.abs(self.high) + 1e-9)
            bottom = self.low - self.margin * span
            width = span * (1.0 + 2.0 * self.margin)
            level = np.clip(np.floor((x - bottom) / width * self.bins), -1, self.bins) + 1
        level = np.where(ok & np.isfinite(level), level, 0).astype(np.int64)

        # The range is fixed once warm-up ends; contexts need max(lags) levels after that.
        counting = ok & (self.seen >= self.warmup + max(self.lags))
        raw = np.zeros(self.n_series)
        rows = np.flatnonzero(counting)
        if rows.size:
            context = np.zeros(rows.size, dtype=np.int64)
            for lag in self.lags:
                context = context * (self.bins + 2) + self.history[rows, -lag]
            context_slot = (context * _MIX) % self.table
            pair_slot = ((context * (self.bins + 2) + level[rows]) * _MIX) % self.table
            seen_context = self.context_counts[rows, context_slot]
            seen_pair = self.pair_counts[rows, pair_slot]
            probability = (seen_pair + self.prior) / (seen_context + self.prior * (self.bins + 2))
            raw[rows] = -np.log(probability)
            self.context_counts[rows, context_slot] += 1.0
            self.pair_counts[rows, pair_slot] += 1.0
        ok_rows = np.flatnonzero(ok)
        self.history[ok_rows] = np.roll(self.history[ok_rows], -1, axis=1)
        self.history[ok_rows, -1] = level[ok_rows]
        z = relative_surprise(self, raw, counting, self.smoothing, self.long_alpha)
        self.seen = self.seen + ok
        scored = counting & (self.seen > 2 * self.warmup)
        scores = np.where(scored, squash(z, self.half), 0.0)
        return scores, np.minimum(1.0, self.seen / (2 * self.warmup))
