"""What ``ray_enterprise`` exports: the seed's names and what ``connect()`` hands out."""

from __future__ import annotations

import inspect
import typing

import pytest

import ray_enterprise
from ray_enterprise.alerts.manager_client import AlertManagerClient
from ray_enterprise.errors import RayEnterpriseError
from ray_enterprise.runtime import System

SEED_NAMES = {
    "EnterpriseServiceRegistry",
    "EnterpriseObservabilityPlatform",
    "ConfigOrchestrator",
    "MetricType",
    "TraceStatus",
    "record_metric",
    "start_trace",
    "finish_span",
    "load_enterprise_configuration",
    "start_configuration_watching",
}


def test_the_seed_names_and_every_client_connect_returns_are_exported() -> None:
    assert set(ray_enterprise.__all__) >= SEED_NAMES
    hints = typing.get_type_hints(
        System, {**vars(ray_enterprise), "AlertManagerClient": AlertManagerClient}
    )
    assert hints["registry"] is ray_enterprise.EnterpriseServiceRegistry
    assert hints["config"] == ray_enterprise.ConfigOrchestrator | None
    assert hints["observability"] == ray_enterprise.EnterpriseObservabilityPlatform | None
    assert hints["alerts"] == AlertManagerClient | None


@pytest.mark.parametrize(
    "client",
    [
        ray_enterprise.EnterpriseServiceRegistry,
        ray_enterprise.ConfigOrchestrator,
        AlertManagerClient,
    ],
)
def test_every_client_coroutine_has_a_sync_twin_taking_the_same_arguments(client: type) -> None:
    coroutines = {
        name: fn
        for name, fn in vars(client).items()
        if inspect.iscoroutinefunction(fn) and not name.startswith("_")
    }
    assert coroutines
    for name, fn in coroutines.items():
        twin = getattr(client, f"{name}_sync", None)
        assert twin is not None and not inspect.iscoroutinefunction(twin), name
        params = list(inspect.signature(fn).parameters)
        assert list(inspect.signature(twin).parameters)[: len(params)] == params or name in (
            "register_service"  # the twin takes the same keywords through **kwargs
        ), name


def test_internals_stay_out_of_all_but_importable_from_their_modules() -> None:
    from ray_enterprise.registry.graph import DependencyGraph  # noqa: F401
    from ray_enterprise.registry.routing import Routing  # noqa: F401

    assert {"DependencyGraph", "Routing"}.isdisjoint(ray_enterprise.__all__)


def test_service_unavailable_is_public_and_names_its_service() -> None:
    error = ray_enterprise.ServiceUnavailableError("no replica", service="api")
    assert isinstance(error, RayEnterpriseError)
    assert error.service == "api"
