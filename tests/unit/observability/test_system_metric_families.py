"""SystemFigures: the system actors' figures as Prometheus families, without Ray."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ray_enterprise.observability.prometheus import render
from ray_enterprise.observability.system_metrics import SystemFigures


def test_anomaly_shards_export_points_and_events_as_counters_by_shard() -> None:
    figures = SystemFigures()
    figures.anomaly_shards = [
        {"shard": 0, "points": 30, "events": 2},
        {"shard": 1, "points": 12, "events": 0},
    ]
    text = render(figures.families()).decode()
    samples = {
        (s.name, s.labels.get("shard")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("ray_enterprise_anomaly")
    }
    assert samples == {
        ("ray_enterprise_anomaly_points_total", "0"): 30.0,
        ("ray_enterprise_anomaly_points_total", "1"): 12.0,
        ("ray_enterprise_anomaly_events_total", "0"): 2.0,
        ("ray_enterprise_anomaly_events_total", "1"): 0.0,
    }


def test_no_shards_read_yet_exports_the_families_without_samples() -> None:
    text = render(SystemFigures().families()).decode()
    assert "# TYPE ray_enterprise_anomaly_points_total counter" in text
    assert "ray_enterprise_anomaly_points_total{" not in text
