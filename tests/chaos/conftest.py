"""A 3-node ray.cluster_utils.Cluster of the chaos soak's own (it removes and adds nodes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import ray
from ray.cluster_utils import Cluster

import ray_enterprise
from ray_enterprise.runtime import init_ray


@pytest.fixture(scope="package")
def chaos_cluster() -> Iterator[Cluster]:
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    init_ray(cluster.address)
    yield cluster
    ray_enterprise.shutdown_system()
    ray.shutdown()
    cluster.shutdown()
