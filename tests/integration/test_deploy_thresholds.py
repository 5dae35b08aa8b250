"""The bake gate's latency and health-score thresholds, read from the running config.

Each test changes only the ``deployment.rollback`` section through a real ConfigActor and shows
that the same upgrade is rolled back or kept because of it, on the session's real Ray.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import ray

import ray_enterprise
from ray_enterprise import _kv
from ray_enterprise.alerts.actor import get_alert_handle
from ray_enterprise.config.client import ConfigOrchestrator
from ray_enterprise.config.settings import ConfigSettings
from tests.integration.config.actor_support import config_actor
from tests.integration.test_deploy import Callers, v
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def _settings(tmp_path: Path) -> ConfigSettings:
    return ConfigSettings(database_url=f"sqlite:///{tmp_path / 'config.db'}")


def test_a_slow_green_is_rolled_back_past_the_configured_p99_and_kept_under_it(
    registry: Registry, tmp_path: Path
) -> None:
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    with config_actor(_settings(tmp_path)) as handle:
        config = ConfigOrchestrator(handle)
        config.set_sync("deployment.rollback.min_calls", 5)
        config.set_sync("deployment.rollback.max_latency_p99_ms", 100)
        slow = v("api", 2, config={"work_delay_s": 0.25})
        with Callers(registry, "api"):
            result = registry.upgrade_sync("api", slow, bake_s=3.0)
        assert result["outcome"] == "rolled_back", result
        assert "latency: green p99" in result["reason"]
        assert "limit 100 ms" in result["reason"]

        # The same green under the default limit (1 s): only the setting differs.
        config.set_sync("deployment.rollback.max_latency_p99_ms", 1000)
        with Callers(registry, "api"):
            kept = registry.upgrade_sync("api", slow, bake_s=3.0)
        assert kept["outcome"] == "done", kept


def _critical(firing: bool) -> dict[str, Any]:
    return {
        "labels": {"alertname": "GateProbe", "service": "gate-probe"},
        "severity": "critical",
        "firing": firing,
    }


def test_a_health_score_that_falls_below_the_configured_minimum_rolls_back(
    registry: Registry, tmp_path: Path
) -> None:
    system = ray_enterprise.connect()
    assert system.observability is not None
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    before = float(system.observability.get_system_health()["score"])
    # One critical alert takes 25 points: a minimum 10 under today's score is crossed by it.
    minimum = before - 10.0
    assert minimum > 0, f"the shared session's score is already {before}"
    alerts = get_alert_handle(create=False)

    def raise_during_the_bake() -> None:
        wait_for(
            lambda: (_kv.get("registry/rollout/api") or {}).get("phase") == "baking",
            what="the upgrade baking",
        )
        # After the score before the bake was read (the bake's first step), well before it ends.
        time.sleep(2.5)
        ray.get(alerts.ingest.remote([_critical(True)]))

    with config_actor(_settings(tmp_path)) as handle:
        ConfigOrchestrator(handle).set_sync("deployment.rollback.min_health_score", minimum)
        raiser = threading.Thread(target=raise_during_the_bake, daemon=True)
        raiser.start()
        try:
            result = registry.upgrade_sync("api", v("api", 2), bake_s=6.0)
        finally:
            raiser.join(timeout=60)
            ray.get(alerts.ingest.remote([_critical(False)]))
    assert result["outcome"] == "rolled_back", result
    assert "health score: fell to" in result["reason"]
    assert f"minimum {minimum:.1f}" in result["reason"]
