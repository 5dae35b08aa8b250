"""The unit that travels: a batch of aggregated points per series, plus what was refused.

Plain data shared by the recorder (which builds batches), the node collector (which merges the
batches of every process on its node) and the central store (which ingests them). Counters are
pre-summed per batch, gauges keep their values in order, histograms and timers keep every value
so that the central percentiles are exact rather than estimates of estimates.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

#: Sorted (name, value) label pairs of one series, the service label included.
Labels = tuple[tuple[str, str], ...]
FloatArray = npt.NDArray[np.float64]


class MetricType(str, enum.Enum):
    """What a metric measures, which decides how it is aggregated and exposed."""

    COUNTER = "counter"  # increments; exposed as a monotonic ``_total``
    GAUGE = "gauge"  # a level; the last value wins
    HISTOGRAM = "histogram"  # a distribution; exposed with buckets
    TIMER = "timer"  # durations; exposed as a summary with quantiles


def step_value(kind: MetricType, values: npt.NDArray[np.float64]) -> float:
    """The one value that stands for a step's ``values`` (non-empty) of one series: a counter's
    increment, a gauge's last level, a histogram's or timer's mean. Detectors and plots both
    take one point per step."""
    if kind is MetricType.COUNTER:
        return float(values.sum())
    if kind is MetricType.GAUGE:
        return float(values[-1])
    return float(values.mean())


@dataclass
class SeriesPoints:
    """The values of one series in one batch."""

    name: str
    kind: MetricType
    labels: Labels
    values: FloatArray


@dataclass
class MetricBatch:
    """What one flush (or one collector forward) carries."""

    ts_ms: int
    series: list[SeriesPoints] = field(default_factory=list)
    #: (metric, reason) -> number of points refused since the previous batch.
    refused: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Points lost because a buffer was full or no collector took them.
    dropped: int = 0
    #: Explanations of refusals first seen in this batch: (metric, reason) -> message.
    messages: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def point_count(self) -> int:
        return sum(len(s.values) for s in self.series)


def merge_batches(batches: Iterable[MetricBatch]) -> MetricBatch:
    """One batch equivalent to ``batches`` in order: counters summed, the rest concatenated."""
    parts: dict[tuple[str, MetricType, Labels], list[FloatArray]] = {}
    merged = MetricBatch(ts_ms=0)
    for batch in batches:
        merged.ts_ms = max(merged.ts_ms, batch.ts_ms)
        merged.dropped += batch.dropped
        for key, count in batch.refused.items():
            merged.refused[key] = merged.refused.get(key, 0) + count
        for key, message in batch.messages.items():
            merged.messages.setdefault(key, message)
        for s in batch.series:
            parts.setdefault((s.name, s.kind, s.labels), []).append(s.values)
    for (name, kind, labels), arrays in parts.items():
        values = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        if kind is MetricType.COUNTER and len(values) > 1:
            values = np.array([values.sum()], dtype=np.float64)
        merged.series.append(SeriesPoints(name, kind, labels, values))
    return merged
