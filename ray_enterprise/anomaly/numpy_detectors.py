"""Vectorised detectors: one call scores and learns one point of every series of a shard.

State lives in arrays of shape ``(n_series,)`` so a step over 10,000 series is a handful of numpy
operations rather than 10,000 Python calls. A ``NaN`` in the input means "no point for this series
in this step": its score is 0 and its state is untouched (bad points are refused upstream, by
:class:`~ray_enterprise.anomaly.point_gate.PointGate`, before they reach a detector).

Every detector here follows one vocabulary: ``score_and_learn(values, ts)`` scores each point
against what was learnt before it, then learns it, and returns ``(scores, confidences)`` in 0..1;
``to_state()`` returns plain data (dicts, floats, numpy arrays) that ``from_state`` rebuilds.
Rows are independent: ``resize(n)`` keeps the first rows as they are and gives new ones the state
a fresh detector starts with, so a shard allocates rows as series arrive, not all up front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "ArrayState",
    "EwmZScore",
    "RangeNovelty",
    "VectorCombined",
    "VectorDetector",
    "WindowMad",
    "squash",
    "vector_from_state",
]

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-12


class VectorDetector(Protocol):
    """What a shard needs from a detector that scores all its series at once."""

    kind: ClassVar[str]
    n_series: int

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]: ...

    def resize(self, n_series: int) -> None: ...

    def to_state(self, rows: int | None = None) -> dict[str, Any]: ...


def squash(z: FloatArray, half: float) -> FloatArray:
    """Map a non-negative deviation to 0..1, reaching 0.5 at ``half``.

    A rational squash rather than a Gaussian tail: the tail rounds to exactly 1.0 past ~8 sigma,
    which would make every large deviation tie and leave no threshold between them.
    """
    z = np.maximum(z, 0.0)
    return z / (z + half)


def _confidence(seen: FloatArray, warmup: int) -> FloatArray:
    return np.minimum(1.0, seen / max(warmup, 1))


_KINDS: dict[str, type[Any]] = {}


class ArrayState:
    """What the vectorised detectors share: their state is their params and named arrays.

    A subclass names its ``kind`` (registered here, for :func:`vector_from_state`), keeps its
    constructor's keyword arguments in ``params`` and lists in ``ARRAYS`` the arrays it learns;
    a checkpoint is those, and a restore is a fresh instance with the arrays put back (in the
    dtypes the fresh instance has, so float32 tables stay float32). ``resize`` and
    ``to_state(rows)`` work on every array in ``ARRAYS``: each must have one row per series.
    """

    kind: ClassVar[str]
    ARRAYS: ClassVar[tuple[str, ...]]
    # Kept by the detectors that call _start_surprise, for relative_surprise.
    short: FloatArray
    long_mean: FloatArray
    long_var: FloatArray

    def __init__(self, n_series: int, **params: Any) -> None:
        self.n_series = n_series
        self.params = params

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KINDS[cls.kind] = cls

    def _start_surprise(self) -> None:
        self.short, self.long_mean, self.long_var = (np.zeros(self.n_series) for _ in range(3))

    def resize(self, n_series: int) -> None:
        """Room for ``n_series`` rows: the first kept, new ones as a fresh detector has them."""
        # A fresh instance gives each array its starting value and dtype; its big tables are
        # np.zeros, whose pages the OS maps only when a row is written.
        fresh = type(self)(n_series, **self.params)
        keep = min(n_series, self.n_series)
        for name in self.ARRAYS:
            array = getattr(fresh, name)
            array[:keep] = getattr(self, name)[:keep]
            setattr(self, name, array)
        self.n_series = n_series

    def to_state(self, rows: int | None = None) -> dict[str, Any]:
        """The params and a copy of the first ``rows`` rows of each array (all by default)."""
        rows = self.n_series if rows is None else min(rows, self.n_series)
        return {
            "kind": self.kind,
            "n_series": rows,
            "params": dict(self.params),
            "arrays": {name: getattr(self, name)[:rows].copy() for name in self.ARRAYS},
        }

    @classmethod
    def from_state(cls: type[_Detector], state: Mapping[str, Any]) -> _Detector:
        detector = cls(int(state["n_series"]), **state["params"])
        for name, array in state["arrays"].items():
            setattr(detector, name, np.array(array, dtype=getattr(detector, name).dtype))
        return detector


_Detector = TypeVar("_Detector", bound=ArrayState)


def keyword_arguments(constructor_locals: Mapping[str, Any]) -> dict[str, Any]:
    """A constructor's keyword arguments, from ``locals()`` taken as its first statement.

    They are the detector's params: what a checkpoint needs to rebuild it.
    """
    skip = ("self", "n_series", "__class__")
    return {k: v for k, v in constructor_locals.items() if k not in skip}


class _SurpriseHistory(Protocol):
    short: FloatArray
    long_mean: FloatArray
    long_var: FloatArray


def relative_surprise(
    state: _SurpriseHistory,
    raw: FloatArray,
    ok: npt.NDArray[np.bool_],
    smoothing: float,
    long_alpha: float,
) -> FloatArray:
    """How unusual the recent average of ``raw`` is against its own long-run distribution.

    Updates ``state`` (``short``, ``long_mean``, ``long_var``) where ``ok``; returns z-units.
    """
    state.short = np.where(ok, state.short + smoothing * (raw - state.short), state.short)
    lag = state.short - state.long_mean
    b = long_alpha
    state.long_mean = np.where(ok, state.long_mean + b * lag, state.long_mean)
    state.long_var = np.where(ok, (1.0 - b) * (state.long_var + b * lag * lag), state.long_var)
    return np.asarray(lag / np.sqrt(state.long_var + _EPS), dtype=np.float64)


class EwmZScore(ArrayState):
    """Distance of each point from an exponentially weighted mean, in weighted std units.

    With ``smoothing`` > 0 the z-score is averaged over recent points and compared with its own
    long-run distribution (``long_alpha``): a series that is always noisy stops alarming, while a
    lasting change in how surprising the points are stands out. This is the idea behind Numenta's
    anomaly likelihood, without its fixed windows.
    """

    kind: ClassVar[str] = "ewm_zscore"
    ARRAYS = ("mean", "var", "seen", "short", "long_mean", "long_var")

    def __init__(
        self,
        n_series: int,
        *,
        alpha: float = 0.01,
        smoothing: float = 0.0,
        long_alpha: float = 0.001,
        half: float = 3.0,
        warmup: int = 30,
    ) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 <= smoothing <= 1.0 or not 0.0 < long_alpha <= 1.0:
            raise ValueError("smoothing must be in [0, 1] and long_alpha in (0, 1]")
        if half <= 0 or warmup < 0:
            raise ValueError("half must be > 0 and warmup >= 0")
        self.alpha, self.smoothing, self.long_alpha = alpha, smoothing, long_alpha
        self.half, self.warmup = half, warmup
        self.mean = np.zeros(n_series)
        self.var = np.zeros(n_series)
        self.seen = np.zeros(n_series)
        self._start_surprise()

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        first = ok & (self.seen == 0)
        self.mean = np.where(first, x, self.mean)
        diff = np.where(ok, x - self.mean, 0.0)
        # A relative floor keeps a flat series from dividing by zero yet still notices a change.
        scale = np.hypot(np.sqrt(self.var), 1e-6 * np.abs(self.mean)) + _EPS
        z = np.minimum(np.abs(diff) / scale, 1e6)
        z = np.where(self.seen >= 2, z, 0.0)
        # A plain running average until 1/n falls to alpha: an EWM started at zero variance would
        # call the first few hundred points wildly surprising.
        a = np.maximum(self.alpha, 1.0 / (self.seen + 1.0))
        self.mean = np.where(ok, self.mean + a * diff, self.mean)
        self.var = np.where(ok, (1.0 - a) * (self.var + a * diff * diff), self.var)
        if self.smoothing > 0.0:
            z = relative_surprise(self, z, ok, self.smoothing, self.long_alpha)
        self.seen = self.seen + ok
        warm = ok & (self.seen > self.warmup)
        return np.where(warm, squash(z, self.half), 0.0), _confidence(self.seen, self.warmup)


class RangeNovelty(ArrayState):
    """How far a point falls outside the range its series has ever had, relative to that range.

    Failures often first show as a value never seen before (a temperature past its old peak, a
    latency above any earlier one); seasonal swings stay inside the range and never alarm.
    """

    kind: ClassVar[str] = "range_novelty"
    ARRAYS = ("low", "high", "seen")

    def __init__(self, n_series: int, *, tolerance: float = 0.05, warmup: int = 150) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if tolerance <= 0 or warmup < 0:
            raise ValueError("tolerance must be > 0 and warmup >= 0")
        self.tolerance, self.warmup = tolerance, warmup
        self.low = np.full(n_series, np.inf)
        self.high = np.full(n_series, -np.inf)
        self.seen = np.zeros(n_series)

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        warm = ok & (self.seen > self.warmup)
        span = np.where(warm, self.high - self.low, 1.0)
        outside = np.where(warm, np.maximum(x - self.high, self.low - x), 0.0)
        excess = outside / (span + 1e-9 * np.abs(np.where(warm, x, 0.0)) + _EPS)
        self.low = np.where(ok, np.fmin(self.low, x), self.low)
        self.high = np.where(ok, np.fmax(self.high, x), self.high)
        self.seen = self.seen + ok
        return squash(excess, self.tolerance), _confidence(self.seen, self.warmup)


class WindowMad(ArrayState):
    """Distance from the median of the last ``window`` points in median-absolute-deviation units.

    Robust where the mean is not: a few earlier spikes in the window do not widen the scale. With
    ``smoothing`` > 0 the distance is judged like :class:`EwmZScore`'s: its recent average against
    its own long-run distribution.
    """

    kind: ClassVar[str] = "window_mad"
    ARRAYS = ("buffer", "seen", "short", "long_mean", "long_var")

    def __init__(
        self,
        n_series: int,
        *,
        window: int = 64,
        half: float = 4.0,
        smoothing: float = 0.0,
        long_alpha: float = 0.001,
    ) -> None:
        super().__init__(n_series, **keyword_arguments(locals()))
        if window < 3 or half <= 0:
            raise ValueError("window must be >= 3 and half > 0")
        if not 0.0 <= smoothing <= 1.0 or not 0.0 < long_alpha <= 1.0:
            raise ValueError("smoothing must be in [0, 1] and long_alpha in (0, 1]")
        self.window, self.half = window, half
        self.smoothing, self.long_alpha = smoothing, long_alpha
        self.buffer = np.full((n_series, window), np.nan)
        self.seen = np.zeros(n_series)
        self._start_surprise()

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        x = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(x)
        warm = ok & (self.seen >= self.window)
        z = np.zeros(self.n_series)
        if warm.any():
            past = self.buffer[warm]
            median = np.median(past, axis=1)
            mad = np.median(np.abs(past - median[:, None]), axis=1)
            floor = 1e-6 * np.abs(median) + _EPS
            z[warm] = np.minimum(np.abs(x[warm] - median) / (1.4826 * mad + floor), 1e6)
        if self.smoothing > 0.0:
            z = relative_surprise(self, z, warm, self.smoothing, self.long_alpha)
        rows = np.flatnonzero(ok)
        self.buffer[rows, (self.seen[rows] % self.window).astype(np.int64)] = x[rows]
        self.seen = self.seen + ok
        return np.where(warm, squash(z, self.half), 0.0), _confidence(self.seen, self.window)


class VectorCombined:
    """The max or mean of several vectorised detectors, with an optional refractory period.

    After a series scores above ``fire``, its scores are held below ``fire`` for ``quiet`` points:
    one anomaly is one alarm, not a burst of them while the detectors re-learn the new normal.
    """

    kind: ClassVar[str] = "vector_combined"

    def __init__(
        self,
        parts: Sequence[VectorDetector],
        *,
        how: str = "max",
        fire: float = 0.7,
        quiet: int = 0,
    ) -> None:
        if not parts:
            raise ValueError("parts must name at least one detector")
        if how not in ("max", "mean"):
            raise ValueError(f"how must be 'max' or 'mean', got {how!r}")
        if len({p.n_series for p in parts}) != 1:
            raise ValueError("all parts must score the same number of series")
        if not 0.0 < fire <= 1.0 or quiet < 0:
            raise ValueError("fire must be in (0, 1] and quiet >= 0")
        self.parts = list(parts)
        self.n_series = parts[0].n_series
        self.how, self.fire, self.quiet = how, fire, quiet
        self.quiet_left = np.zeros(self.n_series)

    def score_and_learn(
        self, values: FloatArray, ts: float | FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        results = [p.score_and_learn(values, ts) for p in self.parts]
        stacked = np.stack([r[0] for r in results])
        scores = stacked.max(axis=0) if self.how == "max" else stacked.mean(axis=0)
        confidence = np.stack([r[1] for r in results]).min(axis=0)
        if self.quiet:
            ok = np.isfinite(np.asarray(values, dtype=np.float64))
            resting = ok & (self.quiet_left > 0)
            scores = np.where(resting, np.minimum(scores, 0.5 * self.fire), scores)
            self.quiet_left = np.where(resting, self.quiet_left - 1, self.quiet_left)
            fired = ok & ~resting & (scores > self.fire)
            self.quiet_left = np.where(fired, float(self.quiet), self.quiet_left)
        return scores, confidence

    def resize(self, n_series: int) -> None:
        for part in self.parts:
            part.resize(n_series)
        keep = min(n_series, self.n_series)
        quiet_left = np.zeros(n_series)
        quiet_left[:keep] = self.quiet_left[:keep]
        self.quiet_left, self.n_series = quiet_left, n_series

    def to_state(self, rows: int | None = None) -> dict[str, Any]:
        rows = self.n_series if rows is None else min(rows, self.n_series)
        return {
            "kind": self.kind,
            "n_series": rows,
            "params": {"how": self.how, "fire": self.fire, "quiet": self.quiet},
            "parts": [p.to_state(rows) for p in self.parts],
            "arrays": {"quiet_left": self.quiet_left[:rows].copy()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> VectorCombined:
        parts = [vector_from_state(p) for p in state["parts"]]
        detector = cls(parts, **state["params"])
        detector.quiet_left = np.array(state["arrays"]["quiet_left"], dtype=np.float64)
        return detector


_KINDS[VectorCombined.kind] = VectorCombined


def vector_from_state(state: Mapping[str, Any]) -> VectorDetector:
    """Rebuild any vectorised detector from its ``to_state()``."""
    # Detectors defined in other modules register on import; those modules import this one.
    from ray_enterprise.anomaly import art, context, seasonal  # noqa: F401

    kind = state.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown vector detector kind {kind!r}; known: {sorted(_KINDS)}")
    detector: VectorDetector = _KINDS[kind].from_state(state)
    return detector
