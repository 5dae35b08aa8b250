"""The node collector: one actor per node between every process on it and the central actor.

Processes ship to the collector of their own node (cheap, local) and the collector merges what
all of them sent into one batch per interval for the central observability actor, so the central
actor receives one call per node per interval however many processes record. Past
:data:`FORWARD_AT_POINTS` held points it forwards at once instead of waiting for the interval:
at a high rate the timer would only add its wait to every point and let the buffer run into
:data:`MAX_HELD_POINTS`, while the calls to the central actor stay one per that many points.
It is detached, pinned to its node and restarted by Ray forever; a SIGKILL loses at most what
it held since its last forward.

Off the head it also watches the GCS (ControlPlaneUnreachable): it outlives the head's loss,
which takes the central actor and the alert actor with it (see :mod:`.control_plane`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise import system_actors
from ray_enterprise.alerts.client import RestartAlert
from ray_enterprise.observability.control_plane import PERIOD_S, HeldAlerts, probe_forever
from ray_enterprise.observability.fault_watch import ControlPlaneWatch
from ray_enterprise.observability.metric_batch import MetricBatch, merge_batches
from ray_enterprise.system_actors import NAMESPACE, system_actor_options

logger = logging.getLogger("ray_enterprise.observability")

COLLECTOR_PREFIX = system_actors.COLLECTOR_PREFIX
CENTRAL_NAME = system_actors.OBSERVABILITY
#: Past this many buffered points (central actor unreachable), batches are dropped and counted.
MAX_HELD_POINTS = 2_000_000
MAX_HELD_SPANS = 200_000
#: Held points that make the collector forward before its interval is up (one recorder flush's
#: bound: a busy process's every flush goes straight on, small ones are still merged).
FORWARD_AT_POINTS = 100_000
_HEAD = "node:__internal_head__"
_PROBE_KEY = "observability/nodes"  # any key does: the read is what is timed


def collector_name(node_id: str) -> str:
    return f"{COLLECTOR_PREFIX}{node_id}"


class CollectorActor:
    """Merges the batches and spans of its node and forwards them every ``forward_interval_s``,
    or as soon as it holds ``forward_at_points`` points."""

    def __init__(
        self,
        forward_interval_s: float = 0.5,
        *,
        forward_at_points: int = FORWARD_AT_POINTS,
        recreated: bool = False,
    ) -> None:
        node = ray.get_runtime_context().get_node_id()
        restart_alert = RestartAlert(f"collector:{node}", recreated=recreated)
        self._interval = forward_interval_s
        self._forward_at = forward_at_points
        self._due = asyncio.Event()  # set when enough is held to forward before the interval
        self._batches: list[MetricBatch] = []
        self._held_points = 0
        self._spans: list[Any] = []
        self._dropped = 0
        self._central: Any = None
        self._forwarded_points = 0
        self._forward_failed = False
        self._lock = asyncio.Lock()
        self._node = node
        self._control_plane = ControlPlaneWatch()
        self._held = HeldAlerts()
        loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._forward_forever())
        self._watch_task = loop.create_task(self._watch_control_plane_forever())
        restart_alert.recovered()  # nothing to restore: what it held died with it

    async def ping(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    async def pid(self) -> int:
        return os.getpid()

    async def process_id(self) -> int:
        """The same as :meth:`pid` (the older name)."""
        return os.getpid()

    async def ingest(self, batch: MetricBatch) -> None:
        points = batch.point_count
        if self._held_points + points > MAX_HELD_POINTS:
            self._dropped += points
            return
        self._held_points += points
        self._batches.append(batch)
        if self._held_points >= self._forward_at:
            self._due.set()

    async def ingest_spans(self, spans: list[Any]) -> None:
        room = MAX_HELD_SPANS - len(self._spans)
        if room < len(spans):
            self._dropped += len(spans) - max(room, 0)
            spans = spans[: max(room, 0)]
        self._spans.extend(spans)

    async def flush(self) -> int:
        """Forward what is held now and wait for the central actor; returns points forwarded.

        What is held is taken before the first ``await``: batches that arrive while a forward
        is in flight belong to the next one (and are never cleared by this one).
        """
        async with self._lock:
            batches, self._batches = self._batches, []
            spans, self._spans = self._spans, []
            dropped, self._dropped = self._dropped, 0
            self._held_points = 0
            if not batches and not spans and not dropped:
                return 0
            merged = merge_batches(batches)
            merged.dropped += dropped
            metrics_sent = not (merged.series or merged.refused or merged.dropped)
            try:
                central = self._central_handle()
                if not metrics_sent:
                    await central.ingest.remote(merged)
                    metrics_sent = True
                if spans:
                    await central.ingest_spans.remote(spans)
                    spans = []
            except Exception as exc:  # central actor missing or restarting: keep and retry
                self._central = None
                self._forward_failed = True
                logger.warning("collector could not forward to the central actor: %s", exc)
                if not metrics_sent:
                    self._batches.insert(0, merged)
                    self._held_points += merged.point_count
                self._spans[:0] = spans
                return 0
            self._forward_failed = False
            self._forwarded_points += merged.point_count
            return merged.point_count

    async def stats(self) -> dict[str, int]:
        return {
            "held_points": self._held_points,
            "held_spans": len(self._spans),
            "forwarded_points": self._forwarded_points,
        }

    async def _watch_control_plane_forever(self) -> None:
        """Probe the GCS as the central actor does, unless this is the head's collector: the
        central actor there tells every outage this node would see."""
        try:
            nodes = await asyncio.to_thread(ray.nodes)
        except Exception:
            logger.exception("collector could not read its node: it does not watch the GCS")
            return
        if any(n["NodeID"] == self._node and _HEAD in n["Resources"] for n in nodes):
            return
        await asyncio.gather(
            probe_forever(_PROBE_KEY, self._watch_control_plane), self._deliver_forever()
        )

    async def _deliver_forever(self) -> None:
        while True:
            await asyncio.sleep(PERIOD_S)
            if self._held.held:
                await self._held.deliver()

    def _watch_control_plane(self, ok: bool, detail: str, since: float | None) -> None:
        if not ok and since is not None:
            self._held.add(self._control_plane.observe(False, since, detail))
        self._held.add(self._control_plane.observe(ok, time.time(), detail))

    def _central_handle(self) -> Any:
        if self._central is None:
            self._central = ray.get_actor(CENTRAL_NAME, namespace=NAMESPACE)
        return self._central

    async def _forward_forever(self) -> None:
        """Forward every interval, or as soon as enough is held; while one forward waits on
        the central actor, what arrives is merged into the next."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self._interval)
            self._due.clear()
            try:
                await self.flush()
            except Exception:
                logger.exception("collector forward failed")
            if self._forward_failed:  # central away: retry once per interval, not per batch
                await asyncio.sleep(self._interval)


def collector_options(node_id: str) -> dict[str, Any]:
    """A system actor named per node and pinned to it (not on the head like the others).

    Callers' calls are retried across a restart (``max_task_retries=-1``): a batch sent while
    the collector was dying reaches its next incarnation, so a crash loses only what it held.
    """
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    return system_actor_options(
        collector_name(node_id), on_head=False, scheduling_strategy=strategy
    )


def ensure_collectors(*, forward_interval_s: float = 0.5, timeout_s: float = 60.0) -> list[Any]:
    """One collector per alive node (existing ones are reused); waits until each answers."""
    actor_class: Any = ray.remote(CollectorActor)
    handles = [
        actor_class.options(**collector_options(node["NodeID"])).remote(forward_interval_s)
        for node in ray.nodes()
        if node.get("Alive")
    ]
    ray.get([h.ping.remote() for h in handles], timeout=timeout_s)
    return handles


# -- the sending side, used by every process --------------------------------------------------


class _NodeCollector:
    """This process's handle to its node's collector, looked up at most once per second.

    The handle is kept with the node id it was found for: a driver that disconnects and joins
    another cluster (or a new local Ray) must not keep shipping to the old one's collector.
    """

    def __init__(self, retry_s: float = 1.0) -> None:
        self._node_id: str | None = None
        self._handle: Any = None
        self._next_lookup = 0.0
        self._retry_s = retry_s
        self._lock = threading.Lock()

    def handle(self) -> Any:
        if not ray.is_initialized():
            return None
        node_id = ray.get_runtime_context().get_node_id()
        if self._handle is not None and node_id == self._node_id:
            return self._handle
        with self._lock:
            now = time.monotonic()
            if (self._handle is None or node_id != self._node_id) and now >= self._next_lookup:
                self._next_lookup = now + self._retry_s
                try:
                    handle = ray.get_actor(collector_name(node_id), namespace=NAMESPACE)
                except ValueError:
                    return None
                self._handle, self._node_id = handle, node_id
            return self._handle if node_id == self._node_id else None

    def forget(self) -> None:
        self._handle = None
        self._next_lookup = 0.0


_node_collector = _NodeCollector()


def ship_metrics(batch: MetricBatch) -> bool:
    """The default recorder sink: hand the batch to this node's collector, without waiting."""
    handle = _node_collector.handle()
    if handle is None:
        return False
    try:
        handle.ingest.remote(batch)
    except Exception:
        _node_collector.forget()
        return False
    return True


def ship_spans(spans: list[Any]) -> bool:
    """The span exporter's sink: like :func:`ship_metrics`, for finished spans."""
    handle = _node_collector.handle()
    if handle is None:
        return False
    try:
        handle.ingest_spans.remote(spans)
    except Exception:
        _node_collector.forget()
        return False
    return True


def flush_node_collector(timeout_s: float = 30.0) -> int:
    """Ask this node's collector to forward now and wait (tests, shutdown)."""
    handle = _node_collector.handle()
    if handle is None:
        return 0
    return int(ray.get(handle.flush.remote(), timeout=timeout_s))
