"""Optional mirror of the central store into ``ray.util.metrics``, so the Ray dashboard shows it.

The store stays authoritative; the mirror is a view for people who already look at Ray's own
dashboard. Ray metrics fix their tag keys when created, so a metric is mirrored with the label
names of its first series and a series with other label names is skipped (and counted). To
bound the cost on the central actor, at most ``max_observations`` values per series per batch
are observed into a Ray histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ray_enterprise.observability.metric_batch import MetricBatch, MetricType

MetricFactory = Callable[[MetricType, str, tuple[str, ...], Sequence[float]], Any]


def ray_metric(
    kind: MetricType, name: str, tag_keys: tuple[str, ...], boundaries: Sequence[float]
) -> Any:
    """Build the Ray metric object that stands for one of our metrics."""
    from ray.util import metrics as ray_metrics

    doc = "mirrored from ray_enterprise"
    if kind is MetricType.COUNTER:
        return ray_metrics.Counter(name, doc, tag_keys)
    if kind is MetricType.GAUGE:
        return ray_metrics.Gauge(name, doc, tag_keys)
    return ray_metrics.Histogram(name, doc, [b for b in boundaries if b > 0], tag_keys)


class RayMetricsMirror:
    """Replays each ingested batch into Ray metric objects, created on first sight."""

    def __init__(
        self,
        boundaries: Sequence[float],
        *,
        factory: MetricFactory = ray_metric,
        max_observations: int = 1000,
    ) -> None:
        self._boundaries = tuple(boundaries)
        self._factory = factory
        self._max = max_observations
        self._metrics: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self.skipped = 0

    def mirror(self, batch: MetricBatch) -> None:
        for points in batch.series:
            keys = tuple(k for k, _ in points.labels)
            entry = self._metrics.get(points.name)
            if entry is None:
                metric = self._factory(points.kind, points.name, keys, self._boundaries)
                entry = self._metrics[points.name] = (metric, keys)
            metric, known = entry
            if keys != known:
                self.skipped += len(points.values)
                continue
            tags = dict(points.labels)
            if points.kind is MetricType.COUNTER:
                total = float(points.values.sum())
                if total > 0:  # Ray counters refuse zero increments
                    metric.inc(total, tags)
            elif points.kind is MetricType.GAUGE:
                metric.set(float(points.values[-1]), tags)
            else:
                for value in points.values[-self._max :]:
                    metric.observe(float(value), tags)
