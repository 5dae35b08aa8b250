"""The alert policy follows the config's ``observability.alerting`` section on the session's Ray.

Nothing here calls ``set_policy``: the only way the webhook gets configured is a write to the
ConfigActor's database source, which pushes the section to the alert actor. The webhook is a
real aiohttp server on 127.0.0.1 (alert_support.Webhook).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.settings import ConfigSettings
from tests.integration.alerts.alert_support import Webhook, signal_of
from tests.support import wait_for

SECRET = "hook-token-4f1c9e"


@pytest.fixture
def config_and_alerts(ray_session: None, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A fresh ConfigActor on a SQLite file, then an alert actor booted without a policy of its
    own, so it takes its policy from the config."""
    remove_alert_actor()
    remove_config_actor()
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 'config.db'}")
    config = get_config_handle(create=True, settings=settings)
    alerts = get_alert_handle(create=True, settings={"db_url": f"sqlite:///{tmp_path / 'a.db'}"})
    try:
        yield config, alerts
    finally:
        remove_alert_actor()
        remove_config_actor()


def notified(alerts: Any, alertname: str) -> bool:
    history = ray.get(alerts.history.remote())
    return any(c["alertname"] == alertname and c["kind"] == "notified" for c in history)


def test_only_a_config_change_points_alerts_at_a_webhook_with_its_secret_header(
    config_and_alerts: tuple[Any, Any],
) -> None:
    config, alerts = config_and_alerts
    wait_for(
        lambda: ray.get(alerts.settings.remote())["config_version"] >= 1,
        timeout=30,
        what="the alert actor's first config version",
    )
    with Webhook() as hook:
        alerting = {
            "group_wait_seconds": 0,
            "webhook_url": hook.url,
            "webhook_headers": {"X-Hook-Token": SECRET},
        }
        version = ray.get(config.set_value.remote("observability.alerting", alerting))
        wait_for(
            lambda: ray.get(alerts.settings.remote())["config_version"] >= version,
            timeout=30,
            what=f"config version {version} at the alert actor",
        )
        ray.get(alerts.ingest.remote([signal_of("PagedByConfig", "api", "critical")]))
        [sent] = wait_for(lambda: hook.alerts("PagedByConfig"), timeout=30, what="the webhook")
        assert sent["labels"]["service"] == "api"
        assert hook.headers[0]["X-Hook-Token"] == SECRET
        running = ray.get(alerts.settings.remote())
        assert SECRET not in json.dumps(running) and hook.url not in json.dumps(running)
        assert SECRET not in json.dumps(ray.get(config.history.remote()), default=str)

        # alerting.enabled=false: alerts are still kept, and nobody is told.
        version = ray.get(config.set_value.remote("observability.alerting.enabled", False))
        wait_for(
            lambda: ray.get(alerts.settings.remote())["config_version"] >= version,
            timeout=30,
            what="alerting disabled at the alert actor",
        )
        ray.get(alerts.ingest.remote([signal_of("WhileDisabled", "api", "critical")]))
        wait_for(lambda: notified(alerts, "WhileDisabled"), timeout=30, what="a silent flush")
        version = ray.get(config.set_value.remote("observability.alerting.enabled", True))
        wait_for(
            lambda: ray.get(alerts.settings.remote())["config_version"] >= version,
            timeout=30,
            what="alerting enabled again",
        )
        ray.get(alerts.ingest.remote([signal_of("AfterEnabled", "api", "critical")]))
        wait_for(lambda: hook.alerts("AfterEnabled"), timeout=30, what="the next page")
        assert hook.alerts("WhileDisabled") == []
        assert ray.get(alerts.handler_stats.remote())["webhook"]["sent"] == 2


def test_a_policy_chosen_explicitly_is_not_replaced_by_the_config(
    config_and_alerts: tuple[Any, Any],
) -> None:
    _, alerts = config_and_alerts
    chosen = {"route": {"handlers": []}, "handlers": {"log": {"type": "log"}}}
    assert ray.get(alerts.set_policy.remote(chosen))["follow_config"] is False
    config = get_config_handle(create=False)
    version = ray.get(
        config.set_value.remote("observability.alerting.webhook_url", "http://127.0.0.1:9/x")
    )
    wait_for(
        lambda: ray.get(alerts.settings.remote())["config_version"] >= version,
        timeout=30,
        what=f"config version {version} at the alert actor",
    )
    assert ray.get(alerts.settings.remote())["route"]["handlers"] == []
