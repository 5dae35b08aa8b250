"""get_system_health() on a real Ray: registry states by criticality, alerts, anomaly rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import ray

import ray_enterprise
from ray_enterprise.observability.platform import (
    EnterpriseObservabilityPlatform,
    boot_observability,
)
from tests.integration.helpers import faulty
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def test_health_follows_service_states_alerts_and_anomalies(registry: Registry) -> None:
    platform = EnterpriseObservabilityPlatform(boot_observability())
    registry.register_app_sync(
        [
            faulty("ledger", criticality="critical"),
            faulty("mailer", criticality="low", health={"failure_threshold": 1}),
        ]
    )
    assert registry.start_all_sync(timeout_s=60)["status"] == "healthy"
    report = platform.get_system_health()
    # Alerts other tests of the shared session left firing (a NodeLost of a node another test
    # took away) count in the score now: this test's services must count whole and unnamed.
    assert report["components"]["services"] == 100.0
    assert not [r for r in report["reasons"] if "ledger" in r or "mailer" in r], report

    ray.get(registry.get_service_sync("mailer").set_healthy.remote(False))

    def mailer_counted() -> dict[str, Any] | None:
        health = platform.get_system_health()
        return health if any("mailer (low)" in r for r in health["reasons"]) else None

    degraded = wait_for(mailer_counted, timeout=20, what="the unhealthy mailer in the score")
    # Weights 8 (critical) and 1 (low): a lost low-criticality service costs at most 1/9 of
    # the services' part; the alert the registry raises about it now costs points on top.
    assert round(100 * 8 / 9, 1) <= degraded["components"]["services"] < 100.0
    assert degraded["score"] <= degraded["components"]["services"]
    assert degraded["status"] == "degraded"

    handle = platform.handle
    ray.get(handle.report_alerts.remote({"critical": 1}))
    ray.get(handle.report_anomaly_rate.remote(0.5))
    report = platform.get_system_health()
    parts = report["components"]
    assert (parts["alerts_critical"], parts["anomalies"]) == (-25.0, -20.0)
    assert report["score"] == round(parts["services"] - 45.0, 1)
    assert "1 critical alert firing" in report["reasons"]
    assert "50.0% of recent points anomalous" in report["reasons"]
    assert report["status"] == ("critical" if report["score"] < 50.0 else "degraded")
    exposition = ray.get(handle.exposition.remote()).decode()
    assert f"ray_enterprise_health_score {report['score']}" in exposition
    ray.get(handle.report_alerts.remote({}))
    ray.get(handle.report_anomaly_rate.remote(None))


def test_series_feed_the_anomaly_shards_and_their_rate_reaches_the_score(
    ray_session: None,
) -> None:
    """An unnamed central actor with one shard: every batch gives each series one point."""
    from ray_enterprise.anomaly.feed import series_text
    from ray_enterprise.anomaly.shard import (
        clear_checkpoints,
        get_shard_handles,
        remove_shards,
    )
    from ray_enterprise.observability.central import ObservabilityActor
    from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints

    remove_shards()  # a clean slate: no shard or checkpoint left by an earlier test
    (shard,) = get_shard_handles(1, create=True)
    central = ray.remote(ObservabilityActor).options(num_cpus=0).remote(anomaly_shards=1)
    labels = (("service", "feed"),)
    series = series_text("feed_depth", labels)
    before = ray.get(shard.baseline_samples.remote(series))
    for i in range(30):
        batch = MetricBatch(
            ts_ms=1_000_000 + i * 1000,
            series=[SeriesPoints("feed_depth", MetricType.GAUGE, labels, np.array([5.0, 7.0]))],
        )
        ray.get(central.ingest.remote(batch))
    try:
        wait_for(
            lambda: ray.get(shard.baseline_samples.remote(series)) - before == 30,
            timeout=60,
            what="30 points of feed_depth at the shard",
        )
    except AssertionError as exc:
        seen = ray.get(shard.baseline_samples.remote(series))
        stats = ray.get(shard.stats.remote())
        raise AssertionError(f"{exc}; before={before} now={seen} {stats}") from None
    report = ray.get(central.get_system_health.remote())
    stats = ray.get(shard.stats.remote())
    assert stats["points"] >= 30
    if stats["events"] == 0:  # steady values: nothing anomalous, nothing subtracted
        assert "anomalies" not in report["components"]
    ray.kill(central)
    ray.kill(shard)
    clear_checkpoints()
