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
    a failed check. The default reports healthy while the actor runs.
``on_dependency_change(name, state)``
    When a dependency stops being up (``state`` is e.g. ``"restarting"``) or is up again
    (``"healthy"``). The registry marks this service DEGRADED meanwhile; it is never killed for
    a dependency's sake unless its strategy is ``rest_for_one``.
``stop()``
    On an orderly shutdown, within ``shutdown_timeout_s``; the actor is killed afterwards
    either way. Not called after a crash.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import ray

#: Concurrency groups every service actor is created with. Health checks and the registry's
#: crash watch must not queue behind a busy service's own calls.
CONCURRENCY_GROUPS: dict[str, int] = {"re_health": 2, "re_watch": 4}


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

    # -- hooks for subclasses -------------------------------------------------------------

    async def start(self) -> None:
        """Acquire resources; the default does nothing."""

    async def stop(self) -> None:
        """Release resources; the default does nothing."""

    async def check_health(self) -> Health:
        """Report health; the default is healthy while the actor runs."""
        return Health.healthy()

    async def on_dependency_change(self, name: str, state: str) -> None:
        """React to a dependency going down or coming back; the default does nothing."""

    # -- helpers for subclasses -----------------------------------------------------------

    async def dependency(self, name: str) -> Any:
        """The actor handle of a dependency, resolved through the registry and cached.

        The cache entry is dropped when the dependency changes state, so a restarted
        dependency's new actor is picked up on the next call.
        """
        handle = self._re_dependencies.get(name)
        if handle is None:
            from ray_enterprise.runtime import registry_actor

            handle = await registry_actor().get_service.remote(name, 30.0)
            self._re_dependencies[name] = handle
        return handle

    def forget_dependency(self, name: str) -> None:
        """Drop a cached handle, e.g. after a call to it raised ``ActorDiedError``."""
        self._re_dependencies.pop(name, None)

    @property
    def dependency_states(self) -> dict[str, str]:
        """The last state the registry announced for each dependency that changed."""
        return dict(self._re_dependency_states)

    async def complete(self) -> None:
        """End this service on its own accord: a transient or temporary one is not restarted."""
        self._re_outcome = "completed"
        self._re_done.set()

    # -- the registry's entry points (not for users) --------------------------------------

    async def _re_start(self, name: str, config: dict[str, Any], generation: int) -> str:
        """Bind identity and run ``start()`` once; idempotent so an adopted actor is safe."""
        if not self._re_started:
            self.name = name
            self.config = dict(config)
            self.generation = generation
            await self.start()
            self._re_started = True
        return str(ray.get_runtime_context().get_node_id())

    async def _re_stop(self) -> None:
        self._re_outcome = "stopped"
        try:
            await self.stop()
        finally:
            self._re_done.set()

    async def _re_dependency_change(self, name: str, state: str) -> None:
        self._re_dependencies.pop(name, None)
        self._re_dependency_states[name] = state
        await self.on_dependency_change(name, state)

    @ray.method(concurrency_group="re_health")
    async def _re_health(self) -> tuple[bool, str]:
        if not self._re_started:
            return False, "start() has not completed"
        health = await self.check_health()
        if isinstance(health, bool):  # tolerate a plain bool from a hand-written override
            return health, ""
        return bool(health.ok), str(health.detail)

    @ray.method(concurrency_group="re_watch")
    async def _re_watch(self, timeout_s: float) -> str:
        """Long-poll that returns when the service ends; its failure is how a crash is seen."""
        await asyncio.to_thread(self._re_done.wait, timeout_s)
        return self._re_outcome if self._re_done.is_set() else "timeout"


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
