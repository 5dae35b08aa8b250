"""`ray-enterprise deploy | scale | history | rollback` from another process, on real Ray."""

from __future__ import annotations

import json
from pathlib import Path

import ray

import ray_enterprise
from tests.integration.cli.test_cli import run_cli
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def test_deploy_scale_history_and_rollback_from_the_command_line(
    registry: ray_enterprise.EnterpriseServiceRegistry, tmp_path: Path
) -> None:
    registry.register_app_sync([faulty("api", config={"version": 1})])
    registry.start_all_sync(timeout_s=60)
    address = ray.get_runtime_context().gcs_address
    spec = tmp_path / "app.yaml"
    spec.write_text(
        "services:\n"
        f"  - name: api\n    class: '{FAULTY}'\n    config: {{version: 2}}\n"
        "    health: {period_s: 0.2, timeout_s: 2.0, failure_threshold: 2}\n"
    )
    deployed = run_cli("deploy", str(spec), "--bake", "3", "--address", address)
    assert deployed.returncode == 0, deployed.stderr
    assert "api: upgrade done" in deployed.stdout
    # Progress on stderr while it ran: the upgrade's phases as they came.
    progress = [line for line in deployed.stderr.splitlines() if "] api: " in line]
    assert any("upgrade baking" in line for line in progress), deployed.stderr
    assert "(generation 1 -> 2)" in deployed.stdout
    again = run_cli("deploy", str(spec), "--address", address)
    assert "nothing to do" in again.stdout

    scaled = run_cli("scale", "api", "2", "--address", address)
    assert scaled.returncode == 0, scaled.stderr
    assert "api: 1 -> 2 replicas" in scaled.stdout
    assert "2/2 replicas" in scaled.stderr, scaled.stderr
    assert service_actor_names() == ["svc:api:2", "svc:api:2.1"]

    back = run_cli("rollback", "api", "--address", address)
    assert back.returncode == 0, back.stderr
    assert "api: rollback done" in back.stdout
    # Back to version 1, still at the 2 replicas it was scaled to.
    handle = registry.get_service_sync("api")
    assert {ray.get(handle.work.remote(i))["version"] for i in range(4)} == {1}
    assert service_actor_names() == ["svc:api:3", "svc:api:3.1"]
    history = run_cli("history", "api", "--json", "--address", address)
    rows = json.loads(history.stdout)
    assert [r["kind"] for r in rows[:3]] == ["rollback", "scale", "upgrade"]
    table = run_cli("history", "api", "--address", address)
    assert table.stdout.splitlines()[0].split()[:3] == ["WHEN", "SERVICE", "KIND"]
