"""What ``connect()`` hands out on a real Ray: one client per part, one sync/async convention."""

from __future__ import annotations

import asyncio

import ray

import ray_enterprise
from ray_enterprise.alerts.manager_client import AlertManagerClient


def test_connect_returns_a_client_per_part_with_async_methods_and_sync_twins(
    registry: ray_enterprise.EnterpriseServiceRegistry,
) -> None:
    system = ray_enterprise.connect()
    assert isinstance(system.config, ray_enterprise.ConfigOrchestrator)
    alerts = system.alerts
    assert isinstance(alerts, AlertManagerClient)
    assert isinstance(alerts.alerts_sync(service="no-such-service"), list)
    assert asyncio.run(alerts.silences()) == alerts.silences_sync()
    # What the client does not wrap is reached as on the actor handle.
    assert isinstance(ray.get(alerts.settings.remote()), dict)
    assert system.registry.get_system_status_sync()["services"] == []
