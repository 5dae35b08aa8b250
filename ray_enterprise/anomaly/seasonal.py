"""A vectorised seasonal detector: how far is each point from the same point one period ago?

A z-score against a running mean alarms at every peak of a daily cycle, or learns to ignore the
cycle and with it any change of shape inside it: a day that stays flat, a jump that does not
come, a holiday with a normal level at abnormal hours. Comparing each point with the point one
period earlier removes the cycle and leaves the change. The period of each series is found from
its own first ``warmup`` points (the highest autocorrelation past its first dip below zero); a
series without a clear period is compared with its previous point, which turns a level shift
into one loud step.

The residuals are then judged like any other signal: an exponentially weighted z-score whose
recent average is compared with its own long-run distribution
(:class:`~ray_enterprise.anomaly.numpy_detectors.EwmZScore` with ``smoothing``), so one
odd point in a noisy series stays quiet and a lasting change stands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ray_enterprise.anomaly.numpy_detectors import (
    ArrayState,
    EwmZScore,
    FloatArray,
    keyword_arguments,
)

__all__ = ["SeasonalResidual", "dominant_period"]


def dominant_period(block: FloatArray, min_acf: float) -> npt.NDArray[np.int64]:
    """The period of each row of ``block`` (series x points), or 1 where none is clear.

    The autocorrelation of a smooth series is high at small lags for no seasonal reason, so
    lags up to its first dip below zero are skipped; the highest peak after that, if above
    ``min_acf``, is the period. Lags go up to half the block: a period needs two cycles to show.
    """
    rows, width = block.shape
    centred = block - block.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=2 * width)  # zero-padded: no wrap-around between ends
    acf = np.fft.irfft(spectrum * np.conj(spectrum), n=2 * width)[:, : width // 2 + 1]
    acf = acf / np.where(acf[:, :1] > 0, acf[:, :1], 1.0)
    negative = acf < 0
    first_dip = np.where(negative.any(axis=1), negative.argmax(axis=1), acf.shape[1])
    lags = np.arange(acf.shape[1])
    candidates = np.where(lags[None, :] > first_dip[:, None], acf, -np.inf)
    best = candidates.argmax(axis=1)
    clear = candidates[np.arange(rows), best] > min_acf
    return np.where(clear, best, 1).astype(np.int64)


class SeasonalResidual(ArrayState):
    """Surprise of each point's difference from the point one period before it."""

    kind: ClassVar[str] = "seasonal_residual"
    ARRAYS = ("ring", "seen", "period")

    def __init__(
        self,
        n_series: int,
        *,
        warmup: int = 600,
        min_acf: float = 0.3,
        alpha: float = 0.01,
        smoothing: float = 0.05,
        long_alpha: float = 0.001,
        half: float = 5.0,
        settle: int = 100,
    ) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if warmup < 8 or not -1.0 <= min_acf <= 1.0 or settle < 0:
            raise ValueError("need warmup >= 8, min_acf in [-1, 1] and settle >= 0")
        self.warmup, self.min_acf = warmup, min_acf
        # The residual's own scale and usual surprise are learnt for ``settle`` points first.
        self.residuals = EwmZScore(
            n_series,
            alpha=alpha,
            smoothing=smoothing,
            long_alpha=long_alpha,
            half=half,
            warmup=settle,
        )
        # The first ``warmup`` points (for the period), then the last ``warmup`` as a ring.
        self.ring = np.zeros((n_series, warmup))
        self.seen = np.zeros(n_series, dtype=np.int64)
        self.period = np.ones(n_series, dtype=np.int64)
        self._rows = np.arange(n_series)

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        past = self.ring[self._rows, (self.seen - self.period) % self.warmup]
        active = ok & (self.seen >= self.warmup)
        scores, _ = self.residuals.score_and_learn(np.where(active, x - past, np.nan), ts)
        present = np.flatnonzero(ok)
        self.ring[present, self.seen[present] % self.warmup] = x[present]
        self.seen = self.seen + ok
        filled = np.flatnonzero(ok & (self.seen == self.warmup))
        if filled.size:
            self.period[filled] = dominant_period(self.ring[filled], self.min_acf)
        ready = self.warmup + self.residuals.warmup
        return scores, np.minimum(1.0, self.seen / ready)

    def resize(self, n_series: int) -> None:
        super().resize(n_series)
        self.residuals.resize(n_series)
        self._rows = np.arange(n_series)

    def to_state(self, rows: int | None = None) -> dict[str, Any]:
        return {**super().to_state(rows), "residuals": self.residuals.to_state(rows)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SeasonalResidual:
        detector = super().from_state(state)
        detector.residuals = EwmZScore.from_state(state["residuals"])
        return detector
