"""Readiness beside liveness (Kubernetes probes) on a real local Ray: a replica that says not
ready takes no calls through the ServiceHandle and is not restarted. No mocks."""

from __future__ import annotations

import ray

import ray_enterprise
from ray_enterprise import _kv
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def test_a_not_ready_replica_takes_no_calls_and_is_not_restarted(registry: Registry) -> None:
    spec = faulty("ready", replicas=2, health={"success_threshold": 2})
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=60)
    wait_for(lambda: service(registry, "ready")["replicas"] == 2, what="2 replicas routed")
    shy = ray.get_actor("svc:ready:1.1", namespace=_kv.NAMESPACE)
    shy_pid = ray.get(shy.pid.remote())
    ray.get(shy.set_ready.remote(False))
    wait_for(
        lambda: service(registry, "ready")["not_ready"] == ["svc:ready:1.1"],
        what="the replica shown not ready",
    )
    info = service(registry, "ready")
    assert info["replicas"] == 1 and info["state"] == "healthy"
    handle = registry.get_service_sync("ready")
    # The handle re-reads the routes within their TTL: then every call goes to the other one.
    wait_for(
        lambda: all(ray.get(handle.work.remote(i))["pid"] != shy_pid for i in range(10)),
        what="calls only to the ready replica",
    )
    # Not ready for many health checks (far past failure_threshold=2): never restarted.
    checks = ray.get(shy.stats.remote())["checks"]
    wait_for(lambda: ray.get(shy.stats.remote())["checks"] >= checks + 5, what="5 more checks")
    assert ray.get(shy.pid.remote()) == shy_pid
    assert service(registry, "ready")["restarts"] == 0
    ray.get(shy.set_ready.remote(True))
    wait_for(lambda: service(registry, "ready")["replicas"] == 2, what="back in the routes")
    assert service(registry, "ready")["not_ready"] == []
    wait_for(
        lambda: shy_pid in {ray.get(handle.work.remote(i))["pid"] for i in range(10)},
        what="calls reach it again",
    )
    assert service(registry, "ready")["generation"] == 1
