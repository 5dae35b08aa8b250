"""A 3-node ray.cluster_utils.Cluster of the chaos soak's own (it removes and adds nodes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ray.cluster_utils import Cluster

from ray_enterprise.testing import local_cluster


@pytest.fixture(scope="package")
def chaos_cluster() -> Iterator[Cluster]:
    with local_cluster(nodes=3) as cluster:
        yield cluster
