"""Metrics on a 3-node cluster: one collector per node, exact counts from every node."""

from __future__ import annotations

import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise.observability import metrics
from ray_enterprise.observability.collector import NAMESPACE, collector_name
from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.platform import boot_observability
from tests.integration.helpers import wait_for


@ray.remote(num_cpus=0)
class NodeRecorder:
    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def count(self, n: int) -> None:
        for _ in range(n):
            metrics.record_metric("cluster_hits", 1, MetricType.COUNTER, None, "fleet")

    def collector_node(self) -> str:
        """The node of the collector this process ships to: its own."""
        node = ray.get_runtime_context().get_node_id()
        handle = ray.get_actor(collector_name(node), namespace=NAMESPACE)
        return str(ray.get(handle.ping.remote()))


def test_every_node_has_a_collector_and_counts_from_all_nodes_are_exact(
    cluster: Cluster,
) -> None:
    central = boot_observability()
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 3
    recorders = [
        NodeRecorder.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
        ).remote()
        for node in nodes
        for _ in range(2)
    ]
    assert sorted(ray.get([r.node.remote() for r in recorders])) == sorted(nodes * 2)
    assert sorted(ray.get([r.collector_node.remote() for r in recorders])) == sorted(nodes * 2)
    ray.get([r.count.remote(5000) for r in recorders])

    def total() -> float:
        found = ray.get(central.stats.remote("cluster_hits", {"service": "fleet"}))
        return float(found["total_sum"]) if found else 0.0

    wait_for(lambda: total() == 30_000.0, timeout=30, what="30000 increments from 3 nodes")
    for r in recorders:
        ray.kill(r)
