"""Any ``river.anomaly`` model as a per-series detector, chosen by class name in config.

river has two kinds of anomaly model: unsupervised ones (``HalfSpaceTrees``, ``LODA``,
``OneClassSVM``, ...) score a feature dict ``x``; "supervised" ones (``GaussianScorer``,
``StandardAbsoluteDeviation``) score a target ``y``. The adapter feeds the former the last
``shingle`` values as features (so a model can see shape, not only level) behind an optional
``river.preprocessing`` scaler, and the latter the value itself.

Raw river scores are on model-specific scales (HalfSpaceTrees sits near 0.9 for normal points,
StandardAbsoluteDeviation is unbounded), so by default each score is judged against the model's
own recent scores (``normalise="tail"``) and squashed to 0..1; ``"clip"`` keeps the raw score.
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

from ray_enterprise.observability.detectors import DetectorConfigError, Score

__all__ = ["RiverDetector", "river_model_names"]

_NORMALISERS = ("tail", "clip")
_CONFIG_KEYS = ("name", "params", "scaler", "shingle", "normalise", "warmup", "half")


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
        half: float = 3.0,
    ) -> None:
        self.model = model
        self.config = dict(config)
        self.supervised = isinstance(_last_step(model), SupervisedAnomalyDetector)
        self.shingle, self.normalise, self.warmup, self.half = shingle, normalise, warmup, half
        self.recent: deque[float] = deque(maxlen=shingle)
        self.seen = 0
        # Running mean and variance of the raw score, for the "tail" normaliser.
        self.raw_mean = 0.0
        self.raw_var = 0.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RiverDetector:
        """Build from ``{"name": "HalfSpaceTrees", "params": {...}, "scaler": "MinMaxScaler"}``."""
        name = str(config.get("name"))
        known = river_model_names()
        if name not in known:
            raise DetectorConfigError(
                name,
                "unknown detector; use ewm_zscore, range_novelty, window_mad, max, mean, default "
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
        options = {k: config[k] for k in ("shingle", "normalise", "warmup", "half") if k in config}
        shingle = options.get("shingle", 1)
        if not isinstance(shingle, int) or shingle < 1:
            raise DetectorConfigError(name, "must be an integer >= 1", parameter="shingle")
        if options.get("normalise", "tail") not in _NORMALISERS:
            raise DetectorConfigError(
                name, f"must be one of {', '.join(_NORMALISERS)}", parameter="normalise"
            )
        return cls(model, config, **options)

    def score_and_learn(self, value: float, ts: float) -> Score:
        self.recent.append(float(value))
        if len(self.recent) < self.shingle:
            return Score(0.0, 0.0)
        if self.supervised:
            raw = float(self.model.score_one({}, value))
            self.model.learn_one({}, value)
        else:
            x = {f"lag{i}": v for i, v in enumerate(reversed(self.recent))}
            raw = float(self.model.score_one(x))
            self.model.learn_one(x)
        if not math.isfinite(raw):
            raw = 0.0
        score = self._normalised(raw)
        self.seen += 1
        confidence = min(1.0, self.seen / max(self.warmup, 1))
        return Score(score if self.seen > self.warmup else 0.0, confidence)

    def _normalised(self, raw: float) -> float:
        if self.normalise == "clip":
            return min(1.0, max(0.0, raw))
        # Log-compress so one early, huge raw score (a model with no variance yet) cannot swamp
        # the running scale, and learn the scale only once the model itself has warmed up.
        level = math.copysign(math.log1p(abs(raw)), raw)
        deviation = level - self.raw_mean
        learnt = self.seen - self.warmup // 2
        z = deviation / math.sqrt(self.raw_var + 1e-12) if learnt >= 2 else 0.0
        if learnt >= 0:
            rate = max(1.0 / (learnt + 1), 0.001)
            self.raw_mean += rate * deviation
            self.raw_var = (1.0 - rate) * (self.raw_var + rate * deviation * deviation)
        z = max(0.0, z)
        return z / (z + self.half)

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "config": dict(self.config),
            "model": pickle.dumps(self.model),
            "recent": list(self.recent),
            "seen": self.seen,
            "raw_mean": self.raw_mean,
            "raw_var": self.raw_var,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> RiverDetector:
        detector = cls.from_config(state["config"])
        detector.model = pickle.loads(state["model"])
        detector.recent.extend(state["recent"])
        detector.seen = int(state["seen"])
        detector.raw_mean = float(state["raw_mean"])
        detector.raw_var = float(state["raw_var"])
        return detector


def _last_step(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return list(steps.values())[-1] if steps else model
