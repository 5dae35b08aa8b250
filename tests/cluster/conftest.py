"""A real 3-node Ray cluster on this machine (ray.cluster_utils.Cluster), for this package only.

The package-scoped fixture shuts the cluster down before the integration tests start their own
single-node Ray: one process can be connected to one Ray at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

import ray_enterprise
from ray_enterprise.runtime import init_ray, loopback_only, registry_actor


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    if ray.is_initialized():
        ray.shutdown()
    with loopback_only():  # every node, and those tests add later, on 127.0.0.1
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


@pytest.fixture
def cluster_registry(cluster: Cluster) -> Iterator[ray_enterprise.EnterpriseServiceRegistry]:
    system = ray_enterprise.connect()
    yield system.registry
    handle: Any = registry_actor(create=True)
    ray.get(handle.forget.remote(), timeout=120)
