"""A service whose faults are controlled from outside: for tests, demos and chaos drills."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import ray

from ray_enterprise.service import Health, Service


class FaultyService(Service):
    """Config: ``start_delay_s``, ``fail_start`` (raise in start), ``healthy`` and ``ready``
    (initial), ``not_ready_from`` (replicas of this index and above say not ready),
    ``version`` (what ``work`` reports), ``fail_every`` (``work`` raises on every n-th call),
    ``work_delay_s`` (added to every ``work`` call: a slow version), ``complete_after_s``
    (end on its own accord, as a finished batch job does).

    Calls: ``set_healthy(bool)``, ``set_ready(bool)``, ``crash()`` (SIGKILL of its own
    process), ``pid()``, ``events()`` (the hooks it saw, with times), ``echo(x)``,
    ``work(x, delay_s)``, ``relay(dependency, x, delay_s)`` (``work`` on a dependency) and
    ``stats()`` (health, events and health checks seen).
    """

    async def start(self) -> None:
        self._events: list[tuple[str, Any, float]] = [("start", self.generation, time.time())]
        delay = float(self.config.get("start_delay_s", 0.0))
        if delay:
            await asyncio.sleep(delay)
        if self.config.get("fail_start"):
            raise RuntimeError("configured to fail in start()")
        self._healthy = bool(self.config.get("healthy", True))
        self._ready = bool(self.config.get("ready", True))
        # ``not_ready_from``: replicas with this index or above say not ready (a rollout that
        # stalls after its canary); the index is the tail of the actor name, svc:x:3.<i>.
        since = self.config.get("not_ready_from")
        actor = ray.get_runtime_context().get_actor_name() or ""
        _, dot, index = actor.rpartition(":")[2].partition(".")
        if since is not None and (int(index) if dot else 0) >= int(since):
            self._ready = False
        self._events.append(("started", self.generation, time.time()))
        after = self.config.get("complete_after_s")
        if after is not None:
            self._completion = asyncio.get_running_loop().call_later(
                float(after), lambda: asyncio.ensure_future(self.complete())
            )

    async def stop(self) -> None:
        self._events.append(("stop", self.generation, time.time()))
        marker = self.config.get("stop_marker")
        if marker:
            with open(marker, "a", encoding="utf-8") as fh:
                fh.write(f"{self.name} {time.time()}\n")

    async def check_health(self) -> Health:
        self._checks = getattr(self, "_checks", 0) + 1
        return Health(self._healthy, "" if self._healthy else "told to be unhealthy")

    async def check_ready(self) -> Health:
        return Health(self._ready, "" if self._ready else "told to be not ready")

    async def on_dependency_change(self, name: str, state: str) -> None:
        self._events.append(("dependency", (name, state), time.time()))

    async def set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy

    async def set_ready(self, ready: bool) -> None:
        self._ready = ready

    async def crash(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    async def pid(self) -> int:
        return os.getpid()

    async def events(self) -> list[tuple[str, Any, float]]:
        return list(self._events)

    async def echo(self, value: Any) -> Any:
        return value

    async def work(self, value: Any, delay_s: float = 0.0) -> dict[str, Any]:
        """A call that takes ``delay_s`` and says which version and replica answered."""
        self._works = getattr(self, "_works", 0) + 1
        delay_s += float(self.config.get("work_delay_s", 0.0))
        if delay_s:
            await asyncio.sleep(delay_s)
        every = int(self.config.get("fail_every", 0))
        if every and self._works % every == 0:
            raise RuntimeError(f"configured to fail every {every} calls")
        return {"value": value, "version": self.config.get("version"), "pid": os.getpid()}

    async def relay(self, dependency: str, value: Any, delay_s: float = 0.0) -> dict[str, Any]:
        """``work`` on a dependency, through the handle ``self.dependency`` keeps."""
        handle = await self.dependency(dependency)
        answer: dict[str, Any] = await handle.work.remote(value, delay_s)
        return answer

    async def stats(self) -> dict[str, Any]:
        return {
            "healthy": self._healthy,
            "events": len(self._events),
            "checks": getattr(self, "_checks", 0),
        }
