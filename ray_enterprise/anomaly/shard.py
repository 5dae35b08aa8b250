"""Anomaly shards: the Ray shell around :class:`AnomalyMonitor`.

Series are split over shards by a stable hash, so detection scales with nodes and one series
always meets the same detector. A shard checkpoints its monitor to the GCS key-value store,
so a restarted shard resumes with warm detectors instead of learning from zero, and it hands
every event to the alert manager when one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import time
import zlib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert
from ray_enterprise.anomaly.detectors import DEFAULT_DETECTOR, DetectorConfigError
from ray_enterprise.anomaly.events import AnomalyEvent, AnomalyMonitor
from ray_enterprise.anomaly.series import Series, service_of, text_of
from ray_enterprise.anomaly.vector_monitor import VectorAnomalyMonitor
from ray_enterprise.system_actors import NAMESPACE, get_system_actor, system_actor_options

logger = logging.getLogger("ray_enterprise.anomaly")

_CHECKPOINT = "anomaly/checkpoint/"

Point = tuple[Series, float, float]  # (series, timestamp, value)


class Monitor(Protocol):
    """What a shard holds: per-series or vectorised, the same calls."""

    vectorised: bool
    detector_name: str
    events: deque[AnomalyEvent]

    def observe_points(self, points: Iterable[tuple[Series, Any, Any]]) -> list[AnomalyEvent]: ...

    def samples(self, series: Series) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def to_state(self) -> dict[str, Any]: ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


def shard_of(series: Series, shards: int) -> int:
    """Rendezvous hashing: stable across processes and restarts (Python's hash() is salted
    per process), and when a shard is added only the series that now rank it first move
    (about 1/n of them), so growing with the cluster keeps most detectors where they are."""
    if shards <= 1:
        return 0
    key = text_of(series).encode()
    return max(range(shards), key=lambda i: zlib.crc32(key, i * 0x9E3779B1 & 0xFFFFFFFF))


def shard_name(index: int) -> str:
    return f"{system_actors.ANOMALY_SHARD_PREFIX}{index}"


def build_monitor(detector: Mapping[str, Any], min_samples: int, capacity: int) -> Monitor:
    """Numpy detectors score a whole frame at once; river models need one object per series."""
    try:
        return VectorAnomalyMonitor(detector, capacity=capacity, min_samples=min_samples)
    except DetectorConfigError:
        return AnomalyMonitor(detector, min_samples=min_samples)


class AnomalyShardActor:
    """Holds the detectors of the series that hash to it."""

    def __init__(
        self,
        index: int,
        detector: Mapping[str, Any] | None = None,
        *,
        min_samples: int = 100,
        capacity: int = 10_000,
        checkpoint_s: float = 5.0,
        alert_actor: str = system_actors.ALERTS,
        recreated: bool = False,
    ) -> None:
        restart_alert = RestartAlert(f"anomaly-shard:{index}", recreated=recreated)
        self.index = index
        self._checkpoint_s = checkpoint_s
        self._alert_actor = alert_actor
        self._points = 0
        # Counted here: the monitor keeps only its last events, so their number stops rising.
        self._flagged = 0
        self._restored = False
        self.monitor = build_monitor(dict(detector or DEFAULT_DETECTOR), min_samples, capacity)
        saved = _kv.get_blob(_CHECKPOINT + str(index))
        if saved is not None:
            self.monitor.load_state(pickle.loads(saved))
            self._restored = True
        self._dirty = False
        loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._checkpoint_forever())
        restart_alert.recovered()  # detectors resumed from the checkpoint: serving again

    async def ping(self) -> str:
        return "ok"

    async def pid(self) -> int:
        return os.getpid()

    async def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    async def ingest(self, points: Sequence[Point]) -> int:
        """Score and learn a batch; returns how many events it raised. Bad points are counted."""
        self._points += len(points)
        events = self.monitor.observe_points(points)
        self._flagged += len(events)
        self._dirty = True
        if events:
            await self._forward(events)
        return len(events)

    async def _forward(self, events: Iterable[AnomalyEvent]) -> None:
        """Hand events to the alert manager; detection never waits on or fails with it."""
        try:
            alerts = ray.get_actor(self._alert_actor, namespace=NAMESPACE)
        except ValueError:
            return
        from ray_enterprise.alerts.sources import AnomalyInput

        inputs = [AnomalyInput.from_event(e, service_of(e.labels)) for e in events]
        try:
            alerts.ingest.remote(inputs)
        except Exception as exc:  # the alert actor may be restarting
            logger.warning("could not forward %d anomaly events: %s", len(inputs), exc)

    async def events(
        self, series: Series | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        text = None if series is None else text_of(series)
        return [
            asdict(e)
            for e in self.monitor.events
            if (text is None or e.series == text) and (since is None or e.timestamp >= since)
        ]

    async def stats(self) -> dict[str, Any]:
        return {
            "shard": self.index,
            "vectorised": self.monitor.vectorised,
            "points": self._points,
            "events": self._flagged,
            "restored_from_checkpoint": self._restored,
            "detector": self.monitor.detector_name,
            **self.monitor.stats(),
        }

    async def baseline_samples(self, series: Series) -> int:
        """How many points the series' baseline has seen (survives a restart); ``series`` is
        its name and labels, or the text events show."""
        return self.monitor.samples(series)

    async def checkpoint(self) -> int:
        """Write the monitor's state now; returns its size in bytes."""
        blob = pickle.dumps(self.monitor.to_state(), protocol=pickle.HIGHEST_PROTOCOL)
        _kv.put_blob(_CHECKPOINT + str(self.index), blob)
        self._dirty = False
        return len(blob)

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self._checkpoint_s)
            if self._dirty:
                try:
                    await self.checkpoint()
                except Exception:
                    logger.exception("anomaly shard %d: checkpoint failed", self.index)


def get_shard_handles(shards: int, *, create: bool, **options: Any) -> list[Any]:
    """Handles of shards 0..shards-1, created where missing (spread over nodes)."""
    return [
        get_system_actor(
            shard_name(i),
            AnomalyShardActor,
            create=create,
            args=(i,),
            kwargs=options,
            on_head=False,
            scheduling_strategy="SPREAD",
        )
        for i in range(shards)
    ]


def shard_handle(index: int, node_id: str | None = None, *, recreated: bool = False) -> Any:
    """Shard ``index``, created without waiting when missing; ``node_id`` is where a new one
    must run, else Ray spreads them. The affinity is hard because Ray does not keep soft
    affinity for detached actors; a shard whose node died is re-created elsewhere by the
    observability actor, from its checkpoint, with ``recreated`` (it raises
    SystemActorRestarted)."""
    try:
        return ray.get_actor(shard_name(index), namespace=NAMESPACE)
    except ValueError:
        pass
    strategy: Any = "SPREAD"
    if node_id is not None:
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    options = system_actor_options(shard_name(index), on_head=False, scheduling_strategy=strategy)
    return ray.remote(AnomalyShardActor).options(**options).remote(index, recreated=recreated)


class AnomalyRouter:
    """Client side: sends each point to the shard its series hashes to, in one call per shard."""

    def __init__(self, handles: Sequence[Any]) -> None:
        self._handles = list(handles)
        self._placed: dict[Series, int] = {}  # series -> shard: hashing once per series

    def route(self, points: Iterable[Point]) -> dict[int, list[Point]]:
        batches: dict[int, list[Point]] = {}
        placed, shards = self._placed, len(self._handles)
        for point in points:
            index = placed.get(point[0])
            if index is None:
                index = placed[point[0]] = shard_of(point[0], shards)
            batches.setdefault(index, []).append(point)
        return batches

    def ingest(self, points: Iterable[Point]) -> list[Any]:
        """Send; returns the ObjectRefs of the per-shard event counts."""
        return [self._handles[i].ingest.remote(batch) for i, batch in self.route(points).items()]

    def events(self, series: Series | None = None) -> list[dict[str, Any]]:
        refs = [h.events.remote(series) for h in self._handles]
        return sorted((e for batch in ray.get(refs) for e in batch), key=lambda e: e["timestamp"])


def clear_checkpoints() -> None:
    """Forget every shard's learned state (``down`` and tests)."""
    _kv.delete_prefix(_CHECKPOINT)


def remove_shards(timeout_s: float = 20.0) -> None:
    """Kill every shard for good, wait until their names are free, forget their state."""
    names = [
        n for n in ray.util.list_named_actors() if n.startswith(system_actors.ANOMALY_SHARD_PREFIX)
    ]
    for name in names:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # ray.kill is asynchronous
        if not any(
            n.startswith(system_actors.ANOMALY_SHARD_PREFIX) for n in ray.util.list_named_actors()
        ):
            break
        time.sleep(0.05)
    clear_checkpoints()


__all__ = [
    "AnomalyRouter",
    "AnomalyShardActor",
    "Monitor",
    "clear_checkpoints",
    "get_shard_handles",
    "remove_shards",
    "shard_handle",
    "shard_of",
]
