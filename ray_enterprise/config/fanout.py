"""Pushing sections to subscribers: in version order, at least once, catching up by itself.

Delivery is level-triggered rather than a queue of messages: each subscription remembers the
last version its subscriber acknowledged, and one task per subscription sends the section's
*current* value whenever that is behind the version at which the section last changed. A slow
or returning subscriber therefore never replays a backlog, versions it sees only rise, and a
subscriber that says "I last applied N" (etcd's watch-from-revision) gets exactly what it
missed. Sending is injected, so this needs no Ray.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from ray_enterprise.backoff import Backoff

log = logging.getLogger("ray_enterprise.config")


class SubscriberGone(Exception):
    """Raised by a send function when the subscriber no longer exists: drop it."""


@dataclass
class Subscription:
    """A named actor that wants ``section``, delivered by calling ``method(section, value,
    version)`` on it; ``acked`` is the last version it confirmed."""

    section: str
    actor: str
    namespace: str
    method: str
    acked: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.actor}/{self.section}/{self.method}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: ``current(section) -> (value, version at which it last changed)``
Current = Callable[[str], tuple[Any, int]]
Send = Callable[[Subscription, Any, int], Awaitable[None]]


class Fanout:
    """One delivery task per subscription; :meth:`changed` wakes those of changed sections."""

    def __init__(
        self, current: Current, send: Send, *, retry_s: float = 0.2, retry_max_s: float = 5.0
    ) -> None:
        self._current = current
        self._send = send
        self._retry_s = retry_s
        self._retry_max_s = retry_max_s
        self._subs: dict[str, Subscription] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Called with a subscription dropped because its subscriber is gone.
        self.on_drop: Callable[[Subscription], None] = lambda sub: None

    def add(self, sub: Subscription) -> None:
        """Start delivering to ``sub``; the same key again only resets what it acknowledged.

        Subscribers renew their subscription now and then (it costs nothing), so a renewal
        must not restart a delivery that is in flight.
        """
        existing = self._subs.get(sub.key)
        if existing is not None:
            existing.acked = sub.acked
            self._wakes[sub.key].set()
            return
        self._subs[sub.key] = sub
        wake = self._wakes[sub.key] = asyncio.Event()
        wake.set()  # look once now: the subscriber may already be behind
        self._tasks[sub.key] = asyncio.get_running_loop().create_task(self._deliver(sub, wake))

    def remove(self, key: str) -> bool:
        task = self._tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._wakes.pop(key, None)
        return self._subs.pop(key, None) is not None

    def changed(self, sections: tuple[str, ...] | list[str]) -> None:
        wanted = set(sections)
        for key, sub in self._subs.items():
            if sub.section in wanted:
                self._wakes[key].set()

    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    async def close(self, timeout: float = 2.0) -> None:
        """Stop every delivery; a send stuck in flight is abandoned after ``timeout``."""
        tasks = list(self._tasks.values())
        for key in list(self._subs):
            self.remove(key)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _deliver(self, sub: Subscription, wake: asyncio.Event) -> None:
        delay = Backoff(self._retry_s, self._retry_max_s)
        while True:
            await wake.wait()
            wake.clear()
            value, version = self._current(sub.section)
            if sub.acked >= version:
                continue
            try:
                await self._send(sub, value, version)
            except asyncio.CancelledError:
                raise
            except SubscriberGone:
                log.info("config subscriber %s is gone; subscription dropped", sub.key)
                self.remove(sub.key)
                self.on_drop(sub)
                return
            except Exception as exc:  # unreachable for now: try again, backing off
                log.warning("config push to %s failed (%s); retrying", sub.key, type(exc).__name__)
                wake.set()
                await asyncio.sleep(delay.next())
                continue
            delay.reset()
            sub.acked = max(sub.acked, version)
            wake.set()  # a newer version may have landed while this one was in flight
