"""The vectorised twin of :class:`AnomalyMonitor`: every series of a shard in one numpy pass.

Metrics arrive as frames (one flush interval, many series), so a shard can score a whole frame
with one call of a numpy detector. Baselines, thresholds and rate limits are arrays too; only
the few points that become events are touched one by one.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ray_enterprise.observability.anomaly_events import AnomalyEvent
from ray_enterprise.observability.detectors import DEFAULT_DETECTOR, build_vector_detector


class VectorAnomalyMonitor:
    """Up to ``capacity`` series; a series past that is refused and counted as ``capacity``."""

    def __init__(
        self,
        detector_config: Mapping[str, Any] = DEFAULT_DETECTOR,
        *,
        capacity: int = 10_000,
        min_samples: int = 100,
        k: float = 4.0,
        floor: float = 0.5,
        ceiling: float = 0.99,
        period: float = 60.0,
        detector_name: str | None = None,
        keep_events: int = 1000,
    ) -> None:
        self.detector_config = dict(detector_config)
        self.detector = build_vector_detector(self.detector_config, capacity)
        self.detector_name = detector_name or (
            "default"
            if self.detector_config == dict(DEFAULT_DETECTOR)
            else str(self.detector_config["name"])
        )
        self.capacity = capacity
        self.min_samples, self.k, self.floor, self.ceiling = min_samples, k, floor, ceiling
        self.period = period
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.points = np.zeros(capacity)  # points admitted per series: the warm-up count
        self.seen = np.zeros(capacity)  # scores learnt per series (a detector may give NaN)
        self.mean = np.zeros(capacity)
        self.m2 = np.zeros(capacity)
        self.last_ts = np.full(capacity, -np.inf)
        self.last_event = np.full(capacity, -np.inf)
        self.refused: Counter[str] = Counter()
        self.admitted = 0
        self.events: deque[AnomalyEvent] = deque(maxlen=keep_events)

    def slot(self, series: str) -> int | None:
        slot = self.index.get(series)
        if slot is None:
            if len(self.names) >= self.capacity:
                self.refused["capacity"] += 1
                return None
            slot = self.index[series] = len(self.names)
            self.names.append(series)
        return slot

    def frame(self, points: Iterable[tuple[str, Any]]) -> np.ndarray:
        """Values aligned with the slots (NaN where a series has no point); bad ones counted."""
        values = np.full(self.capacity, np.nan)
        for series, raw in points:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                self.refused["not_a_number"] += 1
                continue
            if math.isnan(raw):
                self.refused["nan"] += 1
                continue
            if math.isinf(raw):
                self.refused["infinite"] += 1
                continue
            slot = self.slot(series)
            if slot is not None:
                values[slot] = raw
        return values

    def observe_frame(self, ts: float, values: np.ndarray) -> list[AnomalyEvent]:
        """Score and learn one frame at time ``ts``; returns the events it raised."""
        present = ~np.isnan(values)
        stale = present & (ts <= self.last_ts)
        if stale.any():
            self.refused["out_of_order"] += int(stale.sum())
            values = np.where(stale, np.nan, values)
            present &= ~stale
        self.admitted += int(present.sum())
        scores, confidence = self.detector.score_and_learn(values, ts)
        std = np.sqrt(np.where(self.seen > 1, self.m2 / np.maximum(self.seen - 1, 1), 0.0))
        threshold = np.clip(self.mean + self.k * std, self.floor, self.ceiling)
        hot = (
            present
            & (self.points >= self.min_samples)
            & (scores > threshold)
            & (ts - self.last_event >= self.period)
        )
        # Welford over each series' own scores: its threshold follows its usual surprise.
        scored = present & ~np.isnan(scores)
        self.seen[scored] += 1
        delta = np.where(scored, scores - self.mean, 0.0)
        self.mean += np.where(scored, delta / np.maximum(self.seen, 1), 0.0)
        self.m2 += np.where(scored, delta * (scores - self.mean), 0.0)
        self.last_ts[present] = ts
        self.points[present] += 1
        events = []
        for slot in np.flatnonzero(hot):
            self.last_event[slot] = ts
            event = AnomalyEvent(
                self.names[slot],
                ts,
                float(values[slot]),
                float(scores[slot]),
                float(confidence[slot]),
                self.detector_name,
            )
            self.events.append(event)
            events.append(event)
        return events

    def observe_points(self, points: Iterable[tuple[str, float, Any]]) -> list[AnomalyEvent]:
        """Points in any order: grouped into one frame per timestamp, oldest first."""
        by_ts: dict[float, list[tuple[str, Any]]] = {}
        for series, ts, value in points:
            try:
                stamp = float(ts)
            except (TypeError, ValueError):
                self.refused["bad_timestamp"] += 1
                continue
            by_ts.setdefault(stamp, []).append((series, value))
        events: list[AnomalyEvent] = []
        for stamp in sorted(by_ts):
            events.extend(self.observe_frame(stamp, self.frame(by_ts[stamp])))
        return events

    def samples(self, series: str) -> int:
        slot = self.index.get(series)
        return 0 if slot is None else int(self.points[slot])

    def to_state(self) -> dict[str, Any]:
        return {
            "config": self.detector_config,
            "detector": self.detector.to_state(),
            "names": list(self.names),
            "arrays": {
                name: getattr(self, name).copy()
                for name in ("points", "seen", "mean", "m2", "last_ts", "last_event")
            },
            "refused": dict(self.refused),
            "admitted": self.admitted,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        from ray_enterprise.observability.numpy_detectors import vector_from_state

        self.detector = vector_from_state(state["detector"])
        self.names = list(state["names"])
        self.index = {name: i for i, name in enumerate(self.names)}
        for name, array in state["arrays"].items():
            setattr(self, name, np.array(array, dtype=float))
        self.refused = Counter(state["refused"])
        self.admitted = int(state["admitted"])
