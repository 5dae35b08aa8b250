"""The OTLP export follows the published settings and names each span's service."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from ray_enterprise.observability import otlp
from ray_enterprise.observability.otlp import SettingsExporter, make_exporter

HTTP = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def finished(*services: str | None) -> list[ReadableSpan]:
    kept = Kept()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    for service in services:
        attrs = {"service.name": service} if service else {}
        provider.get_tracer("t").start_span("op", attributes=attrs).end()
    return kept.spans


def test_each_span_is_exported_under_its_own_service_and_settings_are_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings: dict[str, Any] = {}
    sent = Kept()
    monkeypatch.setattr(otlp, "make_exporter", lambda endpoint, protocol: sent)
    exporter = SettingsExporter(read=lambda: settings, ttl_s=0.0)
    assert exporter.export(finished("api")) is SpanExportResult.SUCCESS
    assert sent.spans == []  # no endpoint: dropped
    settings.update(otlp_endpoint="http://127.0.0.1:4318", otlp_protocol="http/protobuf")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-driver")
    exporter.export(finished("api", None))
    names = [s.resource.attributes["service.name"] for s in sent.spans]
    assert names == ["api", "my-driver"]


def test_the_http_exporter_gets_the_traces_path_and_grpc_goes_plaintext_on_http() -> None:
    http = make_exporter("http://127.0.0.1:4318", "http/protobuf")
    assert http._endpoint == "http://127.0.0.1:4318/v1/traces"  # type: ignore[attr-defined]
    grpc = make_exporter("http://127.0.0.1:4317", "grpc")
    assert type(grpc).__module__.endswith("grpc.trace_exporter")


def test_a_missing_exporter_package_is_logged_once_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, HTTP, None)  # import now fails for real
    settings = {"otlp_endpoint": "http://127.0.0.1:4318", "otlp_protocol": "http/protobuf"}
    exporter = SettingsExporter(read=lambda: settings, ttl_s=0.0)
    with caplog.at_level(logging.ERROR, logger="ray_enterprise.tracing"):
        exporter.export(finished("api"))
        exporter.export(finished("api"))
    [record] = [r for r in caplog.records if "ray_enterprise[otlp]" in r.getMessage()]
    assert "observability.otlp_endpoint" in record.getMessage()
