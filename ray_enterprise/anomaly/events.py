"""From scores to anomaly events: warm-up baseline, learned threshold, per-series rate limit.

:class:`AnomalyMonitor` is what an anomaly shard holds: it gates each point, scores it with the
series' detector, and turns a score into an :class:`AnomalyEvent` only when the series has a
baseline (``min_samples`` points) and the score clears a threshold learnt from that series' own
scores, at most ``max_events`` per ``period`` seconds per series. Everything it knows is in
``to_state()``, so a restarted shard resumes with its detectors warm.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ray_enterprise.anomaly.detectors import (
    DEFAULT_DETECTOR,
    Detector,
    build_detector,
    restore_detector,
)
from ray_enterprise.anomaly.point_gate import PointGate
from ray_enterprise.anomaly.series import Labels, Series, find_series, labels_of, text_of

__all__ = ["AnomalyEvent", "AnomalyMonitor", "Baseline", "EventRateLimiter"]


@dataclass(frozen=True)
class AnomalyEvent:
    """One anomalous point of one series, as the alert manager and the health score see it.

    ``series`` is the text people read; ``labels`` are the series' own, as data, so which
    service it belongs to is looked up, never parsed back out of the text.
    """

    series: str
    timestamp: float
    value: float
    score: float
    confidence: float
    detector: str
    labels: Labels = ()


class Baseline:
    """Decides whether a score is an anomaly for this series, once it knows the series.

    No decision before ``min_samples`` points: early scores measure the detector's ignorance, not
    the series. The threshold is the mean plus ``k`` standard deviations of the series' own
    scores (kept within ``floor``..``ceiling``), so a noisy series needs a louder score to alarm.
    """

    def __init__(
        self, *, min_samples: int = 100, k: float = 4.0, floor: float = 0.5, ceiling: float = 0.99
    ) -> None:
        if min_samples < 0 or not 0.0 <= floor <= ceiling <= 1.0:
            raise ValueError("need min_samples >= 0 and 0 <= floor <= ceiling <= 1")
        self.min_samples, self.k, self.floor, self.ceiling = min_samples, k, floor, ceiling
        self.seen = 0
        self.mean = 0.0
        self.var = 0.0

    @property
    def threshold(self) -> float:
        learnt = self.mean + self.k * math.sqrt(self.var)
        return min(self.ceiling, max(self.floor, learnt))

    def is_anomaly(self, score: float) -> bool:
        """Judge ``score`` against what was learnt before it, then learn it."""
        # The threshold is never below the floor: most scores are judged without computing it.
        anomalous = (
            score >= self.floor and self.seen >= self.min_samples and score >= self.threshold
        )
        if not anomalous:  # anomalies would teach the threshold that anomalies are normal
            seen = self.seen = self.seen + 1
            rate = 1.0 / seen if seen < 1000 else 0.001
            deviation = score - self.mean
            self.mean += rate * deviation
            self.var = (1.0 - rate) * (self.var + rate * deviation * deviation)
        return anomalous

    def to_state(self) -> dict[str, Any]:
        return {"seen": self.seen, "mean": self.mean, "var": self.var}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.seen, self.mean, self.var = int(state["seen"]), state["mean"], state["var"]


class EventRateLimiter:
    """At most ``max_events`` events per ``period`` seconds per series, on an injected clock.

    A flapping series would otherwise flood the alert manager with one event per point.
    """

    def __init__(
        self, *, max_events: int = 1, period: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if max_events < 1 or period < 0:
            raise ValueError("need max_events >= 1 and period >= 0")
        self.max_events, self.period, self.clock = max_events, period, clock
        self.sent: dict[Series, deque[float]] = {}
        self.suppressed = 0

    def allow(self, series: Series) -> bool:
        now = self.clock()
        sent = self.sent.setdefault(series, deque())
        while sent and now - sent[0] >= self.period:
            sent.popleft()
        if len(sent) >= self.max_events:
            self.suppressed += 1
            return False
        sent.append(now)
        return True


class AnomalyMonitor:
    """Per-series detectors, baselines and rate limits behind one ``observe`` call.

    ``observe`` never raises for a bad point: it refuses and counts it (see
    :class:`~ray_enterprise.anomaly.point_gate.PointGate`). It speaks the monitor vocabulary a
    shard uses (``observe_points``, ``samples``, ``stats``, ``to_state``/``load_state``), as
    :class:`~ray_enterprise.anomaly.vector_monitor.VectorAnomalyMonitor` does.
    """

    vectorised = False

    def __init__(
        self,
        detector_config: Mapping[str, Any] = DEFAULT_DETECTOR,
        *,
        min_samples: int = 100,
        k: float = 4.0,
        floor: float = 0.5,
        max_events: int = 1,
        period: float = 60.0,
        clock: Callable[[], float] = time.time,
        keep_events: int = 1000,
        detector_name: str | None = None,
    ) -> None:
        self.detector_config = dict(detector_config)
        # Fail now, on a bad config, not at the first point; the first series gets this one.
        self._spare: Detector | None = build_detector(self.detector_config)
        self.baseline_params: dict[str, Any] = {"min_samples": min_samples, "k": k, "floor": floor}
        # Events say which detector judged them; the default config's own name is only "max".
        default = self.detector_config == dict(DEFAULT_DETECTOR)
        self.detector_name = detector_name or (
            "default" if default else str(detector_config["name"])
        )
        self.gate = PointGate()
        self.limiter = EventRateLimiter(max_events=max_events, period=period, clock=clock)
        self.detectors: dict[Series, Detector] = {}
        self.baselines: dict[Series, Baseline] = {}
        self.events: deque[AnomalyEvent] = deque(maxlen=keep_events)

    def observe(self, series: Series, value: Any, ts: Any) -> AnomalyEvent | None:
        if self.gate.refusal(series, value, ts) is not None:
            return None
        value, ts = float(value), float(ts)
        detector = self.detectors.get(series)
        if detector is None:
            spare, self._spare = self._spare, None
            detector = spare if spare is not None else build_detector(self.detector_config)
            self.detectors[series] = detector
            self.baselines[series] = Baseline(**self.baseline_params)
        result = detector.score_and_learn(value, ts)
        if not self.baselines[series].is_anomaly(result.score):
            return None
        if not self.limiter.allow(series):
            return None
        event = AnomalyEvent(
            text_of(series),
            ts,
            value,
            result.score,
            result.confidence,
            self.detector_name,
            labels_of(series),
        )
        self.events.append(event)
        return event

    def observe_points(self, points: Iterable[tuple[Series, Any, Any]]) -> list[AnomalyEvent]:
        """Points ``(series, ts, value)`` in the order given; returns the events raised."""
        observed = (self.observe(series, value, ts) for series, ts, value in points)
        return [e for e in observed if e is not None]

    def recent_events(self, series: str | None = None) -> list[AnomalyEvent]:
        return [e for e in self.events if series is None or e.series == series]

    def samples(self, series: Series) -> int:
        """Points the series' baseline has seen; ``series`` may also be its text."""
        held = find_series(self.baselines, series)
        return 0 if held is None else self.baselines[held].seen

    def stats(self) -> dict[str, Any]:
        return {"series": len(self.detectors), "refused": dict(self.gate.refused)}

    def to_state(self) -> dict[str, Any]:
        """Plain data for a checkpoint; rate-limit windows are not kept (they are seconds long)."""
        return {
            "detector_config": self.detector_config,
            "detector_name": self.detector_name,
            "baseline_params": self.baseline_params,
            "gate": self.gate.to_state(),
            "detectors": {s: d.to_state() for s, d in self.detectors.items()},
            "baselines": {s: b.to_state() for s, b in self.baselines.items()},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Resume from a checkpoint: the detector and baseline settings are the checkpoint's."""
        self.detector_config = dict(state["detector_config"])
        self.detector_name = state["detector_name"]
        self.baseline_params = dict(state["baseline_params"])
        self.gate = PointGate.from_state(state["gate"])
        self.detectors = {s: restore_detector(d) for s, d in state["detectors"].items()}
        self.baselines = {}
        for series, baseline_state in state["baselines"].items():
            baseline = Baseline(**self.baseline_params)
            baseline.load_state(baseline_state)
            self.baselines[series] = baseline

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], *, clock: Callable[[], float] = time.time, **options: Any
    ) -> AnomalyMonitor:
        monitor = cls(
            state["detector_config"],
            clock=clock,
            detector_name=state["detector_name"],
            **state["baseline_params"],
            **options,
        )
        monitor.load_state(state)
        return monitor
