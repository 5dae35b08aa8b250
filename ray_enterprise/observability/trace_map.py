"""What the platform learns from finished spans: whole traces, who calls whom, and how fast.

Pure and bounded: the newest ``max_traces`` traces are kept whole (the oldest are evicted), and
per operation and per call edge a ring of recent durations gives latency percentiles.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ray_enterprise.observability.series import QUANTILES, RingBuffer
from ray_enterprise.observability.tracing import SpanRecord, TraceStatus


@dataclass
class _Latency:
    """Call and error counts plus a ring of recent durations for one operation or edge."""

    ring: RingBuffer
    calls: int = 0
    errors: int = 0

    def add(self, span: SpanRecord) -> None:
        self.calls += 1
        if span.status != TraceStatus.SUCCESS.value:
            self.errors += 1
        self.ring.extend(span.end_ns // 1_000_000, np.array([span.duration_ms]))

    def to_json(self) -> dict[str, Any]:
        _, durations = self.ring.ordered()
        if len(durations):
            p50, p95, p99 = (float(q) for q in np.quantile(durations, QUANTILES))
        else:
            p50 = p95 = p99 = 0.0
        return {
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.errors / self.calls if self.calls else 0.0,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
        }


@dataclass
class TraceMap:
    """Traces by id, the service dependency map and per-operation latencies."""

    max_traces: int = 10_000
    latency_capacity: int = 2048
    _traces: OrderedDict[str, dict[str, SpanRecord]] = field(default_factory=OrderedDict)
    _ops: dict[tuple[str, str], _Latency] = field(default_factory=dict)
    _edges: dict[tuple[str, str], _Latency] = field(default_factory=dict)
    spans: int = 0

    def add(self, spans: Iterable[SpanRecord]) -> None:
        for span in spans:
            self.spans += 1
            trace = self._traces.get(span.trace_id)
            if trace is None:
                trace = self._traces[span.trace_id] = {}
                while len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
            trace[span.span_id] = span
            self._latency(self._ops, (span.service, span.name)).add(span)
            caller = span.peer_service or self._parent_service(trace, span)
            if caller and caller != span.service:
                self._latency(self._edges, (caller, span.service)).add(span)

    def _latency(self, table: dict[tuple[str, str], _Latency], key: tuple[str, str]) -> _Latency:
        entry = table.get(key)
        if entry is None:
            entry = table[key] = _Latency(RingBuffer(self.latency_capacity))
        return entry

    @staticmethod
    def _parent_service(trace: dict[str, SpanRecord], span: SpanRecord) -> str | None:
        parent = trace.get(span.parent_id) if span.parent_id else None
        return parent.service if parent is not None else None

    def trace(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace, parents before children (by start time)."""
        return sorted(self._traces.get(trace_id, {}).values(), key=lambda s: s.start_ns)

    def trace_ids(self) -> list[str]:
        return list(self._traces)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The ``limit`` traces seen last, newest first, each summarised by its root span
        (the earliest span without a parent in the trace): enough to choose one to open."""
        summaries = []
        for trace_id in reversed(list(self._traces)[-limit:] if limit > 0 else []):
            spans = self.trace(trace_id)
            roots = [
                s for s in spans if not s.parent_id or s.parent_id not in self._traces[trace_id]
            ]
            root = roots[0] if roots else spans[0]
            start = min(s.start_ns for s in spans)
            end = max(s.end_ns for s in spans)
            summaries.append(
                {
                    "trace_id": trace_id,
                    "name": root.name,
                    "service": root.service,
                    "start_ns": start,
                    "duration_ms": (end - start) / 1e6,
                    "spans": len(spans),
                    "errors": sum(1 for s in spans if s.status != "success"),
                }
            )
        return summaries

    def dependency_map(self) -> list[dict[str, Any]]:
        """One row per (caller, callee) service pair with calls, error rate and latencies."""
        return [
            {"caller": caller, "callee": callee, **lat.to_json()}
            for (caller, callee), lat in sorted(self._edges.items())
        ]

    def operations(self) -> list[dict[str, Any]]:
        """One row per (service, operation) with calls, error rate and latency percentiles."""
        return [
            {"service": service, "operation": op, **lat.to_json()}
            for (service, op), lat in sorted(self._ops.items())
        ]
