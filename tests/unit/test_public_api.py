"""What ``ray_enterprise`` exports: the seed's names and what ``connect()`` hands out."""

from __future__ import annotations

import typing

from ray.actor import ActorHandle

import ray_enterprise
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
    hints = typing.get_type_hints(System, {**vars(ray_enterprise), "ActorHandle": ActorHandle})
    assert hints["registry"] is ray_enterprise.EnterpriseServiceRegistry
    assert hints["config"] == ray_enterprise.ConfigOrchestrator | None
    assert hints["observability"] == ray_enterprise.EnterpriseObservabilityPlatform | None


def test_internals_stay_out_of_all_but_importable_from_their_modules() -> None:
    from ray_enterprise.registry.graph import DependencyGraph  # noqa: F401
    from ray_enterprise.registry.routing import Routing  # noqa: F401

    assert {"DependencyGraph", "Routing"}.isdisjoint(ray_enterprise.__all__)


def test_service_unavailable_is_public_and_names_its_service() -> None:
    error = ray_enterprise.ServiceUnavailableError("no replica", service="api")
    assert isinstance(error, RayEnterpriseError)
    assert error.service == "api"
