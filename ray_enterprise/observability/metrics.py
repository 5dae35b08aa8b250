"""Recording metrics from any process: ``record_metric`` and the handles, on one recorder.

Each process has one :class:`~ray_enterprise.observability.recorder.Recorder`, created on first
use, whose sink is the collector actor on this node: recording only appends to its buffer and
the flush thread ships aggregated batches every second.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping

from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.metric_names import MetricNameError, RefusalReason
from ray_enterprise.observability.recorder import (
    Counter,
    Gauge,
    Histogram,
    Recorder,
    RecorderStats,
    Timer,
)

__all__ = [
    "Counter",
    "Gauge",
    "Histogram",
    "MetricNameError",
    "MetricType",
    "Recorder",
    "RecorderStats",
    "RefusalReason",
    "Timer",
    "counter",
    "default_recorder",
    "flush",
    "gauge",
    "histogram",
    "record_metric",
    "timer",
]


# -- the process's default recorder -----------------------------------------------------------

_default: Recorder | None = None
_default_lock = threading.Lock()


def default_recorder() -> Recorder:
    """This process's recorder, shipping to the node's collector; created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                from ray_enterprise.observability.collector import ship_metrics
                from ray_enterprise.observability.process_settings import setting

                interval = float(setting("flush_interval_seconds", 1.0))
                _default = Recorder(sink=ship_metrics, flush_interval_s=interval)
                atexit.register(_default.stop)
    return _default


def record_metric(
    name: str,
    value: float,
    metric_type: MetricType | str = MetricType.GAUGE,
    tags: Mapping[str, str] | None = None,
    service_name: str | None = None,
) -> bool:
    """Buffer one point in this process; see :class:`Recorder`."""
    return (_default or default_recorder()).record(name, value, metric_type, tags, service_name)


def counter(
    name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
) -> Counter:
    return default_recorder().counter(name, tags, service_name)


def gauge(
    name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
) -> Gauge:
    return default_recorder().gauge(name, tags, service_name)


def histogram(
    name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
) -> Histogram:
    return default_recorder().histogram(name, tags, service_name)


def timer(
    name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
) -> Timer:
    return default_recorder().timer(name, tags, service_name)


def flush() -> bool:
    """Ship this process's buffer now (tests, shutdown); ``True`` when the collector took it."""
    return default_recorder().flush()
