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


@pytest.fixture
def own_config_and_alerts(ray_session: None, tmp_path: Any) -> Iterator[tuple[Any, Any]]:
    """A ConfigActor and an alert actor of this test's own (alerts routed nowhere), on SQLite
    files in tmp_path; both removed afterwards, so the next ``connect()`` makes fresh ones."""
    from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
    from ray_enterprise.config.actor import get_config_handle, remove_config_actor
    from ray_enterprise.config.settings import ConfigSettings

    remove_alert_actor()
    remove_config_actor()
    config = get_config_handle(
        create=True, settings=ConfigSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}")
    )
    alerts = get_alert_handle(
        create=True,
        settings={"db_url": f"sqlite:///{tmp_path / 'a.db'}", "route": {"handlers": []}},
    )
    yield config, alerts
    remove_alert_actor()
    remove_config_actor()
