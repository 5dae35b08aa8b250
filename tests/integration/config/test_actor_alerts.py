"""Rejected configuration and failing sources reach the alert manager, and resolve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ray
from actor_support import config_actor, eventually

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
from ray_enterprise.config.settings import ConfigSettings


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def open_alerts(alerts: Any) -> list[str]:
    return sorted(a["labels"]["alertname"] for a in ray.get(alerts.alerts.remote()))


def test_a_rejected_change_and_a_broken_file_raise_alerts_that_resolve(
    ray_session: None, tmp_path: Path
) -> None:
    app = tmp_path / "app.yaml"
    write(app, "cache:\n  default_ttl_seconds: 10\n")
    settings = ConfigSettings(files=[str(app)], database_url=f"sqlite:///{tmp_path / 's.db'}")
    remove_alert_actor()
    alerts = get_alert_handle(create=True, settings={"db_url": f"sqlite:///{tmp_path / 'a.db'}"})
    try:
        with config_actor(settings) as config:
            assert ray.get(config.current_version.remote()) == 1
            write(app, "cache:\n  default_ttl_seconds: -1\n")
            eventually(
                lambda: open_alerts(alerts) == ["ConfigRejected"], 30, "a ConfigRejected alert"
            )
            write(app, "cache:\n  tiers: [unclosed\n")
            eventually(lambda: "ConfigSourceFailing" in open_alerts(alerts), 30, "a failing source")
            write(app, "cache:\n  default_ttl_seconds: 20\n")
            eventually(lambda: open_alerts(alerts) == [], 30, "both alerts resolved")
    finally:
        remove_alert_actor()
