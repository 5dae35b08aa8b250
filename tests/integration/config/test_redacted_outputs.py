"""A service whose health detail holds a DSN password: the password leaves by no door.

The doors: ``/status``, ``/services`` and ``/alerts`` over HTTP, ``status --json``, the
registry's own status, and the ServiceFailed alert (its summary is what webhooks carry).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ray
import requests
from config_services import LEAKED, LEAKY

import ray_enterprise
from ray_enterprise.alerts.actor import get_alert_handle
from ray_enterprise.redaction import REDACTED
from ray_enterprise.spec import ServiceSpec
from tests.support import wait_for


def test_a_password_in_a_health_detail_reaches_no_output(
    registry: ray_enterprise.EnterpriseServiceRegistry, http_api: tuple[str, str]
) -> None:
    url, secret = http_api
    spec = ServiceSpec.model_validate(
        {
            "name": "leaky",
            "class": LEAKY,
            "criticality": "critical",
            "health": {"period_s": 0.2, "failure_threshold": 1},
            "restart": {"max_restarts": 0},
        }
    )
    registry.register_app_sync([spec])
    registry.actor.start_all.remote(30)
    alerts = get_alert_handle(create=True)

    def failed_alert() -> list[dict]:
        found = ray.get(alerts.alerts.remote(service="leaky"))
        return [a for a in found if a["labels"]["alertname"] == "ServiceFailed"]

    wait_for(
        lambda: (
            {s["name"]: s["state"] for s in registry.list_services_sync()}.get("leaky") == "failed"
        ),
        what="leaky to be given up on",
    )
    [alert] = wait_for(failed_alert, what="the ServiceFailed alert")
    headers = {"X-API-Key": secret}
    address = ray.get_runtime_context().gcs_address
    cli = subprocess.run(
        [sys.executable, "-m", "ray_enterprise", "status", "--json", "--address", address],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert cli.returncode == 0, cli.stderr
    outputs = {
        "registry status": json.dumps(registry.get_system_status_sync(), default=str),
        "services": json.dumps(registry.list_services_sync(), default=str),
        "alert": json.dumps(alert),
        "status --json": cli.stdout + cli.stderr,
        **{
            f"GET {path}": requests.get(url + path, headers=headers, timeout=60).text
            for path in ("/status", "/services", "/alerts")
        },
    }
    for door, text in outputs.items():
        assert LEAKED not in text, door
    # The detail is still told, only masked: an operator sees why without the password.
    [leaky] = [s for s in json.loads(cli.stdout)["services"] if s["name"] == "leaky"]
    assert f"postgresql://app:{REDACTED}@db" in leaky["last_error"]
    assert f"api_token={REDACTED}" in alert["annotations"]["summary"]
