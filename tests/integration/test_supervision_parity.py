"""Issue 24's supervision rules on a real local Ray: one_for_all groups, the start retry
budget, and auto_shutdown from the Python API (through `up`, with its exit status:
tests/integration/cli/test_auto_shutdown.py)."""

from __future__ import annotations

import pytest
import ray

import ray_enterprise
from ray_enterprise.spec import AppSpec, AutoShutdown
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry

FAST = {"backoff_initial_s": 0.05, "backoff_max_s": 0.2}


def test_a_crash_in_a_one_for_all_group_restarts_the_whole_group_only(
    registry: Registry,
) -> None:
    group = {"strategy": "one_for_all", "group": "pipeline", "restart": FAST}
    registry.register_app_sync(
        [
            faulty("reader", **group),
            faulty("writer", "reader", **group),
            faulty("bystander", restart=FAST),
        ]
    )
    assert registry.start_all_sync(timeout_s=60)["status"] == "healthy"
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(registry.get_service_sync("reader").crash.remote())
    wait_for(
        lambda: all(
            service(registry, name)["generation"] == 2
            and service(registry, name)["state"] == "healthy"
            for name in ("reader", "writer")
        ),
        what="reader and writer restarted together and healthy",
    )
    writer = service(registry, "writer")
    assert "one_for_all group pipeline" in (writer["last_error"] or "")
    assert service(registry, "bystander")["generation"] == 1


def test_a_service_whose_start_keeps_raising_is_failed_with_its_last_error(
    registry: Registry,
) -> None:
    restart = {**FAST, "max_start_attempts": 2, "max_restarts": 10}
    registry.register_app_sync([faulty("broken", restart=restart, config={"fail_start": True})])
    registry.start_all_sync(timeout_s=60)
    info = wait_for(
        lambda: (s := service(registry, "broken"))["state"] == "failed" and s,
        what="broken FAILED after its start budget",
    )
    assert info["generation"] == 2  # two attempts, then given up
    error = info["last_error"] or ""
    assert error.startswith("start failed 2 times in a row (restart.max_start_attempts=2)")
    assert "configured to fail in start()" in error


def test_start_all_returns_when_a_significant_service_fails_and_the_app_stops_itself(
    registry: Registry,
) -> None:
    app = AppSpec(
        name="batch",
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        services=(
            faulty("store"),
            faulty(
                "job",
                "store",
                significant=True,
                restart={"max_start_attempts": 1},
                config={"fail_start": True},
            ),
        ),
    )
    registry.register_app_sync(app)
    # No timeout of its own: it must end because the application stopped, not by a deadline.
    status = ray.get(registry.actor.start_all.remote(None), timeout=120)
    assert {s["name"]: s["state"] for s in status["services"]} == {
        "store": "stopped",
        "job": "stopped",
    }
    cause = ray.get(registry.actor.auto_shutdown.remote())
    assert cause["failed"] and cause["services"] == ["job"]
    assert cause["reason"].startswith("auto_shutdown=any_significant: job failed: start failed")
