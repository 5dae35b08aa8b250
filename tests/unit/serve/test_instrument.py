"""The instrumentation decorator without a Serve replica: spans, metrics, refusals to wrap."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from ray import serve
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from ray_enterprise.observability import metrics, tracing
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType
from ray_enterprise.observability.recorder import Recorder
from ray_enterprise.observability.tracing import ShippingSpanProcessor, SpanRecord
from ray_enterprise.serve.instrument import ERRORS, LATENCY, REQUESTS, instrument_deployment

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Shipped:
    def __init__(self, processor: ShippingSpanProcessor, recorder: Recorder) -> None:
        self.processor = processor
        self.recorder = recorder
        self.batches: list[MetricBatch] = []

    def spans(self) -> list[SpanRecord]:
        return self.processor.drain()

    def totals(self) -> dict[str, float]:
        """Counters by their sum (they ship aggregated), timers by how many durations."""
        self.recorder.flush()
        out: dict[str, float] = {}
        for batch in self.batches:
            for series in batch.series:
                counted = series.kind is MetricType.COUNTER
                amount = float(series.values.sum()) if counted else len(series.values)
                out[series.name] = out.get(series.name, 0.0) + amount
        return out


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Iterator[Shipped]:
    """A private tracer and recorder for one test; the process's own stay untouched."""
    processor = ShippingSpanProcessor(None)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    monkeypatch.setattr(tracing, "_processor", processor)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    holder: list[Shipped] = []

    def sink(batch: MetricBatch) -> bool:
        holder[0].batches.append(batch)
        return True

    recorder = Recorder(sink=sink, autostart=False)
    monkeypatch.setattr(metrics, "_default", recorder)
    holder.append(Shipped(processor, recorder))
    yield holder[0]
    provider.shutdown()


def request(**headers: str) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw})


class Hello:
    async def __call__(self, req: Request) -> PlainTextResponse:
        if "x-fail" in req.headers:
            raise ValueError("asked to")
        return PlainTextResponse("hello")


def test_a_call_continues_the_callers_trace_and_names_its_span_back(shipped: Shipped) -> None:
    cls: Any = instrument_deployment(type("Hello", (Hello,), {"__call__": Hello.__call__}))
    answer = asyncio.run(cls()(request(traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")))
    [span] = shipped.spans()
    assert (span.trace_id, span.parent_id, span.kind) == (TRACE_ID, PARENT_ID, "server")
    assert (span.name, span.service, span.status) == ("Hello.__call__", "Hello", "success")
    assert answer.headers["traceresponse"] == f"00-{TRACE_ID}-{span.span_id}-01"
    assert shipped.totals() == {REQUESTS: 1, LATENCY: 1}


def test_a_raising_call_is_an_error_span_and_an_error_count(shipped: Shipped) -> None:
    cls: Any = instrument_deployment(type("Hello", (Hello,), {"__call__": Hello.__call__}))
    with pytest.raises(ValueError, match="asked to"):
        asyncio.run(cls()(request(**{"x-fail": "1"})))
    [span] = shipped.spans()
    assert span.status == "error" and span.parent_id is None
    assert shipped.totals() == {REQUESTS: 1, ERRORS: 1, LATENCY: 1}


def test_a_deployment_is_instrumented_once_and_keeps_being_a_deployment() -> None:
    deployment = serve.deployment(name="hi")(type("Hi", (Hello,), {"__call__": Hello.__call__}))
    wrapped = instrument_deployment(instrument_deployment(deployment))
    assert isinstance(wrapped, type(deployment)) and wrapped.name == "hi"
    cls: Any = wrapped.func_or_class
    assert getattr(cls.__call__, "__re_instrumented__", False)


def test_what_cannot_be_instrumented_is_refused_clearly() -> None:
    class Sync:
        def __call__(self, req: Request) -> str:
            return "hi"

    with pytest.raises(TypeError, match="must be `async def` to check API keys"):
        instrument_deployment(Sync, scope="status:read")
    with pytest.raises(TypeError, match="has no method 'handle'"):
        instrument_deployment(Sync, methods=["handle"])
    with pytest.raises(TypeError, match="decorates a class or a deployment"):
        instrument_deployment(len)
    with pytest.raises(ValueError, match="is not a valid Scope"):
        instrument_deployment(Sync, scope="status:write")


def test_the_middleware_names_spans_by_route_template_and_marks_the_response(
    shipped: Shipped,
) -> None:
    from fastapi import FastAPI

    from ray_enterprise.serve.instrument import InstrumentationMiddleware

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    asgi = InstrumentationMiddleware(app, service="shop")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def get(path: str) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01".encode())],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await asgi(scope, receive, send)

    asyncio.run(get("/items/1"))
    asyncio.run(get("/items/2"))
    spans = shipped.spans()
    assert [s.name for s in spans] == ["GET /items/{item_id}"] * 2
    assert all((s.trace_id, s.parent_id, s.service) == (TRACE_ID, PARENT_ID, "shop") for s in spans)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [200, 200]
    marks = [dict(m["headers"])[b"traceresponse"].decode() for m in starts]
    assert marks == [f"00-{TRACE_ID}-{s.span_id}-01" for s in spans]
    assert shipped.totals() == {REQUESTS: 2, LATENCY: 2}
