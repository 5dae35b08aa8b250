"""The system actors' own metrics in one scrape, named by Prometheus' conventions."""

from __future__ import annotations

from typing import Any

import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from ray_enterprise.config.errors import ConfigError
from ray_enterprise.observability.platform import boot_observability
from tests.support import wait_for


def families(central: Any) -> dict[str, Any]:
    text = ray.get(central.exposition.remote()).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(family: Any, **labels: str) -> float:
    return sum(s.value for s in family.samples if labels.items() <= s.labels.items())


def test_registry_config_and_alert_actors_export_their_own_metrics(
    registry: Any, own_config_and_alerts: tuple[Any, Any]
) -> None:
    config, alerts = own_config_and_alerts
    central = boot_observability()
    with pytest.raises(ConfigError):
        ray.get(config.set_value.remote("observability.cardinality_limit", -1))
    ray.get(config.set_value.remote("observability.cardinality_limit", 500))
    signal = {"labels": {"alertname": "SysProbe", "service": "x"}, "severity": "critical"}
    ray.get(alerts.ingest.remote([signal]))

    def exported() -> dict[str, Any] | None:
        found = families(central)
        ready = (
            value(found["ray_enterprise_config_rejections"]) >= 1
            and value(found["ray_enterprise_config_versions_applied"]) >= 1
            and value(found["ray_enterprise_alerts"], state="firing", severity="critical") >= 1
            and "ray_enterprise_alert_tick_duration_seconds" in found
            and "ray_enterprise_registry_tick_duration_seconds" in found
        )
        return found if ready else None

    found = wait_for(exported, timeout=60, interval=0.5, what="the system actors' metrics")
    assert value(found["ray_enterprise_config_version"]) >= 2
    assert "ray_enterprise_registry_service_restarts" in found
    assert found["ray_enterprise_alert_tick_duration_seconds"].type == "histogram"
    assert found["ray_enterprise_registry_tick_duration_seconds"].type == "histogram"

    ours = {n: f for n, f in found.items() if n.startswith("ray_enterprise_")}
    for name, family in ours.items():
        assert not name.endswith(("_ms", "_milliseconds")), f"{name}: use base units"
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name
    docs = [f.documentation for f in ours.values()]
    assert len(docs) == len(set(docs)), "every metric has a HELP of its own"
