"""The central actor's intake under a flood of invented names, on the session's real Ray: the
series it holds stop at its global limit and every refused point is counted."""

from __future__ import annotations

import numpy as np
import pytest
import ray

from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints

pytestmark = pytest.mark.timeout(120)


def test_twenty_thousand_names_at_the_central_actor_stop_at_its_series_limit(
    ray_session: None,
) -> None:
    from ray_enterprise.observability.central import ObservabilityActor

    actor = (
        ray.remote(ObservabilityActor)
        .options(num_cpus=0)
        .remote(prometheus_host="127.0.0.1", series_limit=2_000, health_period_s=3600.0)
    )
    try:
        one = np.array([1.0])
        for start in range(0, 20_000, 5_000):
            batch = MetricBatch(
                ts_ms=1_000,
                series=[
                    SeriesPoints(f"flood_{i}", MetricType.GAUGE, (), one)
                    for i in range(start, start + 5_000)
                ],
            )
            ray.get(actor.ingest.remote(batch))
        assert ray.get(actor.summary.remote())["series"] == 2_000
        refusals = ray.get(actor.refusals.remote())
        limited = {k: n for k, n in refusals["counts"].items() if k.endswith(":series_limit")}
        assert sum(limited.values()) == 18_000
        assert any("limit of 2000 series" in m for m in refusals["messages"].values())
    finally:
        ray.kill(actor, no_restart=True)
