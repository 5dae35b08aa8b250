"""The vectorised twin of :class:`AnomalyMonitor`: every series of a shard in one numpy pass.

Metrics arrive as frames (one flush interval, many series), so a shard can score a whole frame
with one call of a numpy detector. Baselines, thresholds and rate limits are arrays too; only
the few points that become events are touched one by one.

Arrays have a row per series held, grown by doubling as series arrive (up to ``capacity``), and
a checkpoint holds only those rows: the default detector needs ~37 KB per series, so sizing for
10,000 series up front would cost a shard 360 MB whatever it holds, in every checkpoint and in
every restore from one.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ray_enterprise.anomaly.detectors import DEFAULT_DETECTOR, build_vector_detector
from ray_enterprise.anomaly.events import AnomalyEvent
from ray_enterprise.anomaly.series import Series, find_series, labels_of, text_of

_FIRST_ROWS = 64
# The monitor's own per-series arrays and what a new series starts with in each.
_STARTS = {
    "points": 0.0,  # points admitted per series: the warm-up count
    "seen": 0.0,  # scores learnt per series (a detector may give NaN)
    "mean": 0.0,
    "m2": 0.0,
    "last_ts": -np.inf,
    "last_event": -np.inf,
}


def _resized(array: npt.NDArray[np.float64], rows: int, start: float) -> npt.NDArray[np.float64]:
    out = np.full(rows, start)
    keep = min(rows, len(array))
    out[:keep] = array[:keep]
    return out


class VectorAnomalyMonitor:
    """Up to ``capacity`` series; a series past that is refused and counted as ``capacity``.

    Speaks the same monitor vocabulary as :class:`~ray_enterprise.anomaly.events.AnomalyMonitor`
    (``observe_points``, ``samples``, ``stats``, ``to_state``/``load_state``), so a shard holds
    either without asking which.
    """

    vectorised = True

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
        self.rows = min(capacity, _FIRST_ROWS)  # allocated; series held are len(self.names)
        self.detector = build_vector_detector(self.detector_config, self.rows)
        self.detector_name = detector_name or (
            "default"
            if self.detector_config == dict(DEFAULT_DETECTOR)
            else str(self.detector_config["name"])
        )
        self.capacity = capacity
        self.min_samples, self.k, self.floor, self.ceiling = min_samples, k, floor, ceiling
        self.period = period
        self.index: dict[Series, int] = {}
        self.names: list[Series] = []
        self.points = self.seen = self.mean = self.m2 = np.zeros(0)
        self.last_ts = self.last_event = np.zeros(0)
        self._resize(self.rows)
        self.refused: Counter[str] = Counter()
        self.admitted = 0
        self.events: deque[AnomalyEvent] = deque(maxlen=keep_events)
        # The detector's scores of the last frame, per slot: what benchmarks/nab.py scores.
        self.scores: np.ndarray = np.zeros(0)

    def slot(self, series: Series) -> int | None:
        slot = self.index.get(series)
        if slot is None:
            if len(self.names) >= self.capacity:
                self.refused["capacity"] += 1
                return None
            slot = self.index[series] = len(self.names)
            self.names.append(series)
            if slot >= self.rows:
                self._resize(min(self.capacity, max(2 * self.rows, slot + 1)))
        return slot

    def _resize(self, rows: int) -> None:
        """Rows for ``rows`` series in the detector and in the monitor's own arrays."""
        if rows != self.detector.n_series:
            self.detector.resize(rows)
        for name, start in _STARTS.items():
            setattr(self, name, _resized(getattr(self, name), rows, start))
        self.rows = rows

    def frame(self, points: Iterable[tuple[Series, Any]]) -> np.ndarray:
        """Values aligned with the slots (NaN where a series has no point); bad ones counted."""
        by_slot: dict[int, float] = {}  # slots first: a new series may grow the arrays
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
                by_slot[slot] = raw
        values = np.full(self.rows, np.nan)
        values[list(by_slot)] = list(by_slot.values())
        return values

    def observe_frame(self, ts: float, values: np.ndarray) -> list[AnomalyEvent]:
        """Score and learn one frame at time ``ts``; returns the events it raised.

        ``values`` has one entry per slot, NaN where a series has no point; entries past the
        series held are ignored.
        """
        values = _resized(np.asarray(values, dtype=np.float64), self.rows, np.nan)
        present = ~np.isnan(values)
        stale = present & (ts <= self.last_ts)
        if stale.any():
            self.refused["out_of_order"] += int(stale.sum())
            values = np.where(stale, np.nan, values)
            present &= ~stale
        self.admitted += int(present.sum())
        scores, confidence = self.detector.score_and_learn(values, ts)
        self.scores = scores
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
            series = self.names[slot]
            event = AnomalyEvent(
                text_of(series),
                ts,
                float(values[slot]),
                float(scores[slot]),
                float(confidence[slot]),
                self.detector_name,
                labels_of(series),
            )
            self.events.append(event)
            events.append(event)
        return events

    def observe_points(self, points: Iterable[tuple[Series, Any, Any]]) -> list[AnomalyEvent]:
        """Points in any order: grouped into one frame per timestamp, oldest first."""
        by_ts: dict[float, list[tuple[Series, Any]]] = {}
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

    def samples(self, series: Series) -> int:
        """Points the series has had admitted; ``series`` may also be its text."""
        held = find_series(self.index, series)
        return 0 if held is None else int(self.points[self.index[held]])

    def stats(self) -> dict[str, Any]:
        return {"series": len(self.index), "refused": dict(self.refused)}

    def to_state(self) -> dict[str, Any]:
        """Plain data for a checkpoint: the rows of the series held, not the spare ones."""
        held = len(self.names)
        return {
            "config": self.detector_config,
            "detector": self.detector.to_state(held),
            "names": list(self.names),
            "arrays": {name: getattr(self, name)[:held].copy() for name in _STARTS},
            "refused": dict(self.refused),
            "admitted": self.admitted,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        from ray_enterprise.anomaly.numpy_detectors import vector_from_state

        self.detector = vector_from_state(state["detector"])
        self.names = list(state["names"])
        self.index = {name: i for i, name in enumerate(self.names)}
        for name, array in state["arrays"].items():
            setattr(self, name, np.array(array, dtype=float))
        self.refused = Counter(state["refused"])
        self.admitted = int(state["admitted"])
        # Older checkpoints kept all ``capacity`` rows: only the ones in use stay.
        self._resize(min(self.capacity, max(_FIRST_ROWS, len(self.names))))
