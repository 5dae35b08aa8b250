"""Any ``river.anomaly`` model as a per-series detector, chosen by class name in config.

river has two kinds of anomaly model: unsupervised ones (``HalfSpaceTrees``, ``LODA``,
``OneClassSVM``, ...) score a feature dict ``x``; "supervised" ones (``GaussianScorer``,
``StandardAbsoluteDeviation``) score a target ``y``. The adapter feeds the former the last
``shingle`` values as features (so a model can see shape, not only level) behind an optional
``river.preprocessing`` scaler, and the latter the value itself.

Raw river scores are on model-specific scales (HalfSpaceTrees is 0 until its first window is
full, then bounded; StandardAbsoluteDeviation is unbounded), so by default
(``normalise="tail"``) each raw score is judged the way NAB's anomaly likelihood judges HTM's:

- its z-score against the model's own raw scores so far, learnt only once they start to vary
  (a model that answers a constant while it fills its window has no scale yet);
- the recent average of those z-scores (``smoothing``) against their long-run distribution, so a
  model that is always noisy stops alarming while a lasting change stands out (``smoothing=0``
  skips this and judges each point alone: louder for a single spike, noisier on real data);
- squashed to 0..1 (0.5 at ``half``), then held below ``fire`` for ``quiet`` points after a
  score above it: one anomaly, one alarm.

``"clip"`` keeps the raw score, clipped to 0..1.
"""

from __future__ import annotations

import inspect
import math
import pickle
from collections import deque
from collections.abc import Mapping
from typing import Any

from river import anomaly, preprocessing
from river.base import AnomalyDetector, SupervisedAnomalyDetector

from ray_enterprise.anomaly.detectors import DetectorConfigError, Score

__all__ = ["RiverDetector", "river_model_names"]

_NORMALISERS = ("tail", "clip")
_OPTIONS = ("shingle", "normalise", "warmup", "half", "smoothing", "fire", "quiet")
_CONFIG_KEYS = ("name", "params", "scaler", *_OPTIONS)
_LONG_ALPHA = 0.001  # the long-run distribution of the smoothed z-score spans ~1000 points
_NOTHING = Score(0.0, 0.0)


def river_model_names() -> list[str]:
    """The ``river.anomaly`` models this adapter can build (filters and wrappers excluded)."""
    names = []
    for name in getattr(anomaly, "__all__", dir(anomaly)):
        cls = getattr(anomaly, name, None)
        if (
            inspect.isclass(cls)
            and issubclass(cls, AnomalyDetector | SupervisedAnomalyDetector)
            and "Filter" not in name
        ):
            names.append(name)
    return sorted(names)


class RiverDetector:
    """A river anomaly model, fed one series' values, with its score normalised to 0..1."""

    kind = "river"

    def __init__(
        self,
        model: Any,
        config: Mapping[str, Any],
        *,
        shingle: int = 1,
        normalise: str = "tail",
        warmup: int = 100,
        half: float = 6.0,
        smoothing: float = 0.2,
        fire: float = 0.3,
        quiet: int = 300,
    ) -> None:
        self.model = model
        self.config = dict(config)
        self.supervised = isinstance(_last_step(model), SupervisedAnomalyDetector)
        self.shingle, self.normalise, self.warmup, self.half = shingle, normalise, warmup, half
        self.smoothing, self.fire, self.quiet = smoothing, fire, quiet
        self.recent: deque[float] = deque(maxlen=shingle)
        self.keys = tuple(f"lag{i}" for i in range(shingle))
        self.plain = shingle == 1 and not self.supervised
        self.clip = normalise == "clip"
        self.seen = 0
        # Running mean and variance of the raw score, then the likelihood of the smoothed z.
        self.raw_mean = 0.0
        self.raw_var = 0.0
        self.learnt = 0
        self.short = 0.0
        self.long_mean = 0.0
        self.long_var = 0.0
        self.quiet_left = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RiverDetector:
        """Build from ``{"name": "HalfSpaceTrees", "params": {...}, "scaler": "MinMaxScaler"}``."""
        name = str(config.get("name"))
        known = river_model_names()
        if name not in known:
            raise DetectorConfigError(
                name,
                "unknown detector; use art, context_surprise, ewm_zscore, range_novelty, "
                "seasonal_residual, window_mad, max, mean, default "
                f"or a river.anomaly model: {', '.join(known)}",
                parameter="name",
            )
        for key in config:
            if key not in _CONFIG_KEYS:
                raise DetectorConfigError(
                    name,
                    f"unknown key; a river detector takes {', '.join(_CONFIG_KEYS)}",
                    parameter=key,
                )
        params = dict(config.get("params") or {})
        model_cls = getattr(anomaly, name)
        accepted = inspect.signature(model_cls).parameters
        for key in params:
            if key not in accepted:
                raise DetectorConfigError(
                    name, f"river.anomaly.{name} takes {', '.join(accepted)}", parameter=key
                )
        try:
            model: Any = model_cls(**params)
        except Exception as exc:  # river validates in many ways; all mean "bad params"
            raise DetectorConfigError(name, f"river refused the params: {exc}") from exc
        scaler_name = config.get("scaler")
        if scaler_name is not None:
            scaler_cls = getattr(preprocessing, str(scaler_name), None)
            if not inspect.isclass(scaler_cls) or isinstance(model, SupervisedAnomalyDetector):
                raise DetectorConfigError(
                    name,
                    f"{scaler_name!r} is not a river.preprocessing class usable before {name} "
                    "(supervised scorers such as GaussianScorer take no scaler)",
                    parameter="scaler",
                )
            model = scaler_cls() | model
        options = {k: config[k] for k in _OPTIONS if k in config}
        shingle = options.get("shingle", 1)
        if not isinstance(shingle, int) or shingle < 1:
            raise DetectorConfigError(name, "must be an integer >= 1", parameter="shingle")
        if options.get("normalise", "tail") not in _NORMALISERS:
            raise DetectorConfigError(
                name, f"must be one of {', '.join(_NORMALISERS)}", parameter="normalise"
            )
        if not 0.0 <= options.get("smoothing", 0.0) <= 1.0:
            raise DetectorConfigError(name, "must be in [0, 1]", parameter="smoothing")
        if not 0.0 < options.get("fire", 0.5) <= 1.0:
            raise DetectorConfigError(name, "must be in (0, 1]", parameter="fire")
        for key in ("warmup", "quiet"):
            if key in options and (not isinstance(options[key], int) or options[key] < 0):
                raise DetectorConfigError(name, "must be an integer >= 0", parameter=key)
        return cls(model, config, **options)

    def score_and_learn(self, value: float, ts: float) -> Score:
        if self.plain:  # one value as features: the common case, kept to one dict and two calls
            x = {"lag0": value}
            model = self.model
            raw = model.score_one(x)
            model.learn_one(x)
        else:
            raw = self._raw_score(value)
            if raw is None:
                return _NOTHING
        self.seen += 1
        if self.clip:
            score = min(1.0, max(0.0, raw)) if raw == raw else 0.0  # NaN is not a score
            learnt = self.seen
        else:
            score = self._likelihood(raw)
            learnt = self.learnt  # a model that still answers a constant has taught nothing
        warmup = self.warmup
        if learnt <= warmup:
            return Score(0.0, learnt / warmup if warmup else 1.0)
        if self.quiet_left > 0:
            self.quiet_left -= 1
            fire = 0.5 * self.fire
            return Score(score if score < fire else fire, 1.0)
        if score > self.fire and self.quiet:
            self.quiet_left = self.quiet
        return Score(score, 1.0)

    def _raw_score(self, value: float) -> float | None:
        """The raw score of a supervised model, or of a shingle (``None`` until it is full)."""
        model = self.model
        if self.supervised:
            raw = model.score_one({}, value)
            model.learn_one({}, value)
            return float(raw)
        recent = self.recent
        recent.append(value)
        if len(recent) < self.shingle:
            return None
        x = dict(zip(self.keys, reversed(recent), strict=True))
        raw = model.score_one(x)
        model.learn_one(x)
        return float(raw)

    def _likelihood(self, raw: float) -> float:
        if not -math.inf < raw < math.inf:
            raw = 0.0
        # Log-compressed so that one huge early raw score cannot swamp the running scale.
        level = math.log1p(raw) if raw >= 0.0 else -math.log1p(-raw)
        deviation = level - self.raw_mean
        var = self.raw_var
        z = deviation / math.sqrt(var) if var > 0.0 else 0.0
        # Plain running averages until 1/n falls to _LONG_ALPHA, counted from the first raw
        # score that differs from those before it: an average started at zero would call the
        # first few hundred points wildly surprising.
        learnt = self.learnt
        rate = 1.0 / (learnt + 1) if learnt < 1000 else _LONG_ALPHA
        if var > 0.0 or deviation != 0.0 or not learnt:
            self.raw_mean += rate * deviation
            self.raw_var = (1.0 - rate) * (var + rate * deviation * deviation)
            self.learnt = learnt + 1
        smoothing = self.smoothing
        if not smoothing:
            return z / (z + self.half) if z > 0.0 else 0.0
        short = self.short = self.short + smoothing * (z - self.short)
        lag = short - self.long_mean
        self.long_mean += rate * lag
        long_var = self.long_var = (1.0 - rate) * (self.long_var + rate * lag * lag)
        if lag <= 0.0:
            return 0.0
        z = lag / math.sqrt(long_var + 1e-12)
        return z / (z + self.half)

    _STATE = (
        "seen",
        "raw_mean",
        "raw_var",
        "learnt",
        "short",
        "long_mean",
        "long_var",
        "quiet_left",
    )

    def to_state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._STATE}
        state.update(
            kind=self.kind,
            config=dict(self.config),
            model=pickle.dumps(self.model),
            recent=list(self.recent),
        )
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RiverDetector:
        detector = cls.from_config(state["config"])
        detector.model = pickle.loads(state["model"])
        detector.recent.extend(state["recent"])
        for name in cls._STATE:
            if name in state:  # a checkpoint from before the likelihood layer lacks its fields
                setattr(detector, name, state[name])
        return detector


def _last_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return list(steps.values())[-1] if steps else model
