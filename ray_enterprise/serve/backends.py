"""The system actors as the management API sees them: found by name when first needed.

The API replica must come up even when a subsystem does not run (an operator may want
``/health`` precisely then), so nothing is looked up at start; a missing actor becomes
:class:`SubsystemUnavailable` (HTTP 503) for the routes that need it. A handle whose actor was
removed and created again under the same name is dropped and looked up once more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import ray
from ray.exceptions import RayActorError

from ray_enterprise import _kv, system_actors
from ray_enterprise.config.schema import SecurityFrameworkConfig

logger = logging.getLogger("ray_enterprise.serve")

T = TypeVar("T")

#: Subsystem -> the name of its system actor.
ACTORS = {
    "registry": system_actors.REGISTRY,
    "config": system_actors.CONFIG,
    "alerts": system_actors.ALERTS,
    "observability": system_actors.OBSERVABILITY,
}


async def security_section() -> SecurityFrameworkConfig:
    """The running security section, or its defaults when no ConfigActor runs."""
    try:
        handle = ray.get_actor(ACTORS["config"], namespace=_kv.NAMESPACE)
    except ValueError:
        logger.warning("no ConfigActor runs: using the default security config")
        return SecurityFrameworkConfig()
    section: SecurityFrameworkConfig = await handle.get.remote("security")
    return section


class SubsystemUnavailable(Exception):
    """A system actor the route needs is not running on this cluster (HTTP 503)."""

    def __init__(self, subsystem: str) -> None:
        super().__init__(f"the {subsystem} is not running; start it with `ray-enterprise up`")
        self.subsystem = subsystem


class SystemBackends:
    """Lazily found, cached handles to the registry, config, alert and observability actors."""

    def __init__(self, namespace: str = _kv.NAMESPACE) -> None:
        self._namespace = namespace
        self._handles: dict[str, Any] = {}

    def handle(self, subsystem: str) -> Any:
        found = self._handles.get(subsystem)
        if found is None:
            try:
                found = ray.get_actor(ACTORS[subsystem], namespace=self._namespace)
            except ValueError:
                raise SubsystemUnavailable(subsystem) from None
            self._handles[subsystem] = found
        return found

    async def call(self, subsystem: str, call: Callable[[Any], Awaitable[T]]) -> T:
        """``await call(handle)``, looking the actor up again once if it was replaced."""
        try:
            return await call(self.handle(subsystem))
        except RayActorError:
            self._handles.pop(subsystem, None)
            return await call(self.handle(subsystem))


__all__ = ["ACTORS", "SubsystemUnavailable", "SystemBackends", "security_section"]
