"""One real local Ray for the whole session, shared by every integration test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray

import ray_enterprise
from ray_enterprise.registry.actor import SERVICE_PREFIX
from ray_enterprise.runtime import init_ray, registry_actor


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    init_ray("local", num_cpus=2)
    yield
    ray_enterprise.shutdown_system()
    ray.shutdown()


def service_actor_names() -> list[str]:
    return sorted(n for n in ray.util.list_named_actors() if n.startswith(SERVICE_PREFIX))


@pytest.fixture
def registry(ray_session: None) -> Iterator[ray_enterprise.EnterpriseServiceRegistry]:
    """A registry with no services; everything a test registered is stopped and erased after."""
    system = ray_enterprise.connect()
    yield system.registry
    handle: Any = registry_actor(create=True)  # a test may have taken it down
    ray.get(handle.forget.remote(), timeout=120)
    leftovers = service_actor_names()
    assert leftovers == [], f"service actors left behind: {leftovers}"
