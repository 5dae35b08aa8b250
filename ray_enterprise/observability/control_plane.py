"""The GCS probe behind ControlPlaneUnreachable, and the alerts it holds while nobody listens.

The central observability actor probes from the head: it tells a GCS restart, but a lost head
takes it, and the alert actor, away with the GCS. So each collector on another node probes too:
it outlives the head, sees the whole outage, and keeps what it saw (:class:`HeldAlerts`) until
an alert actor answers again, then hands it over in order, dated when the outage began.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import ray

from ray_enterprise import _kv, system_actors

GCS_READ_TIMEOUT_S = 2.0  # a GCS read slower than this (or the period) counts as failed
PERIOD_S = 1.0  # how often the GCS is probed


async def probe_forever(key: str, observe: Callable[[bool, str, float | None], None]) -> None:
    """One cheap GCS read (``key`` in the key-value store) per period, told to ``observe(ok,
    detail, since)``. A read still hanging from before is not sent again; it counts as failing
    since it was sent (``since``, wall-clock seconds: the outage began then, not when the wait
    for it ended)."""
    pending: asyncio.Future[Any] | None = None
    sent = 0.0
    while True:
        if pending is None or pending.done():
            pending = asyncio.ensure_future(asyncio.to_thread(_kv.get, key))
            sent = time.time()
        done, _ = await asyncio.wait({pending}, timeout=GCS_READ_TIMEOUT_S)
        if done and pending.exception() is None:
            observe(True, "", None)
        elif done:
            exc = pending.exception()
            observe(False, f"{type(exc).__name__}: {exc}"[:200], sent)
        else:
            observe(False, f"no answer within {GCS_READ_TIMEOUT_S:.0f} s", sent)
        await asyncio.sleep(PERIOD_S)


class HeldAlerts:
    """Alert inputs kept until the alert actor has taken them.

    The in-process reporter (:func:`ray_enterprise.alerts.client.report_input`) drops what it
    cannot deliver within seconds, which is right for a restart of the alert actor alone but
    loses a whole head's outage: nothing answers until a new head has restarted the alert
    actor. One call is in flight at a time, and only what a failed call carried is sent again,
    so nothing arrives twice or out of order.
    """

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._sending: tuple[asyncio.Future[Any], int] | None = None  # in flight, items in it

    @property
    def held(self) -> int:
        return len(self._items)

    def add(self, items: list[Any]) -> None:
        self._items.extend(items)

    async def deliver(self) -> None:
        """One step: settle the call in flight, or send what is held. Call it while the GCS
        answers (the alert actor is looked up by name)."""
        if self._sending is not None:
            call, count = self._sending
            if not call.done():
                return
            self._sending = None
            if call.exception() is None:
                del self._items[:count]
            return  # else no alert actor took them: the next step sends them again
        if not self._items:
            return
        try:
            handle = await asyncio.to_thread(
                ray.get_actor, system_actors.ALERTS, namespace=_kv.NAMESPACE
            )
        except Exception:  # none runs yet (or the lookup failed): the next step tries again
            return
        ref = handle.ingest.remote(list(self._items))
        self._sending = (asyncio.ensure_future(_result(ref)), len(self._items))


async def _result(ref: Any) -> Any:
    return await ref
