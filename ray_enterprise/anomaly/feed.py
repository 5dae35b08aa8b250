"""From the series store to the anomaly shards and back: points in, an anomaly rate out.

Detectors learn a series' normal behaviour one value per step, so each series contributes one
point per ingested batch (about one per collector interval): a counter its increment, a gauge
its last value, a histogram or timer its mean. The share of those points the shards flag, since
the previous look, is the anomaly rate the health score weighs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ray_enterprise.anomaly.series import Series, text_of
from ray_enterprise.observability.metric_batch import Labels, MetricBatch, step_value

Point = tuple[Series, float, float]  # (series, timestamp in seconds, value), as the shards take


def series_text(name: str, labels: Labels) -> str:
    """The series as Prometheus writes it, ``name{a="1",service="x"}``: what plots and events
    show (the shards key a series by its name and labels, not by this text)."""
    return text_of((name, labels))


def anomaly_points(
    batch: MetricBatch, stored: Callable[[str, Labels], bool] | None = None
) -> list[Point]:
    """One point per series of the batch; with ``stored``, only of series the store took
    (a refused series must not take a detector's slot), and only of finite values."""
    ts = batch.ts_ms / 1000.0
    points: list[Point] = []
    for s in batch.series:
        if stored is not None and not stored(s.name, s.labels):
            continue
        values = s.values[np.isfinite(s.values)]
        if len(values) == 0:
            continue
        points.append(((s.name, s.labels), ts, step_value(s.kind, values)))
    return points


class AnomalyRate:
    """Events per point over the span between two looks at the shards' cumulative counters."""

    def __init__(self) -> None:
        self._last: dict[Any, tuple[int, int]] = {}

    def update(self, shard_stats: Iterable[Mapping[str, Any]]) -> float | None:
        """``None`` when no shard saw a new point since the previous look."""
        points = events = 0
        for stats in shard_stats:
            key = stats.get("shard")
            now = (int(stats.get("points", 0)), int(stats.get("events", 0)))
            before = self._last.get(key, (0, 0))
            if now[0] < before[0] or now[1] < before[1]:
                before = (0, 0)  # the shard restarted: its counters began again
            points += now[0] - before[0]
            events += now[1] - before[1]
            self._last[key] = now
        return events / points if points else None
