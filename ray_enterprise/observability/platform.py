"""The observability facade of the design summary, and booting the observability actors.

``EnterpriseObservabilityPlatform`` is what a driver, a job or a service holds: recording and
tracing are local (buffer appends), queries go to the central actor. ``boot_observability()``
creates the central actor and one collector per alive node; both are idempotent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import ray

from ray_enterprise.config.schema import ObservabilityFrameworkConfig
from ray_enterprise.errors import NotConnectedError, RayEnterpriseError
from ray_enterprise.observability import metrics, tracing
from ray_enterprise.observability.central import ObservabilityActor
from ray_enterprise.observability.collector import (
    CENTRAL_NAME,
    NAMESPACE,
    ensure_collectors,
    flush_node_collector,
)
from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.otlp import publish_export_settings
from ray_enterprise.observability.tracing import SpanRecord, TraceSpan, TraceStatus
from ray_enterprise.system_actors import get_system_actor


def get_observability_handle(*, create: bool = False, prometheus_port: int | None = None) -> Any:
    """The central observability actor; with ``create``, booted (with collectors) if missing."""
    try:
        return ray.get_actor(CENTRAL_NAME, namespace=NAMESPACE)
    except ValueError:
        if not create:
            raise NotConnectedError(
                "no observability actor runs on this Ray cluster; call "
                "ray_enterprise.observability.platform.boot_observability() first"
            ) from None
    return boot_observability(prometheus_port=prometheus_port)


SHARDS_ENV = "RAY_ENTERPRISE_ANOMALY_SHARDS"


def shard_setting(text: str) -> int | str:
    """``"auto"`` or a count of anomaly shards, from text (an environment variable)."""
    value = text.strip().lower()
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise RayEnterpriseError(f"{SHARDS_ENV}={text!r}: use 'auto' or a count >= 0")
    return count


def observability_section(timeout_s: float = 30.0) -> ObservabilityFrameworkConfig:
    """The running config's ``observability`` section; the schema's defaults when no
    ConfigActor runs (a bare ``boot_observability`` in a script or a test)."""
    from ray_enterprise.config.actor import get_config_handle

    try:
        handle = get_config_handle(create=False)
    except ValueError:
        return ObservabilityFrameworkConfig()
    section: ObservabilityFrameworkConfig = ray.get(
        handle.get.remote("observability"), timeout=timeout_s
    )
    return section


def central_options(section: ObservabilityFrameworkConfig) -> dict[str, Any]:
    """The central actor's constructor arguments that come from the config section."""
    return {
        "prometheus_enabled": section.prometheus_enabled,
        "prometheus_host": section.prometheus_host,
        "prometheus_port": section.prometheus_port,
        "cardinality_limit": section.cardinality_limit,
        "capacity": section.series_capacity,
        "mirror_to_ray": section.mirror_to_ray_metrics,
    }


def boot_observability(
    *,
    prometheus_port: int | None = None,
    mirror_to_ray: bool | None = None,
    anomaly_shards: int | str | None = None,
    forward_interval_s: float = 0.5,
    timeout_s: float = 60.0,
    section: ObservabilityFrameworkConfig | None = None,
) -> Any:
    """Create (or find) the central actor and a collector on every alive node.

    The central actor takes its settings from ``section`` (default: the running config's
    ``observability`` section, see :func:`observability_section`) when this call creates it;
    ``prometheus_port`` and ``mirror_to_ray`` override theirs. ``anomaly_shards``
    (``"auto"``: one ``anomaly:<i>`` shard actor per node, growing as nodes join; a number:
    that many; 0: none; default ``$RAY_ENTERPRISE_ANOMALY_SHARDS``, else ``"auto"``) feeds
    every series to them and takes the health score's anomaly rate from them.
    """
    if anomaly_shards is None:
        anomaly_shards = shard_setting(os.environ.get(SHARDS_ENV, "auto"))
    try:  # running already: its settings stay
        handle = ray.get_actor(CENTRAL_NAME, namespace=NAMESPACE)
    except ValueError:
        section = section or observability_section()
        publish_export_settings(section)  # where every process sends its spans (OTLP)
        options = central_options(section)
        if prometheus_port is not None:
            options["prometheus_port"] = prometheus_port
        if mirror_to_ray is not None:
            options["mirror_to_ray"] = mirror_to_ray
        handle = get_system_actor(
            CENTRAL_NAME,
            ObservabilityActor,
            create=True,
            kwargs={**options, "anomaly_shards": anomaly_shards},
            timeout_s=timeout_s,
        )
    ensure_collectors(forward_interval_s=forward_interval_s, timeout_s=timeout_s)
    return handle


def flush_all(timeout_s: float = 30.0) -> None:
    """Push this process's metrics and spans through its node's collector to the central actor.

    For tests and orderly shutdown; the background flush does the same every interval.
    """
    metrics.flush()
    tracing.flush_spans()
    flush_node_collector(timeout_s)


class EnterpriseObservabilityPlatform:
    """Metrics, traces and the health score behind the design summary's calls."""

    def __init__(self, handle: Any = None, recorder: metrics.Recorder | None = None) -> None:
        self._handle = handle
        self._recorder = recorder or metrics.default_recorder()

    @property
    def handle(self) -> Any:
        if self._handle is None:
            self._handle = get_observability_handle(create=False)
        return self._handle

    # -- metrics (local appends) ----------------------------------------------------------

    def record_metric(
        self,
        name: str,
        value: float,
        metric_type: MetricType | str = MetricType.GAUGE,
        tags: Mapping[str, str] | None = None,
        service_name: str | None = None,
    ) -> bool:
        """Buffer one point; ``False`` when refused (counted and reported centrally)."""
        return self._recorder.record(name, value, metric_type, tags, service_name)

    def counter(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> metrics.Counter:
        return self._recorder.counter(name, tags, service_name)

    def gauge(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> metrics.Gauge:
        return self._recorder.gauge(name, tags, service_name)

    def histogram(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> metrics.Histogram:
        return self._recorder.histogram(name, tags, service_name)

    def timer(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> metrics.Timer:
        return self._recorder.timer(name, tags, service_name)

    # -- tracing (local) ------------------------------------------------------------------

    def start_trace(self, name: str, service: str) -> TraceSpan:
        return tracing.start_trace(name, service)

    def finish_span(
        self, span: TraceSpan, status: TraceStatus = TraceStatus.SUCCESS, error: str | None = None
    ) -> None:
        tracing.finish_span(span, status, error)

    # -- queries (central actor) ----------------------------------------------------------

    def get_system_health(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """Score 0-100, status and reasons; from a driver or a sync actor (it blocks)."""
        return dict(ray.get(self.handle.get_system_health.remote(), timeout=timeout_s))

    async def get_system_health_async(self) -> dict[str, Any]:
        """The same from an async actor or a coroutine, without blocking its loop."""
        return dict(await self.handle.get_system_health.remote())

    def get_metric_stats(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        service_name: str | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any] | None:
        labels = dict(tags or {})
        if service_name:
            labels["service"] = service_name
        return ray.get(self.handle.stats.remote(name, labels), timeout=timeout_s)

    def get_trace(self, trace_id: str, timeout_s: float = 30.0) -> list[SpanRecord]:
        return list(ray.get(self.handle.get_trace.remote(trace_id), timeout=timeout_s))

    def get_dependency_map(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        return list(ray.get(self.handle.dependency_map.remote(), timeout=timeout_s))

    def get_operation_latencies(self, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        return list(ray.get(self.handle.operations.remote(), timeout=timeout_s))

    def prometheus_address(self, timeout_s: float = 30.0) -> tuple[str, int]:
        """Where ``/metrics`` is served; raises when ``prometheus_enabled`` is off."""
        address = ray.get(self.handle.prometheus_address.remote(), timeout=timeout_s)
        if address is None:
            raise RayEnterpriseError(
                "the central observability actor serves no /metrics: "
                "observability.prometheus_enabled is false"
            )
        host, port = address
        return str(host), int(port)

    def flush(self, timeout_s: float = 30.0) -> None:
        flush_all(timeout_s)

    def wait_for_points(
        self, name: str, labels: Mapping[str, str], count: int, timeout_s: float = 30.0
    ) -> dict[str, Any]:
        """Block until the central store holds ``count`` points of a series (tests, demos)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = ray.get(self.handle.stats.remote(name, dict(labels)), timeout=timeout_s)
            if found is not None and found["total_count"] >= count:
                return dict(found)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}{dict(labels)} has {found} after {timeout_s} s")
            time.sleep(0.05)
