"""Spans to an OTLP endpoint from every process, each with its service as ``service.name``.

``observability.otlp_endpoint`` and ``otlp_protocol`` are published to the GCS key-value store
when the observability actors boot (:func:`publish_export_settings`). Every process that
traces reads them there, on its export thread, so no caller waits on it and a change reaches
running processes within :data:`SETTINGS_TTL_S`:

* Ray's tracing startup hook (``ray start --tracing-startup-hook=`` :data:`HOOK`, or
  ``ray.init(_tracing_startup_hook=HOOK)``) runs :func:`setup_tracing` in every worker as it
  connects, so Ray's own spans of every task and actor call (system actors included) are
  exported too;
* without the hook, a process that uses the tracing facade (drivers, services) exports its own
  spans all the same (:func:`tracing.configure_tracing` calls :func:`install_exporter`).

OpenTelemetry fixes the resource per tracer provider, one per process, but a process here
holds spans of several services (a driver calls many), so each span is exported under a
resource naming its own service: its ``service.name`` attribute, else the process's named
actor (``registry``, ``config``...), else ``OTEL_SERVICE_NAME``, else ``ray_enterprise``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ray_enterprise.observability import process_settings

logger = logging.getLogger("ray_enterprise.tracing")

HOOK = "ray_enterprise.observability.otlp:setup_tracing"
SETTINGS_TTL_S = 2.0
DEFAULT_SERVICE = "ray_enterprise"
_SERVICE_ATTR = "service.name"


def publish_export_settings(section: Any) -> None:
    """Tell every process where spans go (``None`` endpoint: nowhere but the collector)."""
    process_settings.publish(section)


def read_export_settings() -> dict[str, Any]:
    return process_settings.read()


def make_exporter(endpoint: str, protocol: str) -> SpanExporter:
    """An OTLP span exporter: ``http/protobuf`` (``/v1/traces`` appended to a bare host:port
    URL) or ``grpc`` (plaintext for an ``http://`` endpoint)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        insecure = endpoint.startswith("http://")
        return GrpcExporter(endpoint=endpoint, insecure=insecure)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    path = endpoint.split("://", 1)[-1]
    url = endpoint if "/" in path else endpoint.rstrip("/") + "/v1/traces"
    return HttpExporter(endpoint=url)


def process_service() -> str:
    """The service a span without its own ``service.name`` belongs to: this process's."""
    try:
        import ray

        name = ray.get_runtime_context().get_actor_name() if ray.is_initialized() else None
    except Exception:
        name = None
    return name or os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE


class SettingsExporter(SpanExporter):
    """Exports to whatever endpoint the published settings name, following their changes;
    spans are dropped (they still reach the platform's collector) while none is set."""

    def __init__(self, read: Any = read_export_settings, ttl_s: float = SETTINGS_TTL_S) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._checked = -float("inf")
        self._target: tuple[str, str] | None = None
        self._exporter: SpanExporter | None = None
        self._resources: dict[str, Resource] = {}

    def _current(self) -> SpanExporter | None:
        now = time.monotonic()
        if now - self._checked < self._ttl_s:
            return self._exporter
        self._checked = now
        settings = self._read()
        endpoint = settings.get("otlp_endpoint")
        protocol = str(settings.get("otlp_protocol") or "http/protobuf")
        target = (str(endpoint), protocol) if endpoint else None
        if target != self._target:
            if self._exporter is not None:
                self._exporter.shutdown()
            self._exporter, self._target = None, target
            if target:
                try:
                    self._exporter = make_exporter(*target)
                    logger.info("exporting spans over OTLP %s to %s", protocol, endpoint)
                except ImportError as exc:  # said once per change of settings, not per batch
                    logger.error(
                        "observability.otlp_endpoint is set, but the OTLP exporter for %s "
                        "is not installed (%s): pip install 'ray_enterprise[otlp]'",
                        protocol,
                        exc,
                    )
        return self._exporter

    def _resource(self, service: str) -> Resource:
        found = self._resources.get(service)
        if found is None:
            found = self._resources[service] = Resource.create({_SERVICE_ATTR: service})
        return found

    def _with_resource(self, span: ReadableSpan) -> ReadableSpan:
        attributes = span.attributes or {}
        service = str(attributes.get(_SERVICE_ATTR) or process_service())
        return ReadableSpan(
            name=span.name,
            context=span.get_span_context(),
            parent=span.parent,
            resource=self._resource(service),
            attributes=span.attributes,
            events=span.events,
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        exporter = self._current()
        if exporter is None:
            return SpanExportResult.SUCCESS
        return exporter.export([self._with_resource(s) for s in spans])

    def shutdown(self) -> None:
        if self._exporter is not None:
            self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_installed: set[int] = set()
_lock = threading.Lock()


def install_exporter(provider: TracerProvider) -> None:
    """Add the settings-following OTLP export to ``provider`` once (idempotent)."""
    with _lock:
        if id(provider) in _installed:
            return
        _installed.add(id(provider))
    provider.add_span_processor(BatchSpanProcessor(SettingsExporter(), schedule_delay_millis=500))


def setup_tracing() -> None:
    """Ray's tracing startup hook: every worker gets the platform's tracer provider (spans to
    the collector) and the OTLP export, before any task or actor runs in it."""
    from ray_enterprise.observability.tracing import configure_tracing

    configure_tracing()
