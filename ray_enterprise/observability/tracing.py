"""Tracing: OpenTelemetry spans behind the design summary's small facade, shipped in batches.

``start_trace(name, service)`` starts a span under whatever span is current (so a trace started
in a driver and continued in a service method is one trace), makes it current, and returns a
:class:`TraceSpan`; ``finish_span(span, status)`` ends it. Finished spans are queued by a span
processor (an append, like metrics) and a daemon thread ships them as plain
:class:`SpanRecord` data to the node's collector every second.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from ray_enterprise.observability.otlp import install_exporter

logger = logging.getLogger("ray_enterprise.tracing")

SERVICE_ATTR = "service.name"
PEER_ATTR = "peer.service"
STATUS_ATTR = "re.status"
_RAY_SCOPE = "ray."  # the tracer Ray's tracing helper makes its spans with
SpanSink = Callable[[list["SpanRecord"]], bool]


class TraceStatus(str, enum.Enum):
    """How a traced operation ended."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


_SUCCESS, _ERROR = TraceStatus.SUCCESS.value, TraceStatus.ERROR.value


#: Each span kind's name as SpanRecord carries it, looked up once instead of per span.
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}


# Not frozen: one is built per span inside the caller's cost (issue 25 counts the conversion),
# and a frozen dataclass's __init__ (object.__setattr__ per field) costs five times a plain one.
# Treat it as read-only all the same.
@dataclass(slots=True)
class SpanRecord:
    """A finished span as plain data: what travels to the collector and the trace map."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    peer_service: str | None
    kind: str
    start_ns: int
    end_ns: int
    status: str
    error: str | None = None
    events: tuple[tuple[int, str, str], ...] = ()

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @classmethod
    def from_span(cls, span: ReadableSpan) -> SpanRecord:
        # On every span's path (ShippingSpanProcessor.on_end): each lookup here is paid per span.
        attrs: Mapping[str, Any] = span.attributes or {}
        ctx = span.get_span_context()
        span_status = span.status
        status = attrs.get(STATUS_ATTR)
        if status is None:
            status = _ERROR if span_status.status_code is StatusCode.ERROR else _SUCCESS
        parent = span.parent
        peer = attrs.get(PEER_ATTR)
        kind = span.kind
        events = span.events
        return cls(
            f"{ctx.trace_id if ctx else 0:032x}",
            f"{ctx.span_id if ctx else 0:016x}",
            f"{parent.span_id:016x}" if parent is not None else None,
            span.name,
            str(attrs.get(SERVICE_ATTR, "")),
            str(peer) if peer is not None else None,
            "internal" if kind is SpanKind.INTERNAL else _KIND_NAMES[kind],
            span.start_time or 0,
            span.end_time or 0,
            str(status),
            span_status.description,
            tuple(
                (e.timestamp, str((e.attributes or {}).get("level", "info")), e.name)
                for e in events
            )
            if events
            else (),
        )


class ShippingSpanProcessor(SpanProcessor):
    """Queues finished spans and ships them in batches; bounded, drops counted.

    ``on_end`` runs on the caller's thread for every span: it converts the span to a
    ``SpanRecord`` there and appends it; only I/O happens on the flush thread. Converting later
    on the flush thread looked cheaper but was not: each held SDK span keeps about ten objects
    alive until the flush, and the garbage collector's passes over them cost the caller more
    than the conversion (measured 20-30 us per span against ~4; issue 25).
    """

    def __init__(
        self, sink: SpanSink | None, *, capacity: int = 50_000, flush_interval_s: float = 1.0
    ) -> None:
        self._sink = sink
        self._capacity = capacity
        self._interval = flush_interval_s
        self._queue: deque[SpanRecord] = deque()
        self._pending: list[SpanRecord] = []
        self.dropped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is not None and scope.name.startswith(_RAY_SCOPE):
            return  # Ray's own spans (its tracing hook) go to OTLP only, not the trace map
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(SpanRecord.from_span(span))
        if self._thread is None and self._sink is not None:
            self._start()

    def drain(self) -> list[SpanRecord]:
        queue = self._queue
        return [queue.popleft() for _ in range(len(queue))]

    def flush(self) -> bool:
        """Ship everything finished so far; ``True`` when the sink took it all."""
        with self._lock:
            self._pending.extend(self.drain())
            if len(self._pending) > self._capacity:  # the collector has been away too long
                self.dropped += len(self._pending) - self._capacity
                del self._pending[: len(self._pending) - self._capacity]
            if not self._pending or self._sink is None:
                return not self._pending
            try:
                taken = self._sink(self._pending)
            except Exception:
                logger.exception("span sink failed")
                taken = False
            if taken:
                self._pending = []
            return taken

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.flush()

    def shutdown(self) -> None:
        self._stop.set()
        self.flush()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="ray_enterprise-span-flush", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()


class TraceSpan:
    """One span of the facade: the OpenTelemetry span, its service and its context token."""

    __slots__ = ("_span", "_token", "name", "service")

    def __init__(self, span: trace.Span, service: str, name: str, token: object) -> None:
        self._span = span
        self.service = service
        self.name = name
        self._token = token

    @property
    def otel_span(self) -> trace.Span:
        return self._span

    @property
    def trace_id(self) -> str:
        return format(self._span.get_span_context().trace_id, "032x")

    @property
    def span_id(self) -> str:
        return format(self._span.get_span_context().span_id, "016x")

    def log_event(self, level: str, message: str, **attributes: Any) -> None:
        """A timestamped line in the span (the seed's ``span.log_event("info", ...)``)."""
        self._span.add_event(message, {"level": level, **attributes})

    def set_tag(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def finish(self, status: TraceStatus = TraceStatus.SUCCESS, error: str | None = None) -> None:
        if not self._span.is_recording():
            return  # finished already
        if status != TraceStatus.SUCCESS:  # success is the unset status: no extra work
            status = TraceStatus(status)
            self._span.set_attribute(STATUS_ATTR, status.value)
            self._span.set_status(Status(StatusCode.ERROR, error or status.value))
        self._span.end()
        token, self._token = self._token, None
        if token is not None and trace.get_current_span() is self._span:
            otel_context.detach(token)  # type: ignore[arg-type]

    def __enter__(self) -> TraceSpan:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        if exc_type is None:
            self.finish(TraceStatus.SUCCESS)
        else:
            self.finish(TraceStatus.ERROR, f"{exc_type.__name__}: {exc}")


# -- the process's tracer ---------------------------------------------------------------------

_tracer: trace.Tracer | None = None
_processor: ShippingSpanProcessor | None = None
_setup_lock = threading.Lock()


def configure_tracing(
    sink: SpanSink | None = None, *, provider: TracerProvider | None = None
) -> ShippingSpanProcessor:
    """Install the shipping processor once per process (idempotent) and return it.

    An SDK ``TracerProvider`` the application set globally is reused (our processor is added to
    it, so its own exporters keep working); otherwise we create and install one. Either way
    spans also go to ``observability.otlp_endpoint`` when one is set (see :mod:`.otlp`).
    """
    global _tracer, _processor
    with _setup_lock:
        if _processor is not None:
            return _processor
        if sink is None:
            from ray_enterprise.observability.collector import ship_spans

            sink = ship_spans
        if provider is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider):
                provider = current
            else:
                provider = TracerProvider(sampler=_sampler())
                trace.set_tracer_provider(provider)
        _processor = ShippingSpanProcessor(sink)
        provider.add_span_processor(_processor)
        install_exporter(provider)  # observability.otlp_endpoint, when one is set
        atexit.register(_processor.flush)  # a driver that ends normally ships its last spans
        _tracer = provider.get_tracer("ray_enterprise")
        return _processor


def _sampler() -> Sampler:
    """``observability.trace_sample_rate`` of the traces that start here; a span whose
    parent was sampled elsewhere follows that decision, so a trace is never cut in half."""
    from ray_enterprise.observability.process_settings import setting

    return ParentBased(TraceIdRatioBased(float(setting("trace_sample_rate", 1.0))))


def tracer() -> trace.Tracer:
    if _tracer is None:
        configure_tracing()
    assert _tracer is not None
    return _tracer


def start_trace(
    name: str,
    service: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    context: otel_context.Context | None = None,
) -> TraceSpan:
    """Start a span of ``service`` under the current span (or ``context``) and make it current."""
    attrs: dict[str, str | int | float | bool] = {SERVICE_ATTR: service}
    if attributes:
        attrs.update(attributes)
    span = (_tracer or tracer()).start_span(name, context=context, kind=kind, attributes=attrs)
    token = otel_context.attach(trace.set_span_in_context(span, context))
    return TraceSpan(span, service, name, token)


def finish_span(
    span: TraceSpan, status: TraceStatus = TraceStatus.SUCCESS, error: str | None = None
) -> None:
    """End ``span`` with ``status``; the seed's ``finish_span(span, TraceStatus.SUCCESS)``."""
    span.finish(status, error)


@contextlib.contextmanager
def traced(name: str, service: str, **attributes: Any) -> Iterator[TraceSpan]:
    """``with traced("op", "svc") as span:``; an exception marks the span ERROR."""
    span = start_trace(name, service, attributes=attributes or None)
    with span:
        yield span


def flush_spans() -> bool:
    """Ship this process's finished spans now (tests, shutdown)."""
    return configure_tracing().flush()


def current_service() -> str | None:
    """The service of the current span, if it is one of ours."""
    attrs = getattr(trace.get_current_span(), "attributes", None)
    value = attrs.get(SERVICE_ATTR) if attrs else None
    return str(value) if value is not None else None
