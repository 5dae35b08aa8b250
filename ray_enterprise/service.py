"""The base class of every supervised service.

Subclass :class:`Service`, override the hooks you need, and register the class: the registry
turns it into a detached Ray actor, calls the hooks and supervises it. Do not decorate it with
``@ray.remote`` yourself.

Hooks, when they run and what may happen inside them:

``start()``
    Once per actor, after construction and before the first health check, on the actor's
    default event loop (the one that runs your own methods). Open connections and start
    background tasks here. Raising fails the start; the registry restarts per policy.
``check_health() -> Health``
    Every ``health.period_s`` seconds, on an event loop of its own, so a service whose own
    methods are busy still answers. Read state; do not await objects created by your other
    methods (they belong to another loop). Raising or exceeding ``health.timeout_s`` counts as
    a failed check. The default reports healthy while the actor runs. This is the liveness
    probe: ``health.failure_threshold`` failures in a row restart the service.
``check_ready() -> Health``
    Right after each passed ``check_health()``, on the same loop, with the same timeout. Not
    ready takes this replica out of the routes a ``ServiceHandle`` reads (callers' calls go to
    the other replicas, or wait up to ``call_wait_s``) but never restarts it: say not ready
    while a cache warms or a downstream is saturated. It takes calls again after
    ``health.success_threshold`` ready answers in a row. The default is ready whenever healthy.
``on_dependency_change(name, state)``
    When a dependency stops being up (``state`` is e.g. ``"restarting"``) or is up again
    (``"healthy"``). The registry marks this service DEGRADED meanwhile; it is never killed for
    a dependency's sake unless its strategy is ``rest_for_one``.
``on_config(section, value, version)``
    When the service's ``config_section`` (its spec names it, e.g. ``cache`` or
    ``services.search``) has a new version: once right after ``start()`` with the running
    value, then after every change, on the default event loop, one call at a time and in rising
    ``version`` order (an old or repeated version is never passed). ``value`` is the section's
    validated model (or a dict for ``services.<name>``), secrets as ``SecretStr``. Swap the
    new value in; raising is logged and the version still counts as applied (the ConfigActor
    does not retry a value the service refused).
``stop()``
    On an orderly shutdown, within ``shutdown_timeout_s``; the actor is killed afterwards
    either way. Not called after a crash. A replica taken away (a scale-down, an upgrade, an
    orderly shutdown) gets it only after its calls in flight returned, or after
    ``graceful_shutdown_timeout_s`` if one never does: the kill then cuts it.

Your own public methods are counted (calls, exceptions, calls in flight): an upgrade's gate
compares error rates from these counts, a drain waits on them, and autoscaling reads them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import ray

from ray_enterprise import latency
from ray_enterprise.backoff import Backoff

if TYPE_CHECKING:
    from pydantic import BaseModel

#: Concurrency groups every service actor is created with. Health checks and the registry's
#: crash watch must not queue behind a busy service's own calls.
CONCURRENCY_GROUPS: dict[str, int] = {"re_health": 2, "re_watch": 4}
#: How often a service renews its config subscription (it costs nothing when nothing changed),
#: so that a ConfigActor that was replaced, not restarted, still finds it.
CONFIG_RENEW_S = 30.0

logger = logging.getLogger("ray_enterprise.service")


@dataclass(frozen=True)
class Health:
    """The answer to one health check."""

    ok: bool
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def healthy(cls, detail: str = "", **data: Any) -> Health:
        return cls(True, detail, dict(data))

    @classmethod
    def unhealthy(cls, detail: str, **data: Any) -> Health:
        return cls(False, detail, dict(data))


class Service:
    """Base class of service actors; see the module docstring for the hooks' contract."""

    #: Name used when the class is registered without one (default: the class name in
    #: snake_case, e.g. ``CacheService`` -> ``cache_service``).
    service_name: str | None = None

    name: str = ""
    config: dict[str, Any] = {}
    generation: int = 0
    _re_started: bool = False
    _re_outcome: str = "running"
    #: A pydantic model for this service's own ``services.<name>`` config section. When set,
    #: the ConfigActor validates that section with it (a bad value is rejected naming
    #: ``services.<name>.<field>`` and its source) and ``on_config`` receives the validated
    #: section, defaults filled in, as a plain dict.
    config_model: ClassVar[type[BaseModel] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every service's public methods continue the caller's trace (see
        :mod:`ray_enterprise.observability.trace_context`), so a request through several
        services is one trace without each class opting in; the registry's hooks are not
        traced, or every health check would be a trace."""
        super().__init_subclass__(**kwargs)
        from ray_enterprise.observability.trace_context import instrument_service_class

        instrument_service_class(cls)

    @property
    def _re_done(self) -> threading.Event:
        # Per instance, created lazily so a subclass __init__ that skips super() still works.
        event: threading.Event | None = self.__dict__.get("_re_done_event")
        if event is None:
            event = self.__dict__.setdefault("_re_done_event", threading.Event())
        return event

    @property
    def _re_dependencies(self) -> dict[str, Any]:
        return self.__dict__.setdefault("_re_dependency_cache", {})

    @property
    def _re_dependency_states(self) -> dict[str, str]:
        return self.__dict__.setdefault("_re_dependency_state", {})

    @property
    def _re_config_versions(self) -> dict[str, int]:
        return self.__dict__.setdefault("_re_config_version", {})

    # -- hooks for subclasses -------------------------------------------------------------

    async def start(self) -> None:
        """Acquire resources; the default does nothing."""

    async def stop(self) -> None:
        """Release resources; the default does nothing."""

    async def check_health(self) -> Health:
        """Report health; the default is healthy while the actor runs."""
        return Health.healthy()

    async def check_ready(self) -> Health:
        """Report readiness to take calls; the default is ready whenever healthy."""
        return Health.healthy()

    async def on_dependency_change(self, name: str, state: str) -> None:
        """React to a dependency going down or coming back; the default does nothing."""

    async def on_config(self, section: str, value: Any, version: int) -> None:
        """Take a new version of the config section; the default does nothing."""

    # -- helpers for subclasses -----------------------------------------------------------

    async def dependency(self, name: str) -> Any:
        """The actor handle of a dependency (trace-carrying), resolved through the registry
        and cached.

        The cache entry is dropped when the dependency changes state, so a restarted
        dependency's new actor is picked up on the next call.
        """
        handle = self._re_dependencies.get(name)
        if handle is None:
            from ray_enterprise.observability.trace_context import traced_handle
            from ray_enterprise.runtime import registry_actor

            # Calls through it carry this method's trace to the dependency.
            handle = traced_handle(await registry_actor().get_service.remote(name, 30.0))
            self._re_dependencies[name] = handle
        return handle

    def forget_dependency(self, name: str) -> None:
        """Drop a cached handle, e.g. after a call to it raised ``ActorDiedError``."""
        self._re_dependencies.pop(name, None)

    @property
    def dependency_states(self) -> dict[str, str]:
        """The last state the registry announced for each dependency that changed."""
        return dict(self._re_dependency_states)

    @property
    def config_version(self) -> int:
        """The last config version applied through ``on_config`` (0: none yet)."""
        return max(self._re_config_versions.values(), default=0)

    async def complete(self) -> None:
        """End this service on its own accord: a transient or temporary one is not restarted."""
        self._re_outcome = "completed"
        self._re_done.set()

    # -- the registry's entry points (not for users) --------------------------------------

    async def _re_start(
        self,
        name: str,
        config: dict[str, Any],
        generation: int,
        config_section: str | None = None,
    ) -> str:
        """Bind identity and run ``start()`` once; idempotent so an adopted actor is safe."""
        if not self._re_started:
            self.name = name
            self.config = dict(config)
            self.generation = generation
            await self.start()
            self._re_started = True
        if config_section and "_re_config_task" not in self.__dict__:
            task = asyncio.get_running_loop().create_task(self._re_subscribe(config_section))
            self.__dict__["_re_config_task"] = task
        return str(ray.get_runtime_context().get_node_id())

    async def _re_subscribe(self, section: str) -> None:
        """Subscribe to ``section``, saying the last version applied; renew now and then.

        Without a ConfigActor (none booted yet) it keeps looking, backing off, so a service
        started before the config system still gets its section once that comes up.
        """
        from ray_enterprise.config.actor import get_config_handle

        context = ray.get_runtime_context()
        actor, namespace = context.get_actor_name(), context.namespace
        backoff = Backoff(0.5, 5.0)
        while True:
            try:
                handle = get_config_handle(create=False)
                applied = self._re_config_versions.get(section, 0)
                model = type(self).config_model
                if model is not None and section.startswith("services."):
                    cls = type(self)
                    path = f"{cls.__module__}:{cls.__qualname__}"
                    await handle.declare_model.remote(section.split(".", 1)[1], path)
                await handle.subscribe.remote(section, actor, namespace, "_re_config", applied)
            except ValueError:  # no ConfigActor (yet)
                await asyncio.sleep(backoff.next())
                continue
            except Exception as exc:
                logger.warning(
                    "config subscription of %s to %s failed: %s", self.name, section, exc
                )
                await asyncio.sleep(1.0)
                continue
            backoff.reset()
            await asyncio.sleep(CONFIG_RENEW_S)

    @property
    def _re_config_lock(self) -> asyncio.Lock:
        lock: asyncio.Lock | None = self.__dict__.get("_re_config_lock_obj")
        if lock is None:
            lock = self.__dict__.setdefault("_re_config_lock_obj", asyncio.Lock())
        return lock

    async def _re_config(self, section: str, value: Any, version: int) -> int:
        """Apply a pushed version in order: older or repeated versions are ignored."""
        async with self._re_config_lock:
            applied = self._re_config_versions.get(section, 0)
            if version <= applied:
                return applied
            try:
                await self.on_config(section, value, version)
            except Exception:
                logger.exception(
                    "on_config(%s, version %d) of %s failed", section, version, self.name
                )
            self._re_config_versions[section] = version
            return version

    async def _re_stop(self) -> None:
        self._re_outcome = "stopped"
        try:
            if self._re_started:  # stop() may rely on what start() set up
                await self.stop()
        finally:
            self._re_done.set()

    async def _re_dependency_change(self, name: str, state: str) -> None:
        self._re_dependencies.pop(name, None)
        self._re_dependency_states[name] = state
        await self.on_dependency_change(name, state)

    @ray.method(concurrency_group="re_health")
    async def _re_health(self) -> tuple[bool, str, bool, str]:
        """Liveness, then readiness when live: ``(ok, detail, ready, ready_detail)``. One call
        for both, so readiness costs no second round trip per period."""
        if not self._re_started:
            return False, "start() has not completed", False, ""
        ok, detail = _answer(await self.check_health())
        if not ok:
            return ok, detail, False, ""
        if type(self).check_ready is Service.check_ready:
            return ok, detail, True, ""
        try:
            ready, ready_detail = _answer(await self.check_ready())
        except Exception as exc:  # readiness never restarts: raising is only "not ready"
            ready, ready_detail = False, f"check_ready raised {type(exc).__name__}: {exc}"
        return ok, detail, ready, ready_detail

    @ray.method(concurrency_group="re_health")
    async def _re_stats(self) -> dict[str, Any]:
        """Calls and errors of the user's methods so far, how many run now and how long they
        took (bucket counts, :mod:`ray_enterprise.latency`): what the upgrade gate compares
        and what a drain waits on."""
        return {**self._re_counts, "latency": list(self._re_latency)}

    @property
    def _re_counts(self) -> dict[str, int]:
        return self.__dict__.setdefault("_re_count", {"calls": 0, "errors": 0, "inflight": 0})

    @property
    def _re_latency(self) -> list[int]:
        return self.__dict__.setdefault("_re_latency_buckets", latency.empty())

    @ray.method(concurrency_group="re_watch")
    async def _re_watch(self, timeout_s: float) -> str:
        """Long-poll that returns when the service ends; its failure is how a crash is seen."""
        await asyncio.to_thread(self._re_done.wait, timeout_s)
        return self._re_outcome if self._re_done.is_set() else "timeout"


def _answer(health: Health | bool) -> tuple[bool, str]:
    if isinstance(health, bool):  # tolerate a plain bool from a hand-written override
        return health, ""
    return bool(health.ok), str(health.detail)


def counted(cls: type) -> type:
    """A subclass whose public methods count their calls, errors and calls in flight.

    The registry creates every service actor from it, so an upgrade can compare the new
    version's error rate with the old one's and drain a replica until its last call returned,
    without asking anything of the service's author. Hooks and ``_``-methods are not counted.
    """
    wrapped: dict[str, Any] = {}
    for name in dir(cls):
        if name.startswith("_") or hasattr(Service, name):
            continue
        attr = inspect.getattr_static(cls, name)
        if not inspect.isfunction(attr):
            continue
        wrapped[name] = _counting(attr)
    return type(cls.__name__, (cls,), {**wrapped, "__module__": cls.__module__})


def _counting(fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call_async(self: Service, *args: Any, **kwargs: Any) -> Any:
            counts = self._re_counts
            counts["calls"] += 1
            counts["inflight"] += 1
            began = time.perf_counter()
            try:
                return await fn(self, *args, **kwargs)
            except BaseException:
                counts["errors"] += 1
                raise
            finally:
                counts["inflight"] -= 1
                self._re_latency[latency.bucket_of(time.perf_counter() - began)] += 1

        return call_async

    @functools.wraps(fn)
    def call(self: Service, *args: Any, **kwargs: Any) -> Any:
        counts = self._re_counts
        counts["calls"] += 1
        counts["inflight"] += 1
        began = time.perf_counter()
        try:
            return fn(self, *args, **kwargs)
        except BaseException:
            counts["errors"] += 1
            raise
        finally:
            counts["inflight"] -= 1
            self._re_latency[latency.bucket_of(time.perf_counter() - began)] += 1

    return call


def default_service_name(cls: type) -> str:
    """``CacheService`` -> ``cache_service``; a class may set ``service_name`` instead."""
    explicit = getattr(cls, "service_name", None)
    if explicit:
        return str(explicit)
    out: list[str] = []
    for i, ch in enumerate(cls.__name__):
        if ch.isupper() and i and not cls.__name__[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
