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
from ray_enterprise.runtime import registry_actor
from ray_enterprise.testing import local_cluster


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    with local_cluster(nodes=3) as running:
        yield running


@pytest.fixture
def cluster_registry(cluster: Cluster) -> Iterator[ray_enterprise.EnterpriseServiceRegistry]:
    system = ray_enterprise.connect()
    yield system.registry
    handle: Any = registry_actor(create=True)
    ray.get(handle.forget.remote(), timeout=120)
