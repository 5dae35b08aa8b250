"""An upgrade's own settings (Kubernetes Deployment, Nomad ``update``) on a real local Ray:
``upgrade.min_ready_s`` and ``upgrade.progress_deadline_s``. No mocks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray

import ray_enterprise
from ray_enterprise import _kv
from ray_enterprise.spec import ServiceSpec
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def v(version: int, **fields: Any) -> ServiceSpec:
    config = {"version": version, **fields.pop("config", {})}
    return faulty("api", config=config, **fields)


def test_the_old_version_goes_only_after_the_new_one_served_for_min_ready_s(
    registry: Registry, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    registry.register_app_sync([v(1, config={"stop_marker": str(marker)})])
    registry.start_all_sync(timeout_s=60)
    result = registry.upgrade_sync("api", v(2, upgrade={"min_ready_s": 2.0}), bake_s=0.0)
    assert result["outcome"] == "done"
    green = ray.get_actor("svc:api:2", namespace=_kv.NAMESPACE)
    started = next(t for what, _, t in ray.get(green.events.remote()) if what == "started")
    blue_stopped = float(marker.read_text().split()[1])
    # Green passed its first check just after start() returned; blue waited 2 s beyond that.
    assert blue_stopped >= started + 2.0
    assert service_actor_names() == ["svc:api:2"]


def test_an_upgrade_that_makes_no_progress_rolls_back_and_history_says_why(
    registry: Registry,
) -> None:
    began = time.time()
    registry.register_app_sync([v(1)])
    registry.start_all_sync(timeout_s=60)
    # Green starts and is live, but never ready: no progress, whatever the bake.
    stuck = v(2, config={"ready": False}, upgrade={"progress_deadline_s": 2.0})
    result = registry.upgrade_sync("api", stuck, bake_s=0.0)
    assert result["outcome"] == "rolled_back"
    assert "upgrade.progress_deadline_s=2 s" in result["reason"]
    wait_for(lambda: service_actor_names() == ["svc:api:1"], what="green retired")
    handle = registry.get_service_sync("api")
    assert ray.get(handle.work.remote(0))["version"] == 1
    assert service(registry, "api")["generation"] == 1
    [row] = [r for r in registry.deployment_history_sync("api") if r["started_at"] >= began]
    assert row["outcome"] == "rolled_back" and "progress_deadline_s" in row["reason"]


def test_a_rolling_upgrade_with_max_unavailable_and_no_surge_replaces_every_replica(
    registry: Registry,
) -> None:
    registry.register_app_sync([v(1, replicas=3)])
    registry.start_all_sync(timeout_s=60)
    wait_for(lambda: service(registry, "api")["replicas"] == 3, what="3 replicas routed")
    new = v(2, replicas=3, upgrade={"max_surge": 0, "max_unavailable": 1})
    result = registry.upgrade_sync("api", new, bake_s=0.0)
    assert result["outcome"] == "done" and result["strategy"] == "rolling", result
    names = service_actor_names()
    assert len(names) == 3 and all(n.startswith("svc:api:2") for n in names), names
    handle = registry.get_service_sync("api")
    wait_for(
        lambda: {ray.get(handle.work.remote(i))["version"] for i in range(6)} == {2},
        what="only the new version answers",
    )


def test_a_rollout_that_stalls_after_its_commit_switches_back_to_the_old_version(
    registry: Registry,
) -> None:
    registry.register_app_sync([v(1, replicas=2)])
    registry.start_all_sync(timeout_s=60)
    wait_for(lambda: service(registry, "api")["replicas"] == 2, what="2 replicas routed")
    # The canary (index 0) is ready, so the upgrade commits; the next green never is.
    stalls = v(2, replicas=2, config={"not_ready_from": 1}, upgrade={"progress_deadline_s": 3.0})
    result = registry.upgrade_sync("api", stalls, bake_s=0.0)
    assert result["outcome"] == "rolled_back", result
    assert "upgrade.progress_deadline_s=3 s" in result["reason"]
    assert "1 of 2 new available" in result["reason"]  # the canary was in: after the commit
    wait_for(
        lambda: (
            service(registry, "api")["replicas"] == 2
            and all(n.startswith("svc:api:1") for n in service_actor_names())
        ),
        what="the old version back at 2 replicas, the new one gone",
    )
    info = service(registry, "api")
    assert info["generation"] == 1 and info["state"] == "healthy"
    handle = registry.get_service_sync("api")
    assert {ray.get(handle.work.remote(i))["version"] for i in range(6)} == {1}
    [spec] = ray.get(registry.actor.get_specs.remote(["api"]))
    assert spec["config"]["version"] == 1  # the stored spec was switched back too
