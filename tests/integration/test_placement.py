"""``actor.max_replicas_per_node`` (Ray Serve's option) on the shared single-node Ray: the
replica that has no node with room stays pending, as in Serve; no actor is made for it."""

from __future__ import annotations

import ray

import ray_enterprise
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty, service
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def test_with_one_replica_per_node_the_second_replica_stays_pending(registry: Registry) -> None:
    spec = faulty("solo", replicas=2, actor={"max_replicas_per_node": 1})
    registry.register_app_sync([spec])
    assert registry.start_all_sync(timeout_s=60)["status"] == "healthy"
    wait_for(
        lambda: service(registry, "solo")["pending"] == ["svc:solo:1.1"],
        what="the second replica pending",
    )
    info = service(registry, "solo")
    assert (info["replicas"], info["desired_replicas"]) == (1, 2)
    assert service_actor_names() == ["svc:solo:1"]
    handle = registry.get_service_sync("solo")
    assert ray.get(handle.work.remote(1))["value"] == 1  # the placed one serves
    # Scaling down to what fits takes the pending one away first.
    registry.scale_sync("solo", 1)
    wait_for(lambda: service(registry, "solo")["pending"] == [], what="pending replica gone")
    assert service_actor_names() == ["svc:solo:1"]
