"""Carrying trace context across Ray actor method calls and tasks.

Ray has no per-call metadata, so the caller adds one keyword argument, ``_re_trace``, holding a
W3C ``traceparent`` and the calling service's name; the callee's method is wrapped to take it
out, continue the trace in a SERVER span named ``Class.method`` and record who called
(``peer.service``), which is what the dependency map is built from.

Two halves, both idempotent:

* callee: :func:`instrument_service_class` (or ``@traced_method`` on one method, or
  ``@traced_function`` on a task's function) wraps the methods and gives them a signature that
  accepts ``_re_trace``; Ray checks call arguments against that signature on the caller side.
  ``Service`` applies it to every subclass. A call that brings no carrier runs untraced
  unless :func:`root_ratio` says to start a trace there.
* caller: :func:`traced_handle` wraps an actor handle (or a remote function) so that each
  ``.remote()`` adds the carrier when a span is current and the method accepts it.

Ray's own hook (``ray.init(_tracing_startup_hook=...)``) traces every call of every actor,
system actors included, and must be set when the cluster starts; this opt-in carrier only
touches service methods and works on a cluster that is already running.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ray_enterprise.observability.tracing import (
    PEER_ATTR,
    TraceStatus,
    current_service,
    start_trace,
)

CARRIER_KWARG = "_re_trace"
ROOTS_ENV = "RAY_ENTERPRISE_TRACE_ROOTS"
_SERVICE_KEY = "re-service"
_W3C = TraceContextTextMapPropagator()
#: Hooks the registry calls: tracing them would make every health check a trace.
_UNTRACED = frozenset(
    {"start", "stop", "check_health", "check_ready", "on_dependency_change", "on_config",
     "dependency", "forget_dependency", "complete", "dependency_states"}
)  # fmt: skip
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def root_ratio() -> float:
    """Share of carrier-less service calls that start a trace of their own.

    Default 0: a trace starts where a request enters (``start_trace`` in a driver, the Serve
    decorator) and service calls continue it. Background loops calling dependencies would
    otherwise make a trace per call and cost a span each; ``RAY_ENTERPRISE_TRACE_ROOTS=1``
    traces every call anyway (set it in the runtime_env so every worker sees it).
    """
    try:
        return min(1.0, max(0.0, float(os.environ.get(ROOTS_ENV, "0") or 0)))
    except ValueError:
        return 0.0


def _start_root() -> bool:
    ratio = root_ratio()
    return ratio > 0.0 and (ratio >= 1.0 or random.random() < ratio)


def inject_context() -> dict[str, str] | None:
    """The carrier for the current span, or ``None`` when no span is current."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    if not carrier:
        return None
    service = current_service()
    if service:
        carrier[_SERVICE_KEY] = service
    return carrier


def extract_context(carrier: Mapping[str, str] | None) -> tuple[otel_context.Context | None, str]:
    """The parent context and the caller's service from a carrier (``None``, "" when absent)."""
    if not carrier:
        return None, ""
    return _W3C.extract(dict(carrier)), str(carrier.get(_SERVICE_KEY, ""))


def _with_carrier_signature(wrapper: Callable[..., Any], original: Callable[..., Any]) -> None:
    sig = inspect.signature(original)
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return  # **kwargs takes the carrier already
    extra = inspect.Parameter(CARRIER_KWARG, inspect.Parameter.KEYWORD_ONLY, default=None)
    params.append(extra)
    # No __wrapped__: Ray unwraps methods to read their signature, and must see this one.
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]


def _service_of(instance: Any) -> str:
    name = getattr(instance, "name", "") or getattr(instance, "service_name", "") or ""
    return str(name) or type(instance).__name__


def traced_method(method: F) -> F:
    """Continue the caller's trace in a SERVER span around one actor method."""
    if getattr(method, "__re_traced__", False):
        return method
    op = method.__qualname__

    def begin(self: Any, carrier: Mapping[str, str] | None) -> Any:
        if carrier is None and not _start_root():
            return None  # nobody traced this request: it costs a dict pop, not a span
        parent, peer = extract_context(carrier)
        attrs = {PEER_ATTR: peer} if peer else None
        return start_trace(
            op, _service_of(self), kind=SpanKind.SERVER, attributes=attrs, context=parent
        )

    wrapper: Any
    if inspect.iscoroutinefunction(method):

        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            span = begin(self, kwargs.pop(CARRIER_KWARG, None))
            if span is None:
                return await method(self, *args, **kwargs)
            try:
                result = await method(self, *args, **kwargs)
            except BaseException as exc:
                span.finish(TraceStatus.ERROR, f"{type(exc).__name__}: {exc}")
                raise
            span.finish(TraceStatus.SUCCESS)
            return result

        wrapper = async_wrapper
    else:

        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            span = begin(self, kwargs.pop(CARRIER_KWARG, None))
            if span is None:
                return method(self, *args, **kwargs)
            try:
                result = method(self, *args, **kwargs)
            except BaseException as exc:
                span.finish(TraceStatus.ERROR, f"{type(exc).__name__}: {exc}")
                raise
            span.finish(TraceStatus.SUCCESS)
            return result

        wrapper = sync_wrapper
    functools.update_wrapper(wrapper, method)  # keeps @ray.method's __ray_* options
    del wrapper.__wrapped__
    _with_carrier_signature(wrapper, method)
    wrapper.__re_traced__ = True
    return wrapper


def instrument_service_class(cls: C) -> C:
    """Trace every public method ``cls`` itself defines (hooks and generators excepted)."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or name in _UNTRACED or not inspect.isfunction(member):
            continue
        if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
            continue
        setattr(cls, name, traced_method(member))
    return cls


def traced_function(function: F) -> F:
    """For a Ray task's function: continue the caller's trace in a span named after it."""
    if getattr(function, "__re_traced__", False):
        return function
    op = function.__qualname__
    service = function.__module__

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        parent, peer = extract_context(kwargs.pop(CARRIER_KWARG, None))
        attrs = {PEER_ATTR: peer} if peer else None
        with start_trace(op, service, kind=SpanKind.SERVER, attributes=attrs, context=parent):
            return function(*args, **kwargs)

    functools.update_wrapper(wrapper, function)
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    _with_carrier_signature(wrapper, function)
    wrapper.__re_traced__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _accepts_carrier(params: list[inspect.Parameter] | None) -> bool:
    return bool(params) and any(
        p.name == CARRIER_KWARG or p.kind is inspect.Parameter.VAR_KEYWORD for p in params or ()
    )


class _TracedMethod:
    __slots__ = ("_accepts", "_method")

    def __init__(self, method: Any, accepts: bool) -> None:
        self._method = method
        self._accepts = accepts

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if self._accepts and CARRIER_KWARG not in kwargs:
            carrier = inject_context()
            if carrier is not None:
                kwargs[CARRIER_KWARG] = carrier
        return self._method.remote(*args, **kwargs)

    def options(self, **options: Any) -> _TracedMethod:
        return _TracedMethod(self._method.options(**options), self._accepts)


class TracedHandle:
    """An actor handle whose method calls carry the current trace context."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._signatures: dict[str, Any] = getattr(handle, "_ray_method_signatures", {}) or {}

    @property
    def actor_handle(self) -> Any:
        return self._handle

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._handle, name)
        if name.startswith("__") or not hasattr(method, "remote"):
            return method
        return _TracedMethod(method, _accepts_carrier(self._signatures.get(name)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (TracedHandle, (self._handle,))


class TracedRemoteFunction:
    """A remote function whose calls carry the current trace context."""

    def __init__(self, remote_function: Any) -> None:
        self._fn = remote_function
        original = getattr(remote_function, "_function", None)
        self._accepts = original is not None and _accepts_carrier(
            list(inspect.signature(original).parameters.values())
        )

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return _TracedMethod(self._fn, self._accepts).remote(*args, **kwargs)

    def options(self, **options: Any) -> TracedRemoteFunction:
        clone = TracedRemoteFunction.__new__(TracedRemoteFunction)
        clone._fn = self._fn.options(**options)
        clone._accepts = self._accepts
        return clone


def traced_handle(target: Any) -> Any:
    """Wrap an actor handle or a remote function so its calls carry the trace (idempotent)."""
    if isinstance(target, (TracedHandle, TracedRemoteFunction)):
        return target
    if hasattr(target, "_ray_method_signatures"):
        return TracedHandle(target)
    return TracedRemoteFunction(target)
