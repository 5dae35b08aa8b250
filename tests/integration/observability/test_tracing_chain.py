"""A request through three services is one trace with the right parents, on a real Ray."""

from __future__ import annotations

from typing import Any

import pytest
import ray

import ray_enterprise
from ray_enterprise.observability import tracing
from ray_enterprise.observability.platform import (
    EnterpriseObservabilityPlatform,
    boot_observability,
)
from ray_enterprise.observability.trace_context import traced_handle
from ray_enterprise.observability.tracing import TraceStatus
from ray_enterprise.spec import ServiceSpec
from tests.integration.observability.traced_chain import MODULE
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def spec(name: str, cls: str, *deps: str) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "name": name,
            "class": f"{MODULE}:{cls}",
            "depends_on": list(deps),
            "health": {"period_s": 0.5, "timeout_s": 5.0},
        }
    )


@pytest.fixture
def chain(registry: Registry) -> tuple[EnterpriseObservabilityPlatform, Any]:
    platform = EnterpriseObservabilityPlatform(boot_observability())
    registry.register_app_sync(
        [
            spec("backend", "Backend"),
            spec("middle", "Middle", "backend"),
            spec("frontend", "Frontend", "middle"),
        ]
    )
    status = registry.start_all_sync(timeout_s=60)
    assert status["status"] == "healthy", status
    return platform, traced_handle(registry.get_service_sync("frontend"))


def whole_trace(platform: EnterpriseObservabilityPlatform, trace_id: str, n: int) -> list[Any]:
    tracing.flush_spans()
    platform.flush()
    return wait_for(
        lambda: (lambda spans: spans if len(spans) >= n else [])(platform.get_trace(trace_id)),
        timeout=20,
        what=f"{n} spans of trace {trace_id}",
    )


def test_a_call_through_three_services_is_one_trace_with_correct_parents(
    chain: tuple[EnterpriseObservabilityPlatform, Any],
) -> None:
    platform, frontend = chain
    span = platform.start_trace("search_request", "enterprise_search")
    span.log_event("info", "Starting hybrid search")
    assert ray.get(frontend.handle.remote("k"), timeout=30) == "frontend:<K>"
    platform.finish_span(span, TraceStatus.SUCCESS)

    spans = {s.name: s for s in whole_trace(platform, span.trace_id, 5)}
    assert set(spans) == {
        "search_request",
        "Frontend.handle",
        "Middle.enrich",
        "Backend.fetch",
        "backend.read",
    }
    root = spans["search_request"]
    assert root.parent_id is None and root.events[0][1:] == ("info", "Starting hybrid search")
    parents = {
        "Frontend.handle": "search_request",
        "Middle.enrich": "Frontend.handle",
        "Backend.fetch": "Middle.enrich",
        "backend.read": "Backend.fetch",
    }
    for child, parent in parents.items():
        assert spans[child].parent_id == spans[parent].span_id, child
    assert {s.service for s in spans.values()} == {
        "enterprise_search",
        "frontend",
        "middle",
        "backend",
    }
    edges = {(e["caller"], e["callee"]): e for e in platform.get_dependency_map()}
    for edge in [("enterprise_search", "frontend"), ("frontend", "middle"), ("middle", "backend")]:
        assert edges[edge]["calls"] >= 1 and edges[edge]["p50_ms"] > 0, edge
    ops = {(o["service"], o["operation"]) for o in platform.get_operation_latencies()}
    assert ("middle", "Middle.enrich") in ops


def test_a_failing_service_method_marks_its_span_as_error(
    chain: tuple[EnterpriseObservabilityPlatform, Any],
) -> None:
    platform, frontend = chain
    with (
        tracing.traced("checkout", "shop") as root,
        pytest.raises(ray.exceptions.RayTaskError, match="refused on purpose"),
    ):
        ray.get(frontend.fail.remote(), timeout=30)
    spans = {s.name: s for s in whole_trace(platform, root.trace_id, 2)}
    failed = spans["Frontend.fail"]
    assert failed.status == "error" and "refused on purpose" in (failed.error or "")
    assert failed.parent_id == root.span_id
    assert spans["checkout"].status == "success"
