"""Every replica's health probes and watch call, from one loop: each tick sends the probes
that are due and polls every probe still out with one ``ray.wait``.

Ray Serve's controller checks its replicas this way: each tick it starts the health checks
that are due and looks, without waiting, at the refs of those still out. Awaiting each call
instead (one asyncio task, one future and one timer per replica and probe) is what the
registry did before; ``benchmarks/probe_cost.py`` measures the two side by side.

The watch call (always pending on the actor, so a SIGKILL is seen at once) has no task either:
its ref's completion callback hands it to the loop when it returns, at once, which is what a
death needs. Polling it in the tick's ``ray.wait`` instead would cost a wait over every
replica's watch ref 20 times a second to catch an event that comes every 30 s (the poll) or
at a death: the tick would never be idle. What an answer means is the owner's business
(:class:`ProbeOwner`); when the next probe goes out is :class:`ProbeSchedule`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ray

from ray_enterprise.registry.probe_schedule import ProbeSchedule
from ray_enterprise.registry.replica_wrapper import (
    Check,
    ReplicaActor,
    read_check,
    read_watch,
    timed_out,
)

logger = logging.getLogger("ray_enterprise.registry")

PROBE_TICK_S = 0.05  # the registry's reconcile tick
WATCH_POLL_S = 30.0  # the watch call returns this often even when nothing happened


class ProbeOwner(Protocol):
    """What the prober asks of the replicas' owner (the registry's :class:`ReplicaManager`)."""

    def probe_timeout(self, rid: str) -> float | None:
        """The timeout of the probe about to go out, or None: stop probing and watching it."""

    def checked(self, rid: str, check: Check) -> None:
        """A probe's outcome; the owner says when the next one goes out (:meth:`Prober.again`)."""

    def watched(self, rid: str, outcome: str) -> None:
        """A watch call returned (:func:`read_watch`); the owner says whether to watch on
        (:meth:`Prober.watch_again`)."""


@dataclass
class ProbeStats:
    """Counters the batching is judged by: one ``ray.wait`` per tick, however many probes."""

    ticks: int = 0
    waits: int = 0  # ray.wait calls (only in ticks with a probe out)
    sent: int = 0  # probes sent
    answered: int = 0  # probes that came back (timeouts not included)
    timed_out: int = 0
    watches: int = 0  # watch calls that came back
    most_in_one_wait: int = 0  # the most answers one ray.wait returned


class Prober:
    """One loop on the registry's event loop probing and watching every replica added."""

    def __init__(
        self,
        owner: ProbeOwner,
        *,
        tick_s: float = PROBE_TICK_S,
        watch_poll_s: float = WATCH_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._owner = owner
        self.tick_s = tick_s
        self._watch_poll_s = watch_poll_s
        self._clock = clock
        self.schedule = ProbeSchedule()
        self.stats = ProbeStats()
        self._actors: dict[str, ReplicaActor] = {}
        self._probes: dict[Any, str] = {}  # ObjectRef of a probe out -> its replica
        self._probe_of: dict[str, Any] = {}  # replica -> its probe's ObjectRef
        self._watch_of: dict[str, Any] = {}  # replica -> its watch call's ObjectRef
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, rid: str, actor: ReplicaActor) -> None:
        """Watch the replica from now on; its probes begin at the first :meth:`again`."""
        self.remove(rid)
        self.schedule.add(rid, self._clock(), probe=False)
        self._actors[rid] = actor
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self.run_forever())

    def remove(self, rid: str) -> None:
        """Neither probed nor watched any more; what is out for it is never read."""
        self.schedule.remove(rid)
        self._actors.pop(rid, None)
        self._probes.pop(self._probe_of.pop(rid, None), None)
        self._watch_of.pop(rid, None)  # its callback finds it gone

    def clear(self) -> None:
        for rid in list(self._actors):
            self.remove(rid)

    def close(self) -> None:
        """Stop the loop too (the registry's runs as long as the registry does)."""
        self.clear()
        if self._task is not None:
            self._task.cancel()

    def again(self, rid: str, period_s: float) -> None:
        """Probe it next ``period_s`` after its last probe went out (see
        :meth:`ProbeSchedule.again`)."""
        self.schedule.again(rid, period_s, self._clock())

    def watch_again(self, rid: str, delay_s: float | None) -> None:
        self.schedule.watch_again(rid, None if delay_s is None else self._clock() + delay_s)

    async def run_forever(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad answer
                logger.exception("probe tick failed")
            await asyncio.sleep(self.tick_s)

    def tick(self) -> None:
        """Read every answer that came back, time out the late, send what is due."""
        self.stats.ticks += 1
        self._collect()
        now = self._clock()
        for rid in self.schedule.expired(now):
            if rid in self.schedule:
                self._probes.pop(self._probe_of.pop(rid, None), None)
                self.stats.timed_out += 1
                self._tell(self._owner.checked, rid, timed_out(self.schedule.slots[rid].timeout_s))
        for rid in self.schedule.probes_due(now):
            actor = self._actors.get(rid)
            timeout = self._owner.probe_timeout(rid) if actor is not None else None
            if actor is None or timeout is None:
                self.remove(rid)
                continue
            ref = actor.send_check()
            self._probes[ref], self._probe_of[rid] = rid, ref
            self.schedule.sent(rid, now, timeout)
            self.stats.sent += 1
        for rid in self.schedule.watches_due(now):
            self._send_watch(rid)

    def _collect(self) -> None:
        if not self._probes:
            return
        refs = list(self._probes)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=True)
        self.stats.waits += 1
        self.stats.most_in_one_wait = max(self.stats.most_in_one_wait, len(ready))
        for ref in ready:
            # An owner's decision may remove any replica: its refs are then no longer here.
            if (rid := self._probes.pop(ref, None)) is not None:
                self._probe_of.pop(rid, None)
                self.schedule.answered(rid)
                self.stats.answered += 1
                self._tell(self._owner.checked, rid, read_check(ref))

    def _send_watch(self, rid: str) -> None:
        ref = self._actors[rid].send_watch(self._watch_poll_s)
        self._watch_of[rid] = ref
        self.schedule.watch_sent(rid)
        loop = self._loop
        if loop is None:
            return

        def returned(_: Any) -> None:  # on a Ray thread: hand it to the loop
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(self._watch_returned, rid, ref)

        ref.future().add_done_callback(returned)

    def _watch_returned(self, rid: str, ref: Any) -> None:
        if self._watch_of.get(rid) is not ref:
            return  # removed (or watched anew) since
        del self._watch_of[rid]
        self.stats.watches += 1
        self._tell(self._owner.watched, rid, read_watch(ref))

    def _tell(self, told: Callable[[str, Any], None], rid: str, outcome: Any) -> None:
        try:
            told(rid, outcome)
        except Exception:  # one replica's bad step must not cost the others their checks
            logger.exception("judging %s of %s failed", outcome, rid)
