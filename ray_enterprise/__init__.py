"""ray_enterprise: run a fleet of long-lived services on Ray as one supervised system.

The public API is what ``__all__`` lists; every other module may change. Internals a user
never needs to name (the dependency graph, the routing enum: a spec says ``routing:
least_loaded``) stay importable from their modules but are not part of it.

Names are loaded on first use (PEP 562): a service worker that only needs ``Service`` must not
pay for SQLAlchemy, the OpenTelemetry SDK or the HTTP stack, which the registry, the
observability platform and the management API pull in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray_enterprise.config.client import (
        ConfigOrchestrator,
        load_enterprise_configuration,
        start_configuration_watching,
    )
    from ray_enterprise.errors import (
        DependencyCycleError,
        DependencyError,
        NotConnectedError,
        RayEnterpriseError,
        ServiceNotFoundError,
        ServiceUnavailableError,
        SpecError,
        UnknownDependencyError,
    )
    from ray_enterprise.observability.metric_batch import MetricType
    from ray_enterprise.observability.metrics import (
        counter,
        gauge,
        histogram,
        record_metric,
        timer,
    )
    from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform
    from ray_enterprise.observability.tracing import TraceStatus, finish_span, start_trace
    from ray_enterprise.registry.client import EnterpriseServiceRegistry
    from ray_enterprise.registry.handle import ServiceHandle
    from ray_enterprise.registry.rollout import DeploymentError
    from ray_enterprise.registry.supervision import ServiceState
    from ray_enterprise.runtime import System, connect, shutdown_system
    from ray_enterprise.service import Health, Service
    from ray_enterprise.spec import (
        AppSpec,
        AutoShutdown,
        Criticality,
        RestartPolicy,
        ServiceSpec,
        Strategy,
        load_app_spec,
        parse_app_spec,
    )

from ray_enterprise.redaction import install_log_redaction

__version__ = "0.1.0"

# Every process that imports the package (drivers, actors, replicas) logs redacted.
install_log_redaction()

#: Public name -> the module that defines it, imported when the name is first read.
_LAZY: dict[str, str] = {
    "AppSpec": "ray_enterprise.spec",
    "AutoShutdown": "ray_enterprise.spec",
    "ConfigOrchestrator": "ray_enterprise.config.client",
    "Criticality": "ray_enterprise.spec",
    "DependencyCycleError": "ray_enterprise.errors",
    "DependencyError": "ray_enterprise.errors",
    "DependencyGraph": "ray_enterprise.registry.graph",
    "DeploymentError": "ray_enterprise.registry.rollout",
    "EnterpriseObservabilityPlatform": "ray_enterprise.observability.platform",
    "EnterpriseServiceRegistry": "ray_enterprise.registry.client",
    "Health": "ray_enterprise.service",
    "MetricType": "ray_enterprise.observability.metric_batch",
    "NotConnectedError": "ray_enterprise.errors",
    "RayEnterpriseError": "ray_enterprise.errors",
    "RestartPolicy": "ray_enterprise.spec",
    "Routing": "ray_enterprise.registry.routing",
    "Service": "ray_enterprise.service",
    "ServiceHandle": "ray_enterprise.registry.handle",
    "ServiceNotFoundError": "ray_enterprise.errors",
    "ServiceUnavailableError": "ray_enterprise.errors",
    "ServiceSpec": "ray_enterprise.spec",
    "ServiceState": "ray_enterprise.registry.supervision",
    "SpecError": "ray_enterprise.errors",
    "Strategy": "ray_enterprise.spec",
    "System": "ray_enterprise.runtime",
    "TraceStatus": "ray_enterprise.observability.tracing",
    "UnknownDependencyError": "ray_enterprise.errors",
    "connect": "ray_enterprise.runtime",
    "counter": "ray_enterprise.observability.metrics",
    "finish_span": "ray_enterprise.observability.tracing",
    "gauge": "ray_enterprise.observability.metrics",
    "histogram": "ray_enterprise.observability.metrics",
    "load_enterprise_configuration": "ray_enterprise.config.client",
    "load_app_spec": "ray_enterprise.spec",
    "parse_app_spec": "ray_enterprise.spec",
    "record_metric": "ray_enterprise.observability.metrics",
    "shutdown_system": "ray_enterprise.runtime",
    "start_configuration_watching": "ray_enterprise.config.client",
    "start_trace": "ray_enterprise.observability.tracing",
    "timer": "ray_enterprise.observability.metrics",
}

__all__ = [
    "AppSpec",
    "AutoShutdown",
    "ConfigOrchestrator",
    "Criticality",
    "DependencyCycleError",
    "DependencyError",
    "DeploymentError",
    "EnterpriseObservabilityPlatform",
    "EnterpriseServiceRegistry",
    "Health",
    "MetricType",
    "NotConnectedError",
    "RayEnterpriseError",
    "RestartPolicy",
    "Service",
    "ServiceHandle",
    "ServiceNotFoundError",
    "ServiceSpec",
    "ServiceState",
    "ServiceUnavailableError",
    "SpecError",
    "Strategy",
    "System",
    "TraceStatus",
    "UnknownDependencyError",
    "__version__",
    "connect",
    "counter",
    "finish_span",
    "gauge",
    "histogram",
    "load_app_spec",
    "load_enterprise_configuration",
    "parse_app_spec",
    "record_metric",
    "shutdown_system",
    "start_configuration_watching",
    "start_trace",
    "timer",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ray_enterprise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
