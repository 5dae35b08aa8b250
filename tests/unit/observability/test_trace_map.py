"""Trace map: whole traces by id, the service dependency map, per-operation latencies."""

from __future__ import annotations

from ray_enterprise.observability.trace_map import TraceMap
from ray_enterprise.observability.tracing import SpanRecord


def span(
    trace: str,
    sid: str,
    parent: str | None,
    service: str,
    name: str,
    ms: float,
    *,
    peer: str | None = None,
    status: str = "success",
    start_ms: float = 0.0,
) -> SpanRecord:
    start = int(start_ms * 1e6)
    return SpanRecord(
        trace, sid, parent, name, service, peer, "server", start, start + int(ms * 1e6), status
    )


def test_trace_is_served_whole_in_start_order() -> None:
    tmap = TraceMap()
    tmap.add([span("t1", "c", "b", "db", "get", 1, start_ms=2)])
    tmap.add(
        [
            span("t1", "a", None, "api", "req", 10),
            span("t1", "b", "a", "cache", "get", 5, start_ms=1),
        ]
    )
    assert [s.span_id for s in tmap.trace("t1")] == ["a", "b", "c"]
    assert tmap.trace("missing") == []


def test_dependency_map_counts_calls_errors_and_latency_per_edge() -> None:
    tmap = TraceMap()
    tmap.add(
        [
            span("t1", "a", None, "api", "req", 10),
            span("t1", "b", "a", "cache", "get", 4, peer="api"),
            span("t2", "c", None, "api", "req", 10),
            span("t2", "d", "c", "cache", "get", 8, peer="api", status="error"),
            # no peer attribute: the parent span's service is the caller
            span("t2", "e", "c", "db", "query", 2),
            span("t2", "f", "c", "api", "helper", 1, peer="api"),  # same service: no edge
        ]
    )
    edges = {(e["caller"], e["callee"]): e for e in tmap.dependency_map()}
    assert set(edges) == {("api", "cache"), ("api", "db")}
    cache = edges[("api", "cache")]
    assert (cache["calls"], cache["errors"], cache["error_rate"]) == (2, 1, 0.5)
    assert cache["p50_ms"] == 6.0
    ops = {(o["service"], o["operation"]): o for o in tmap.operations()}
    assert ops[("api", "req")]["calls"] == 2 and ops[("api", "req")]["p99_ms"] == 10.0


def test_oldest_traces_are_evicted_past_the_bound() -> None:
    tmap = TraceMap(max_traces=2)
    for t in ("t1", "t2", "t3"):
        tmap.add([span(t, "a", None, "api", "req", 1)])
    assert tmap.trace_ids() == ["t2", "t3"]
    assert tmap.spans == 3


def test_recent_lists_the_newest_traces_first_summarised_by_their_root() -> None:
    tmap = TraceMap()
    tmap.add([span("old", "a", None, "api", "req", 3)])
    tmap.add(
        [
            span("new", "c", "b", "db", "get", 2, start_ms=4, status="error"),
            span("new", "b", None, "api", "search", 10, start_ms=1),
        ]
    )
    [newest] = tmap.recent(1)
    assert (newest["trace_id"], newest["name"], newest["service"]) == ("new", "search", "api")
    assert (newest["spans"], newest["errors"], newest["duration_ms"]) == (2, 1, 10.0)
    assert [t["trace_id"] for t in tmap.recent(5)] == ["new", "old"]
    assert tmap.recent(0) == []
