"""The node collector on a real Ray: when it forwards to the central store."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray

from ray_enterprise.observability.collector import CollectorActor
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.platform import boot_observability
from tests.support import wait_for


def timer_batch(name: str, values: list[float]) -> MetricBatch:
    series = SeriesPoints(name, MetricType.TIMER, (("service", "test"),), np.array(values))
    return MetricBatch(ts_ms=int(time.time() * 1000), series=[series])


def test_a_collector_holding_its_forward_size_forwards_at_once_not_at_its_interval(
    ray_session: None,
) -> None:
    central = boot_observability()
    # An hour's interval: only the size trigger can bring the points to the store in time.
    collector: Any = (
        ray.remote(CollectorActor).options(num_cpus=0).remote(3600.0, forward_at_points=10)
    )
    name = "collector_forward_size_ms"
    ray.get(collector.ingest.remote(timer_batch(name, [1.0] * 6)))
    assert ray.get(collector.stats.remote())["held_points"] == 6  # below the size: held

    ray.get(collector.ingest.remote(timer_batch(name, [3.0] * 5)))

    def stored() -> Any:
        found = ray.get(central.stats.remote(name, {"service": "test"}))
        return found if found and found["total_count"] == 11 else None

    found = wait_for(stored, timeout=30, what="11 points forwarded before the interval")
    # Merged in arrival order, as the timer's forward would have: one batch, nothing lost.
    assert found["total_sum"] == 21.0
    assert found["last"] == 3.0
    assert ray.get(collector.stats.remote()) == {
        "held_points": 0,
        "held_spans": 0,
        "forwarded_points": 11,
    }
    ray.kill(collector)
