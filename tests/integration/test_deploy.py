"""Replicas, scaling, upgrades, gates and rollbacks on a real local Ray. No mocks.

Callers run in threads of this driver, each with its own handle from ``get_service``, calling
without pause while the registry scales or upgrades under them; every exception is kept.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import pytest
import ray

import ray_enterprise
from ray_enterprise import _kv
from ray_enterprise.alerts.actor import ACTOR_NAME
from ray_enterprise.runtime import registry_actor
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.spec import ServiceSpec
from ray_enterprise.storage import make_engine
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


class Callers:
    """``n`` threads calling ``work`` in a loop until stopped; counts answers and failures."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        n: int = 4,
        delay_s: float = 0.01,
        via: str | None = None,  # call ``relay`` on this service, which calls ``name``
    ) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.versions: Counter[Any] = Counter()
        self.pids: set[int] = set()
        self.failures: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, args=(registry, name, delay_s, via), daemon=True)
            for _ in range(n)
        ]

    def _run(self, registry: Registry, name: str, delay_s: float, via: str | None) -> None:
        handle = registry.get_service_sync(via or name, wait_s=30)
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                if via is None:
                    answer = ray.get(handle.work.remote(i, delay_s), timeout=60)
                else:
                    answer = ray.get(handle.relay.remote(name, i, delay_s), timeout=60)
            except Exception as exc:
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {str(exc)[-300:]}")
                continue
            with self._lock:
                self.versions[answer["version"]] += 1
                self.pids.add(answer["pid"])

    def calls(self) -> int:
        with self._lock:
            return sum(self.versions.values()) + len(self.failures)

    def __enter__(self) -> Callers:
        for thread in self._threads:
            thread.start()
        wait_for(lambda: self.calls() > 20, what="callers under way")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def history_since(registry: Registry, name: str, since: float) -> list[dict[str, Any]]:
    """This test's rows: the history is durable, so earlier tests' rows are there too."""
    return [r for r in registry.deployment_history_sync(name) if r["started_at"] >= since]


def v(name: str, version: int, **fields: Any) -> ServiceSpec:
    config = {"version": version, **fields.pop("config", {})}
    return faulty(name, config=config, **fields)


def test_replicas_are_n_actors_behind_one_handle(registry: Registry) -> None:
    registry.register_app_sync([v("rep", 1, replicas=3)])
    assert registry.start_all_sync(timeout_s=60)["status"] == "healthy"
    wait_for(lambda: service(registry, "rep")["replicas"] == 3, what="3 replicas routed")
    handle = registry.get_service_sync("rep")
    pids = {ray.get(handle.work.remote(i))["pid"] for i in range(12)}
    assert len(pids) == 3  # round-robin reached every replica
    assert service_actor_names() == ["svc:rep:1", "svc:rep:1.1", "svc:rep:1.2"]


def test_a_dead_replica_is_replaced_alone(registry: Registry) -> None:
    registry.register_app_sync([v("rep", 1, replicas=2)])
    registry.start_all_sync(timeout_s=60)
    wait_for(lambda: service(registry, "rep")["replicas"] == 2, what="2 replicas routed")
    victim = ray.get_actor("svc:rep:1.1", namespace=_kv.NAMESPACE)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(victim.crash.remote())
    wait_for(
        lambda: (
            service(registry, "rep")["replicas"] == 2 and "svc:rep:1.1" in service_actor_names()
        ),
        what="replica replaced",
    )
    info = service(registry, "rep")
    assert info["generation"] == 1 and info["state"] == "healthy"  # the service never went down
    assert info["restarts"] == 1


def test_scale_up_and_down_under_load_without_failed_calls(registry: Registry) -> None:
    began = time.time()
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    with Callers(registry, "api") as callers:
        up = registry.scale_sync("api", 3)
        assert "1 -> 3 replicas" in up["reason"]
        # Callers refresh their replica list every route_ttl (0.5 s): wait until calls reach
        # all three, however many calls that takes on a loaded machine.
        wait_for(lambda: len(callers.pids) == 3, timeout=60, what="calls on all 3 replicas")
        registry.scale_sync("api", 1)
        seen = callers.calls()
        wait_for(lambda: callers.calls() > seen + 50, what="calls after scaling down")
    assert callers.failures == []
    assert len(callers.pids) == 3
    assert service(registry, "api")["replicas"] == 1
    assert service_actor_names() == ["svc:api:1"]
    kinds = [row["kind"] for row in history_since(registry, "api", began)]
    assert kinds == ["scale", "scale"]


def test_autoscaling_follows_the_calls_in_flight_without_failed_calls(
    registry: Registry,
) -> None:
    autoscale = {"min_replicas": 1, "max_replicas": 3, "target_inflight": 2.0}
    autoscale |= {"downscale_delay_s": 1.0, "period_s": 0.2}
    registry.register_app_sync([v("api", 1, autoscale=autoscale)])
    registry.start_all_sync(timeout_s=60)
    # 8 callers each keeping a 0.2 s call in flight: 8 in flight, 2 per replica -> the max, 3.
    with Callers(registry, "api", n=8, delay_s=0.2) as callers:
        wait_for(lambda: service(registry, "api")["replicas"] == 3, timeout=60, what="3 replicas")
        # The callers' replica lists refresh every route_ttl: the new replicas take calls.
        wait_for(lambda: len(callers.pids) >= 2, timeout=60, what="calls on a new replica")
    wait_for(lambda: service(registry, "api")["replicas"] == 1, timeout=60, what="back to 1")
    assert callers.failures == []
    wait_for(lambda: len(service_actor_names()) == 1, what="extra replicas stopped")


@pytest.mark.parametrize("replicas", [1, 3])
def test_upgrade_under_load_sees_zero_failed_calls(registry: Registry, replicas: int) -> None:
    registry.register_app_sync([v("api", 1, replicas=replicas)])
    registry.start_all_sync(timeout_s=60)
    with Callers(registry, "api") as callers:
        result = registry.upgrade_sync("api", v("api", 2, replicas=replicas), bake_s=1.0)
        assert result["outcome"] == "done", result
        seen = callers.calls()
        wait_for(lambda: callers.calls() > seen + 50, what="calls after the upgrade")
    assert callers.failures == []
    assert callers.versions[1] > 0 and callers.versions[2] > 0
    assert result["strategy"] == ("blue_green" if replicas == 1 else "rolling")
    handle = registry.get_service_sync("api")
    assert {ray.get(handle.work.remote(i))["version"] for i in range(10)} == {2}
    names = service_actor_names()
    assert len(names) == replicas and all(n.startswith("svc:api:2") for n in names)
    assert service(registry, "api")["generation"] == 2


def test_dependents_switch_to_the_new_version_without_failed_calls(registry: Registry) -> None:
    registry.register_app_sync([v("api", 1), faulty("front", "api")])
    registry.start_all_sync(timeout_s=60)
    with Callers(registry, "api", via="front") as callers:
        result = registry.upgrade_sync("api", v("api", 2), bake_s=0.5)
        assert result["outcome"] == "done", result
        seen = callers.calls()
        wait_for(lambda: callers.calls() > seen + 50, what="calls after the upgrade")
    assert callers.failures == []
    assert callers.versions[1] > 0 and callers.versions[2] > 0
    front = registry.get_service_sync("front")
    assert ray.get(front.relay.remote("api", 0))["version"] == 2
    assert service(registry, "front")["generation"] == 1  # the dependent was not restarted


def test_a_green_failing_health_checks_is_rolled_back_with_alert_and_audit(
    registry: Registry,
) -> None:
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    with Callers(registry, "api") as callers:
        result = registry.upgrade_sync("api", v("api", 2, config={"healthy": False}), bake_s=1.0)
    assert result["outcome"] == "rolled_back", result
    assert "told to be unhealthy" in result["reason"]
    assert callers.failures == []  # green never took a call: it was never healthy
    assert set(callers.versions) == {1}
    assert service_actor_names() == ["svc:api:1"]
    assert service(registry, "api")["state"] == "healthy"
    audit = AuditLog(make_engine()).records(limit=20)
    assert any(
        r.action == "deployment.rollback" and r.target == "api" and result["id"] in r.details
        for r in audit
    )
    alerts = ray.get_actor(ACTOR_NAME, namespace=_kv.NAMESPACE)
    wait_for(
        lambda: any(
            a["labels"].get("deployment") == result["id"]
            for a in ray.get(alerts.alerts.remote(service="api"))
        ),
        what="DeploymentRolledBack alert",
    )


def test_an_error_rate_jump_during_the_bake_is_rolled_back(registry: Registry) -> None:
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    with Callers(registry, "api") as callers:
        result = registry.upgrade_sync("api", v("api", 2, config={"fail_every": 2}), bake_s=2.0)
        seen = callers.calls()
        wait_for(lambda: callers.calls() > seen + 50, what="calls after the rollback")
        failed_at_rollback = len(callers.failures)
        wait_for(lambda: callers.calls() > seen + 100, what="more calls after the rollback")
    assert result["outcome"] == "rolled_back", result
    assert "error rate" in result["reason"]
    assert result["gate"]["passed"] is False
    # Green's errors reached callers only while it baked: none after the rollback.
    assert len(callers.failures) == failed_at_rollback
    assert all("fail every 2" in f for f in callers.failures)
    assert service_actor_names() == ["svc:api:1"]


def test_manual_rollback_returns_to_the_previous_spec(registry: Registry) -> None:
    began = time.time()
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    assert registry.upgrade_sync("api", v("api", 2), bake_s=0.2)["outcome"] == "done"
    back = registry.rollback_sync("api")
    assert back["outcome"] == "done" and back["kind"] == "rollback"
    handle = registry.get_service_sync("api")
    assert ray.get(handle.work.remote(0))["version"] == 1
    history = history_since(registry, "api", began)
    assert [(r["kind"], r["outcome"]) for r in history] == [
        ("rollback", "done"),
        ("upgrade", "done"),
    ]
    assert history[0]["new_spec"]["config"]["version"] == 1


def _kill_registry() -> None:
    handle: Any = registry_actor()
    pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)


def test_registry_sigkill_before_the_commit_keeps_the_old_version(registry: Registry) -> None:
    began = time.time()
    registry.register_app_sync([v("api", 1, replicas=2)])
    registry.start_all_sync(timeout_s=60)
    spec = v("api", 2, replicas=2).to_json()
    pending = registry.actor.upgrade.remote("api", spec, 60.0, f"before-{time.time_ns()}")
    wait_for(
        lambda: (_kv.get("registry/rollout/api") or {}).get("phase") == "baking",
        what="the upgrade baking",
    )
    assert "svc:api:2" in service_actor_names()
    _kill_registry()
    # Ray retries the call on the restarted registry; the id makes it report, not re-run.
    assert ray.get(pending, timeout=120)["outcome"] == "rolled_back"
    wait_for(
        lambda: (
            service(registry, "api")["state"] == "healthy"
            and sorted(service_actor_names()) == ["svc:api:1", "svc:api:1.1"]
        ),
        what="old version alone and healthy",
    )
    handle = registry.get_service_sync("api")
    assert {ray.get(handle.work.remote(i))["version"] for i in range(6)} == {1}
    [row] = history_since(registry, "api", began)
    assert row["outcome"] == "rolled_back" and "before the commit" in row["reason"]
    assert _kv.get("registry/rollout/api") is None


def test_registry_sigkill_after_the_commit_keeps_the_new_version(registry: Registry) -> None:
    began = time.time()
    registry.register_app_sync([v("api", 1)])
    registry.start_all_sync(timeout_s=60)
    blue = registry.get_service_sync("api")
    slow = blue.work.remote("slow", 120.0)  # holds blue's drain open after the commit
    pending = registry.actor.upgrade.remote(
        "api", v("api", 2).to_json(), 0.2, f"after-{time.time_ns()}"
    )
    wait_for(
        lambda: (_kv.get("registry/rollout/api") or {}).get("phase") == "committed",
        what="the upgrade committed and draining blue",
    )
    _kill_registry()
    assert ray.get(pending, timeout=120)["outcome"] == "done"
    wait_for(
        lambda: (
            service(registry, "api")["generation"] == 2
            and service(registry, "api")["state"] == "healthy"
            and service_actor_names() == ["svc:api:2"]
        ),
        what="new version alone and healthy",
    )
    del slow
    handle = registry.get_service_sync("api")
    assert ray.get(handle.work.remote(0))["version"] == 2
    [row] = history_since(registry, "api", began)
    assert row["outcome"] == "done" and "after the commit" in row["reason"]
    spec = next(s for s in registry.list_services_sync() if s["name"] == "api")
    assert spec["generation"] == 2
