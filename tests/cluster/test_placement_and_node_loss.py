"""Services on a 3-node cluster: spread, node loss, recovery elsewhere in dependency order."""

from __future__ import annotations

import time

import ray
from ray.cluster_utils import Cluster

import ray_enterprise
from ray_enterprise.testing import kill_node
from tests.integration.helpers import faulty, states
from tests.support import wait_for


def alive_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def head_node_id(cluster: Cluster) -> str:
    return str(cluster.head_node.node_id)


def test_services_spread_and_come_back_elsewhere_after_node_loss(
    cluster: Cluster, cluster_registry: ray_enterprise.EnterpriseServiceRegistry
) -> None:
    registry = cluster_registry
    specs = [faulty("db")]
    specs += [faulty(f"mid{i}", "db") for i in range(4)]
    specs += [faulty(f"top{i}", f"mid{i}") for i in range(4)]
    registry.register_app_sync(specs)
    status = registry.start_all_sync(timeout_s=180)
    assert status["status"] == "healthy", status["reasons"]
    placed = {s["name"]: s["node_id"] for s in status["services"]}
    assert len(set(placed.values())) == 3, placed  # spread over every node

    # The registry lives on the head node, so losing a worker node never takes it down.
    reg_node = ray.get(
        registry.actor.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
    )
    assert reg_node == head_node_id(cluster)

    victim_node = next(n for n in cluster.worker_nodes if n.node_id in set(placed.values()))
    lost = sorted(name for name, node in placed.items() if node == victim_node.node_id)
    began = time.monotonic()
    kill_node(cluster, victim_node)

    def recovered() -> bool:
        now = registry.get_system_status_sync()
        return now["status"] == "healthy" and all(
            s["node_id"] != victim_node.node_id for s in now["services"]
        )

    wait_for(recovered, timeout=60, interval=0.1, what="every service healthy off the lost node")
    elapsed = time.monotonic() - began
    print(f"node loss -> all healthy: {elapsed:.2f} s for {len(lost)} moved services")

    final = registry.get_system_status_sync()
    assert set(states(registry).values()) == {"healthy"}
    moved = {m["service"]: m for m in final["moves"]}
    assert set(lost) <= set(moved), (lost, final["moves"])
    for name in lost:
        assert moved[name]["from_node"] == victim_node.node_id
        assert moved[name]["to_node"] in alive_nodes()
        assert moved[name]["reason"]
    # Dependents of a moved service were told and recovered: everything is on live nodes.
    assert {s["node_id"] for s in final["services"]} <= alive_nodes()

    # A node that joins takes new services again.
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
