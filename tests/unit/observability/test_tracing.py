"""Tracing facade, span shipping and context propagation, without Ray."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ray_enterprise.observability import tracing
from ray_enterprise.observability.trace_context import (
    CARRIER_KWARG,
    ROOTS_ENV,
    extract_context,
    inject_context,
    instrument_service_class,
    traced_function,
    traced_handle,
)
from ray_enterprise.observability.tracing import (
    ShippingSpanProcessor,
    SpanRecord,
    TraceStatus,
    finish_span,
    start_trace,
)


class SpanSink:
    def __init__(self) -> None:
        self.spans: list[SpanRecord] = []

    def __call__(self, spans: list[SpanRecord]) -> bool:
        self.spans.extend(spans)
        return True


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ShippingSpanProcessor, SpanSink]]:
    """A private provider and processor for one test; the process's own stay untouched."""
    sink = SpanSink()
    processor = ShippingSpanProcessor(None)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    monkeypatch.setattr(tracing, "_processor", processor)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield processor, sink
    provider.shutdown()


def finished(processor: ShippingSpanProcessor) -> dict[str, SpanRecord]:
    return {s.name: s for s in processor.drain()}


def test_a_finished_span_is_held_as_plain_data_not_as_the_sdk_span(
    shipped: tuple[ShippingSpanProcessor, SpanSink],
) -> None:
    # A held SDK span keeps its attributes, context and events alive until the flush, and the
    # garbage collector's passes over them cost every caller (issue 25's span figure).
    processor, _ = shipped
    with start_trace("op", "svc", kind=tracing.SpanKind.CLIENT, attributes={"peer.service": "db"}):
        pass
    assert [type(held) for held in processor._queue] == [SpanRecord]
    (record,) = processor.drain()
    assert (record.kind, record.peer_service, record.status) == ("client", "db", "success")


def test_seed_calls_make_one_span_with_its_event_and_status(
    shipped: tuple[ShippingSpanProcessor, SpanSink],
) -> None:
    processor, _ = shipped
    span = start_trace("search_request", "enterprise_search")
    span.log_event("info", "Starting hybrid search")
    finish_span(span, TraceStatus.SUCCESS)
    finish_span(span, TraceStatus.ERROR)  # a second finish changes nothing
    (record,) = processor.drain()
    assert record.name == "search_request" and record.service == "enterprise_search"
    assert record.status == "success" and record.parent_id is None
    assert [(level, msg) for _, level, msg in record.events] == [("info", "Starting hybrid search")]
    assert record.end_ns >= record.start_ns and len(record.trace_id) == 32


def test_nested_spans_share_the_trace_and_point_at_their_parent(
    shipped: tuple[ShippingSpanProcessor, SpanSink],
) -> None:
    processor, _ = shipped
    outer = start_trace("outer", "a")
    inner = start_trace("inner", "b")
    finish_span(inner, TraceStatus.TIMEOUT, "slow backend")
    finish_span(outer)
    after = start_trace("after", "a")  # outer was detached: this is a new root
    finish_span(after)
    spans = finished(processor)
    assert spans["inner"].trace_id == spans["outer"].trace_id
    assert spans["inner"].parent_id == spans["outer"].span_id
    assert spans["inner"].status == "timeout" and spans["inner"].error == "slow backend"
    assert spans["after"].parent_id is None
    assert spans["after"].trace_id != spans["outer"].trace_id


def test_context_manager_marks_exceptions_as_errors(
    shipped: tuple[ShippingSpanProcessor, SpanSink],
) -> None:
    processor, _ = shipped
    with pytest.raises(KeyError), tracing.traced("lookup", "cache"):
        raise KeyError("k")
    (record,) = processor.drain()
    assert record.status == "error" and "KeyError" in (record.error or "")


def test_processor_ships_in_batches_and_keeps_what_the_sink_refused() -> None:
    refusing = {"ok": False}
    got: list[SpanRecord] = []

    def sink(spans: list[SpanRecord]) -> bool:
        if refusing["ok"]:
            got.extend(spans)
        return refusing["ok"]

    processor = ShippingSpanProcessor(sink, capacity=3)
    processor._thread = object()  # type: ignore[assignment]  # keep the flush thread off
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(5):
        tracer.start_span(f"s{i}").end()
    assert processor.dropped == 2
    assert not processor.flush()
    refusing["ok"] = True
    assert processor.flush()
    assert [s.name for s in got] == ["s0", "s1", "s2"]


class Backend:
    name = "backend"

    async def lookup(self, key: str) -> str:
        return key.upper()

    def sync_lookup(self, key: str, *, suffix: str = "") -> str:
        return key + suffix

    async def check_health(self) -> bool:
        return True


def test_instrumented_methods_accept_the_carrier_and_continue_the_trace(
    shipped: tuple[ShippingSpanProcessor, SpanSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, _ = shipped
    cls = instrument_service_class(type("Backend", (Backend,), dict(vars(Backend))))
    assert instrument_service_class(cls) is cls
    assert CARRIER_KWARG in inspect.signature(cls.lookup).parameters
    assert not hasattr(cls.lookup, "__wrapped__")  # Ray must read the new signature
    assert CARRIER_KWARG not in inspect.signature(cls.check_health).parameters
    backend = cls()
    root = start_trace("request", "frontend")
    carrier = inject_context()
    finish_span(root)
    assert carrier is not None and carrier["re-service"] == "frontend"
    assert asyncio.run(backend.lookup("k", _re_trace=carrier)) == "K"
    assert backend.sync_lookup("a", suffix="!", _re_trace=carrier) == "a!"
    assert backend.sync_lookup("a") == "a"  # no carrier, no root ratio: untraced
    monkeypatch.setenv(ROOTS_ENV, "1")
    assert backend.sync_lookup("b") == "b"  # roots on: a new trace of its own
    spans = processor.drain()
    by_parent = [(s.name, s.parent_id) for s in spans if s.name != "request"]
    assert by_parent == [
        ("Backend.lookup", root.span_id),
        ("Backend.sync_lookup", root.span_id),
        ("Backend.sync_lookup", None),
    ]
    served = next(s for s in spans if s.name == "Backend.lookup")
    assert served.service == "backend" and served.peer_service == "frontend"
    assert served.kind == "server" and served.trace_id == root.trace_id


def test_no_current_span_means_no_carrier() -> None:
    assert inject_context() is None
    assert extract_context(None) == (None, "")


class FakeMethod:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def remote(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return "ref"


class FakeHandle:
    def __init__(self, accepts: bool) -> None:
        params = [inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        if accepts:
            params.append(inspect.Parameter(CARRIER_KWARG, inspect.Parameter.KEYWORD_ONLY))
        self._ray_method_signatures = {"lookup": params}
        self.lookup = FakeMethod()


@pytest.mark.parametrize("accepts", [True, False])
def test_traced_handle_adds_the_carrier_only_where_the_method_takes_it(
    shipped: tuple[ShippingSpanProcessor, SpanSink], accepts: bool
) -> None:
    handle = FakeHandle(accepts)
    traced = traced_handle(handle)
    assert traced_handle(traced) is traced
    traced.lookup.remote("outside")  # no span: nothing added
    with tracing.traced("call", "frontend"):
        traced.lookup.remote("inside")
    (_, outside), (_, inside) = handle.lookup.calls
    assert CARRIER_KWARG not in outside
    assert (CARRIER_KWARG in inside) is accepts


def test_traced_function_continues_the_trace(
    shipped: tuple[ShippingSpanProcessor, SpanSink],
) -> None:
    processor, _ = shipped

    @traced_function
    def work(x: int) -> int:
        return x * 2

    with tracing.traced("driver", "jobs") as root:
        assert work(2, _re_trace=inject_context()) == 4
    spans = finished(processor)
    assert spans[work.__qualname__].parent_id == root.span_id


def test_ray_method_options_survive_instrumentation() -> None:
    import ray

    class Busy:
        @ray.method(concurrency_group="io")
        async def fetch(self) -> int:
            return 1

    instrument_service_class(Busy)
    assert Busy.fetch.__ray_concurrency_group__ == "io"  # type: ignore[attr-defined]
