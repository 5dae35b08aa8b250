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


def test_restart_jitter_spreads_the_backoff_of_services_failing_together(
    registry: Registry,
) -> None:
    # A failed start is retried at once, then after the backoff: 20 s, lengthened by up to
    # jitter. What is checked is the restart each service was given, not how long it took.
    base = {"backoff_initial_s": 20, "backoff_max_s": 20, "max_start_attempts": 10}
    broken = {"fail_start": True}
    names = ["j1", "j2", "j3", "plain"]
    registry.register_app_sync(
        [faulty(n, restart={**base, "jitter": 0.5}, config=broken) for n in names[:3]]
        + [faulty("plain", restart={**base, "jitter": 0.0}, config=broken)]
    )
    registry.actor.start_all.remote(5.0)  # not awaited: these never become healthy

    def delays() -> dict[str, float] | None:
        found = {n: service(registry, n) for n in names}
        if not all(s["state"] == "restarting" and s["generation"] >= 2 for s in found.values()):
            return None
        return {n: s["restart_at"] - s["state_since"] for n, s in found.items()}

    waits = wait_for(delays, timeout=60, what="each service waiting out its backoff")
    assert waits["plain"] == pytest.approx(20.0, abs=0.05)  # no jitter: exactly the backoff
    jittered = [waits[n] for n in names[:3]]
    assert all(20.0 <= w <= 30.0 + 0.05 for w in jittered), waits
    assert len({round(w, 3) for w in jittered}) == 3, waits  # drawn apart, not in lockstep


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
