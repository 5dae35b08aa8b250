"""ray_enterprise: run a fleet of long-lived services on Ray as one supervised system.

The public API is what ``__all__`` lists; every other module may change. Internals a user
never needs to name (the dependency graph, the routing enum: a spec says ``routing:
least_loaded``) stay importable from their modules but are not part of it.
"""

from __future__ import annotations

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
from ray_enterprise.observability.metrics import counter, gauge, histogram, record_metric, timer
from ray_enterprise.observability.platform import EnterpriseObservabilityPlatform
from ray_enterprise.observability.tracing import TraceStatus, finish_span, start_trace
from ray_enterprise.redaction import install_log_redaction
from ray_enterprise.registry.client import EnterpriseServiceRegistry
from ray_enterprise.registry.handle import ServiceHandle
from ray_enterprise.registry.rollout import DeploymentError
from ray_enterprise.registry.supervision import ServiceState
from ray_enterprise.runtime import System, connect, shutdown_system
from ray_enterprise.service import Health, Service
from ray_enterprise.spec import (
    AppSpec,
    Criticality,
    RestartPolicy,
    ServiceSpec,
    Strategy,
    load_app_spec,
    parse_app_spec,
)

__version__ = "0.1.0"

# Every process that imports the package (drivers, actors, replicas) logs redacted.
install_log_redaction()

__all__ = [
    "AppSpec",
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
