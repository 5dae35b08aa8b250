"""Instrumentation for users' own Serve deployments: request metrics and a span per request.

One line on an existing deployment::

    @instrument_deployment
    @serve.deployment
    class Hello:
        async def __call__(self, request: Request) -> str: ...

(below ``@serve.deployment`` works too). Each call of ``__call__`` (or of the ``methods``
named) counts a request, an error when it raises, and its latency in milliseconds, through
this process's metrics recorder (an append; the flush thread ships them). It runs in a SERVER
span that continues the caller's trace when the request carries a W3C ``traceparent`` header,
and a Starlette ``Response`` it returns gets a ``traceresponse`` header naming that span, so
the caller can find the trace at ``/traces/{trace_id}``. With ``scope=``, the request must
also carry an API key with that scope, within its rate limit (see :mod:`.guard`). A
FastAPI-ingress deployment takes :class:`InstrumentationMiddleware` on its app instead, since
its routes bypass ``__call__``.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind

from ray_enterprise.observability import metrics
from ray_enterprise.observability.trace_context import extract_context
from ray_enterprise.observability.tracing import TraceSpan, TraceStatus, start_trace
from ray_enterprise.security.apikeys import Scope
from ray_enterprise.serve.gate import Refusal
from ray_enterprise.serve.guard import DeploymentGuard

REQUESTS = "ray_enterprise_serve_requests"
ERRORS = "ray_enterprise_serve_request_errors"
LATENCY = "ray_enterprise_serve_request_latency_ms"
_TRACE_HEADERS = ("traceparent", "tracestate")
T = TypeVar("T")


class RequestTelemetry:
    """The metric handles and span of one (deployment, operation), made on first use in the
    replica's process, so nothing of it is pickled with the class."""

    __slots__ = ("_errors", "_latency", "_requests", "operation", "service")

    def __init__(self, service: str, operation: str) -> None:
        self.service = service
        self.operation = operation
        tags = {"deployment": service, "operation": operation}
        self._requests = metrics.counter(REQUESTS, tags, service)
        self._errors = metrics.counter(ERRORS, tags, service)
        self._latency = metrics.timer(LATENCY, tags, service)

    def begin(self, headers: Mapping[str, str] | None) -> TraceSpan:
        carrier = None
        if headers is not None:
            carrier = {h: headers[h] for h in _TRACE_HEADERS if h in headers}
        parent, _ = extract_context(carrier)
        return start_trace(self.operation, self.service, kind=SpanKind.SERVER, context=parent)

    def end(self, span: TraceSpan, began: float, error: BaseException | None) -> None:
        self._latency.observe_ms((time.perf_counter() - began) * 1000.0)
        self._requests.inc()
        if error is None:
            span.finish(TraceStatus.SUCCESS)
        else:
            self._errors.inc()
            span.finish(TraceStatus.ERROR, type(error).__name__)


def traceresponse(span: TraceSpan) -> str:
    """The W3C ``traceresponse`` value naming ``span``."""
    return f"00-{span.trace_id}-{span.span_id}-01"


def _headers_of(args: tuple[Any, ...]) -> Mapping[str, str] | None:
    first = args[0] if args else None
    headers = getattr(first, "headers", None)
    return headers if isinstance(headers, Mapping) else None


def _mark(result: Any, span: TraceSpan) -> None:
    headers = getattr(result, "headers", None)
    if headers is not None and hasattr(result, "body") and hasattr(headers, "__setitem__"):
        headers["traceresponse"] = traceresponse(span)


def _deployment_name(default: str) -> str:
    try:
        from ray import serve

        return str(serve.get_replica_context().deployment)
    except Exception:  # called outside a replica (a unit test, a plain actor)
        return default


def _refused(refusal: Refusal) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse(refusal.body, status_code=refusal.status, headers=refusal.headers)


def _wrap(
    method: Callable[..., Any],
    service: str | None,
    operation: str,
    guard: DeploymentGuard | None,
) -> Callable[..., Any]:
    cell: list[RequestTelemetry] = []

    def telemetry(instance: Any) -> RequestTelemetry:
        if not cell:
            name = service or _deployment_name(type(instance).__name__)
            cell.append(RequestTelemetry(name, operation))
        return cell[0]

    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(method):

        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            tel = cell[0] if cell else telemetry(self)
            span = tel.begin(_headers_of(args))
            began = time.perf_counter()
            if guard is not None:
                try:
                    await guard.admit(tel.service, args[0] if args else None)
                except Refusal as refusal:  # the caller's fault, not an error of the service
                    result = _refused(refusal)
                    _mark(result, span)
                    tel.end(span, began, None)
                    return result
            try:
                result = await method(self, *args, **kwargs)
            except BaseException as exc:
                tel.end(span, began, exc)
                raise
            _mark(result, span)
            tel.end(span, began, None)
            return result

        wrapper = async_wrapper
    else:
        if guard is not None:
            raise TypeError(f"{operation} must be `async def` to check API keys")

        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            tel = cell[0] if cell else telemetry(self)
            span = tel.begin(_headers_of(args))
            began = time.perf_counter()
            try:
                result = method(self, *args, **kwargs)
            except BaseException as exc:
                tel.end(span, began, exc)
                raise
            _mark(result, span)
            tel.end(span, began, None)
            return result

        wrapper = sync_wrapper
    functools.update_wrapper(wrapper, method)
    setattr(wrapper, "__re_instrumented__", True)  # noqa: B010 (a marker mypy cannot see)
    return wrapper


def _instrument_class(
    cls: type[T], service: str | None, methods: Iterable[str], guard: DeploymentGuard | None
) -> type[T]:
    for name in methods:
        method = getattr(cls, name, None)
        if method is None:
            raise TypeError(f"{cls.__name__} has no method {name!r} to instrument")
        if getattr(method, "__re_instrumented__", False):
            continue
        operation = f"{cls.__name__}.{name}"
        setattr(cls, name, _wrap(method, service, operation, guard))
    return cls


def _with_config(cls: type[T], section: str) -> type[T]:
    """Give each replica ``self.config`` (the current ``section``) and keep it current.

    The replica follows the ConfigActor from a thread of its own (a long poll), so a new
    version arrives without a redeploy; ``on_config(section, value, version)`` on the class,
    when it has one, is called with each version, in order, after ``self.config`` changed.
    """
    if getattr(cls, "__re_config_section__", None) == section:
        return cls
    original = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self.config, self.config_version = None, 0
        original(self, *args, **kwargs)
        from ray_enterprise.config.client import ConfigOrchestrator

        def take(name: str, value: Any, version: int) -> Any:
            self.config, self.config_version = value, version
            hook = getattr(self, "on_config", None)
            return hook(name, value, version) if hook is not None else None

        orchestrator = ConfigOrchestrator()
        orchestrator.add_change_handler(section, take, last_version=0)
        orchestrator.start_watching_sync()
        self._re_config_orchestrator = orchestrator

    functools.update_wrapper(__init__, original)
    setattr(cls, "__init__", __init__)  # noqa: B010 (mypy refuses assigning to __init__)
    setattr(cls, "__re_config_section__", section)  # noqa: B010
    return cls


def instrument_deployment(
    target: Any = None,
    *,
    service: str | None = None,
    methods: Iterable[str] = ("__call__",),
    scope: Scope | str | None = None,
    db_url: str | None = None,
    config_section: str | None = None,
) -> Any:
    """Instrument a Serve deployment (or the class it will be made of); see the module doc.

    ``service`` names the metrics' ``deployment`` tag and the spans' service (default: the
    deployment's name, read in the replica); ``methods`` are the entry points to measure.
    With ``scope``, a request must also carry an API key with that scope and stay within the
    key's rate limit (``security`` config section); keys are read from ``db_url`` (default:
    the platform's durable store as the replica sees it). Refusals are 401/403/429 JSON
    answers, as the management API gives them. With ``config_section`` (``"search"``,
    ``"services.<name>"``), each replica has that section as ``self.config`` from its start,
    kept current, and its ``on_config(section, value, version)`` is called on each change.
    """
    names = tuple(methods)
    guard = DeploymentGuard(Scope(scope), db_url) if scope is not None else None

    def apply(obj: Any) -> Any:
        from ray.serve.deployment import Deployment

        if isinstance(obj, Deployment):
            cls = obj.func_or_class
            if not inspect.isclass(cls):
                raise TypeError("instrument_deployment needs a class deployment, not a function")
            cls = _instrument_class(cls, service, names, guard)
            if config_section is not None:
                cls = _with_config(cls, config_section)
            return obj.options(func_or_class=cls)
        if inspect.isclass(obj):
            cls = _instrument_class(obj, service, names, guard)
            return _with_config(cls, config_section) if config_section is not None else cls
        raise TypeError(f"instrument_deployment decorates a class or a deployment, not {obj!r}")

    return apply if target is None else apply(target)


class InstrumentationMiddleware:
    """The same measurements for an ASGI app (a FastAPI ingress): one per HTTP request,
    the operation named by method and route template so that paths with ids do not each
    become a series."""

    def __init__(self, app: Any, service: str) -> None:
        self.app = app
        self.service = service
        self._telemetry: dict[str, RequestTelemetry] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        holder: dict[str, Any] = {}
        began = time.perf_counter()
        span = start_trace(
            scope.get("method", "HTTP"),
            self.service,
            kind=SpanKind.SERVER,
            context=extract_context(
                {h: headers[h] for h in _TRACE_HEADERS if h in headers} or None
            )[0],
        )

        async def send_marked(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                holder["status"] = message.get("status", 500)
                marked = [*message.get("headers", []), (b"traceresponse", _b(span))]
                message = {**message, "headers": marked}
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_marked)
        except BaseException as exc:
            error = exc
            raise
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            operation = f"{scope.get('method', 'HTTP')} {template}"
            tel = self._telemetry.get(operation)
            if tel is None:
                tel = self._telemetry[operation] = RequestTelemetry(self.service, operation)
            if error is None and holder.get("status", 500) >= 500:
                error = RuntimeError(f"HTTP {holder.get('status')}")
            span.otel_span.update_name(operation)
            tel.end(span, began, error)


def _b(span: TraceSpan) -> bytes:
    return traceresponse(span).encode("latin-1")


__all__ = [
    "ERRORS",
    "LATENCY",
    "REQUESTS",
    "InstrumentationMiddleware",
    "RequestTelemetry",
    "instrument_deployment",
    "traceresponse",
]
