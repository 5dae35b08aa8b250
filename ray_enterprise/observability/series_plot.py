"""A series as points to plot: one point per flush, reduced the way the anomaly feed reduces it.

The anomaly shards see one value per series per batch (a counter's increment, a gauge's last
value, a timer's or histogram's mean) stamped with the batch's flush time; plotting the same
reduction puts every anomaly event exactly on a plotted point.
"""

from __future__ import annotations

import numpy as np

from ray_enterprise.observability.metric_batch import MetricType, step_value
from ray_enterprise.observability.series import Series


def plot_points(series: Series, start_ms: int, max_points: int) -> list[tuple[float, float]]:
    """``(timestamp in seconds, value)`` from ``start_ms`` on, the newest ``max_points``."""
    ts, values = series.ring.ordered()
    lo = int(np.searchsorted(ts, start_ms, side="left"))
    ts, values = ts[lo:], values[lo:]
    if len(ts) == 0 or max_points <= 0:
        return []
    stamps, first = np.unique(ts, return_index=True)
    bounds = [*first.tolist(), len(ts)]
    points: list[tuple[float, float]] = []
    for i, stamp in enumerate(stamps.tolist()):
        chunk = values[bounds[i] : bounds[i + 1]]
        points.append((stamp / 1000.0, step_value(series.kind, chunk)))
    return points[-max_points:]


#: Name suffixes that say a unit, Prometheus' naming convention (longest first).
_UNIT_SUFFIXES = (
    ("_milliseconds", "ms"),
    ("_seconds", "s"),
    ("_percent", "%"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio"),
    ("_ms", "ms"),
    ("_s", "s"),
)


def plot_unit(name: str, kind: MetricType) -> str:
    """The unit of a plotted point, for the y axis: the name's unit suffix, and for a counter
    its increment per flush (a plotted counter point is what it rose by in one step)."""
    base = name.removesuffix("_total")
    unit = next((u for suffix, u in _UNIT_SUFFIXES if base.endswith(suffix)), "")
    if kind is MetricType.COUNTER:
        return f"{unit or 'count'} per flush"
    if kind is MetricType.TIMER and not unit:
        return "ms"  # record_metric's timers are durations in milliseconds
    return unit


__all__ = ["plot_points", "plot_unit"]
