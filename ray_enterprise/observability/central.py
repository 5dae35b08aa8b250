"""ObservabilityActor: the central, detached actor holding the series store and the trace map.

A thin shell, like the registry: the store, the trace map, the health score and the exposition
are plain objects; the actor receives the node collectors' batches, answers queries, refreshes
the health score from the registry and serves ``/metrics``. The exposition runs on its own
HTTP thread, so every access to the store goes through one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ray
from prometheus_client.core import Metric

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert, report_input, warm_up
from ray_enterprise.alerts.matchers import Matcher
from ray_enterprise.anomaly.feed import AnomalyRate, anomaly_points, series_text
from ray_enterprise.anomaly.shard import AnomalyRouter, shard_handle
from ray_enterprise.observability.collector import (
    CENTRAL_NAME,
    NAMESPACE,
    CollectorActor,
    collector_name,
    collector_options,
)
from ray_enterprise.observability.control_plane import GCS_READ_TIMEOUT_S, probe_forever
from ray_enterprise.observability.fault_watch import ControlPlaneWatch, NodeWatch, RefusalWatch
from ray_enterprise.observability.health import HealthReport, health_score
from ray_enterprise.observability.metric_batch import Labels, MetricBatch
from ray_enterprise.observability.prometheus import (
    ExpositionServer,
    health_families,
    render,
    store_families,
)
from ray_enterprise.observability.ray_mirror import RayMetricsMirror
from ray_enterprise.observability.series import DEFAULT_SERIES_LIMIT, SeriesStore
from ray_enterprise.observability.series_plot import plot_points, plot_unit
from ray_enterprise.observability.system_metrics import SystemFigures, firing_alerts
from ray_enterprise.observability.trace_map import TraceMap
from ray_enterprise.observability.tracing import SpanRecord

logger = logging.getLogger("ray_enterprise.observability")

_PORT_KEY = "observability/prometheus"
_CHECKPOINT_KEY = "observability/checkpoint"
_NODES_KEY = "observability/nodes"  # the NodeWatch: alive nodes and open losses
_SHARD_QUEUE = 1000  # batches waiting for the anomaly shards
_REGISTRY_TIMEOUT_S = 5.0


def _alive_nodes() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive")]


async def _answers(refs: list[Any], timeout_s: float) -> list[Any]:
    """Each call's result or exception; ``None`` for one still pending at the deadline (a
    shard that is starting or restarting is neither placed nor lost yet)."""
    if not refs:
        return []
    tasks = [asyncio.ensure_future(_awaited(ref)) for ref in refs]
    await asyncio.wait(tasks, timeout=timeout_s)
    out: list[Any] = []
    for task in tasks:
        if task.done():
            out.append(task.exception() or task.result())
        else:
            task.cancel()
            out.append(None)
    return out


async def _awaited(ref: Any) -> Any:
    return await ref


def _pack(state: dict[str, Any]) -> bytes:
    return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)


def clear_checkpoint() -> None:
    """Forget the store's checkpoint and the nodes it knew (``down``: the next ``up`` starts
    empty)."""
    _kv.delete(_CHECKPOINT_KEY)
    _kv.delete(_NODES_KEY)


class ObservabilityActor:
    """Series store, trace map, health score and Prometheus endpoint of the whole cluster."""

    def __init__(
        self,
        *,
        prometheus_enabled: bool = True,
        prometheus_host: str | None = None,
        prometheus_port: int = 0,
        health_period_s: float = 5.0,
        cardinality_limit: int = 1000,
        series_limit: int = DEFAULT_SERIES_LIMIT,
        capacity: int = 8192,
        mirror_to_ray: bool = False,
        anomaly_shards: int | str = 0,
        checkpoint_s: float = 5.0,
        refusal_check_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        restart_alert = RestartAlert(CENTRAL_NAME)
        self._clock = clock
        self._lock = threading.Lock()
        self._store = SeriesStore(
            capacity=capacity,
            cardinality_limit=cardinality_limit,
            series_limit=series_limit,
            clock=clock,
        )
        self._traces = TraceMap()
        # None: ask the alert actor at every refresh; a dict: someone reported (wins).
        self._alerts: dict[str, int] | None = None
        self._anomaly_rate: float | None = None  # reported by someone else: it wins
        if anomaly_shards != "auto" and not (
            isinstance(anomaly_shards, int) and anomaly_shards >= 0
        ):
            raise ValueError(f"anomaly_shards is {anomaly_shards!r}: use 'auto' or a count >= 0")
        self._shard_setting = anomaly_shards
        self._router: AnomalyRouter | None = None
        self._shard_queue: deque[list[Any]] = deque()
        self._shard_ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.shard_points_dropped = 0
        self._shards: list[Any] = []
        self._collectors_seen: set[str] = set()
        self._shard_rate = AnomalyRate()
        self._measured_rate: float | None = None
        self._health: HealthReport | None = None
        self._system = SystemFigures()  # the registry's, config's and alert actor's figures
        self._mirror = RayMetricsMirror(self._store.buckets) if mirror_to_ray else None
        self._server = ExpositionServer(self._families)
        self._owns_state = ray.get_runtime_context().get_actor_name() == CENTRAL_NAME
        if prometheus_enabled:
            self._serve_metrics(prometheus_host, prometheus_port)
        self._checkpoint_s = checkpoint_s
        self._checkpointed_points = -1
        self.restored_series = 0
        if self._owns_state:
            self.restored_series = self._restore()
        # Faults seen here go to the alert actor; only the system actor reports them.
        self._nodes = NodeWatch(_kv.get(_NODES_KEY) if self._owns_state else None)
        self._nodes_saved = self._nodes.to_state()
        self._control_plane = ControlPlaneWatch()
        self._nodes_read: asyncio.Future[list[str]] | None = None
        self._refusals = RefusalWatch(self._store.refused)  # restored counts are not new
        self._refusal_check_s = refusal_check_s
        self._health_period_s = health_period_s
        loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._refresh_forever())
        self._checkpoint_task = loop.create_task(self._checkpoint_forever())
        if self._owns_state:
            self._refusal_task = loop.create_task(self._watch_refusals_forever())
            self._control_plane_task = loop.create_task(self._probe_control_plane_forever())
        restart_alert.recovered()  # series restored from the checkpoint: serving again

    def _serve_metrics(self, host: str | None, port: int) -> None:
        """Serve ``/metrics`` on the configured address; only the system actor keeps its
        address for its restarts (unnamed instances, in tests and benchmarks, must not)."""
        saved = _kv.get(_PORT_KEY) if self._owns_state else None
        kept = self._server.serve(host or "127.0.0.1", port, saved)
        if self._owns_state:
            _kv.put(_PORT_KEY, kept)

    async def ping(self) -> str:
        return "ok"

    async def pid(self) -> int:
        return os.getpid()

    async def process_id(self) -> int:
        """The same as :meth:`pid` (the older name)."""
        return os.getpid()

    # -- intake ---------------------------------------------------------------------------

    async def ingest(self, batch: MetricBatch) -> int:
        with self._lock:
            self._store.ingest(batch)
        if self._shard_setting:
            await self._feed_anomaly_shards(batch)
        if self._mirror is not None:
            try:
                self._mirror.mirror(batch)
            except Exception:  # the mirror is a convenience: never lose the store for it
                logger.exception("mirroring into ray.util.metrics failed")
        return batch.point_count

    async def ingest_spans(self, spans: list[SpanRecord]) -> int:
        with self._lock:
            self._traces.add(spans)
        return len(spans)

    async def report_alerts(self, firing_by_severity: dict[str, int]) -> None:
        """Counts of firing alerts by severity from elsewhere (another alerting system, a
        test): they replace the alert actor's in the score until an empty report hands the
        input back to it."""
        cleaned = {k: int(v) for k, v in firing_by_severity.items()}
        self._alerts = cleaned or None

    async def report_anomaly_rate(self, rate: float | None) -> None:
        """The anomaly shards report the share of recent points flagged anomalous."""
        self._anomaly_rate = rate

    # -- queries --------------------------------------------------------------------------

    async def series(self, name: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            chosen = self._store.find(name) if name else list(self._store)
            return [self._store.describe(s) for s in chosen]

    async def stats(self, name: str, labels: dict[str, str]) -> dict[str, Any] | None:
        """Totals and window stats of one series, or ``None`` when it was never recorded."""
        with self._lock:
            series = self._store.get(name, labels)
            return self._store.describe(series) if series is not None else None

    async def window_values(
        self, metric: str, matchers: tuple[Matcher, ...], start_ms: int, end_ms: int
    ) -> dict[Labels, list[float]]:
        with self._lock:
            found = self._store.window_values(metric, matchers, start_ms, end_ms)
            return {k: list(v) for k, v in found.items()}

    async def refusals(self) -> dict[str, Any]:
        with self._lock:
            return {
                "counts": {f"{m}:{r}": n for (m, r), n in self._store.refused.items()},
                "messages": {f"{m}:{r}": t for (m, r), t in self._store.refusal_messages.items()},
                "dropped": self._store.dropped,
            }

    async def summary(self) -> dict[str, int]:
        with self._lock:
            return {
                "series": len(self._store),
                "points": self._store.points,
                "spans": self._traces.spans,
                "traces": len(self._traces.trace_ids()),
            }

    async def get_trace(self, trace_id: str) -> list[SpanRecord]:
        with self._lock:
            return self._traces.trace(trace_id)

    async def recent_traces(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            return self._traces.recent(limit)

    async def plot(self, window_s: float = 300.0, max_points: int = 120) -> list[dict[str, Any]]:
        """Every series with its points of the last ``window_s`` (one per flush), for plots."""
        with self._lock:
            start_ms = self._store.now_ms() - int(window_s * 1000)
            return [
                {
                    "series": series_text(s.name, s.labels),
                    "name": s.name,
                    "type": s.kind.value,
                    "labels": s.label_dict,
                    "last": s.last,
                    "unit": plot_unit(s.name, s.kind),
                    "points": plot_points(s, start_ms, max_points),
                }
                for s in self._store
            ]

    async def dependency_map(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._traces.dependency_map()

    async def operations(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._traces.operations()

    async def checkpoint(self) -> int:
        """Save the store now (the periodic loop does it every ``checkpoint_s``); returns
        the compressed size in bytes."""
        with self._lock:
            state = self._store.snapshot()
            points = self._store.points
        blob = await asyncio.to_thread(_pack, state)
        await asyncio.to_thread(_kv.put_blob, _CHECKPOINT_KEY, blob)
        self._checkpointed_points = points
        return len(blob)

    async def get_system_health(self) -> dict[str, Any]:
        """Fresh score from the registry's status, firing alerts and the anomaly rate."""
        return (await self._refresh_health()).to_json()

    async def exposition(self) -> bytes:
        return render(self._families())

    async def prometheus_address(self) -> tuple[str, int] | None:
        """Where ``/metrics`` is served; ``None`` with ``prometheus_enabled`` off."""
        return self._server.address

    # -- internals ------------------------------------------------------------------------

    def _families(self) -> list[Metric]:
        with self._lock:
            store = store_families(self._store)
        return [*store, *health_families(self._health), *self._system.families()]

    async def _refresh_health(self) -> HealthReport:
        status: dict[str, Any] | None = None
        with contextlib.suppress(Exception):  # no registry, or it is restarting
            registry = ray.get_actor(system_actors.REGISTRY, namespace=NAMESPACE)
            status = await asyncio.wait_for(
                registry.get_system_status.remote(), timeout=_REGISTRY_TIMEOUT_S
            )
        rate = self._anomaly_rate
        if self._router is not None:
            # Looked at even when a rate was reported: the shards' counters are exported.
            measured = await self._measure_anomaly_rate()
            rate = measured if rate is None else rate
        alerts: Mapping[str, int | Sequence[str]] | None = self._alerts
        if alerts is None:
            alerts = await firing_alerts()
        self._health = health_score(status, alerts, rate, timestamp=self._clock())
        await self._system.refresh(status)
        return self._health

    async def _feed_anomaly_shards(self, batch: MetricBatch) -> None:
        """Queue one point per series for the shards; ingestion never waits for them.

        A detector refuses a point older than the last it saw, and Ray runs an async actor's
        calls in no fixed order, so one sender delivers the queued batches in order, each
        after the previous one was taken. A full queue (shards far behind) drops the oldest
        batch and counts it.
        """
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_to_shards())
        if len(self._shard_queue) >= _SHARD_QUEUE:
            self.shard_points_dropped += len(self._shard_queue.popleft())
        self._shard_queue.append(anomaly_points(batch, self._store.holds))
        self._shard_ready.set()

    async def _send_to_shards(self) -> None:
        while True:
            await self._shard_ready.wait()
            self._shard_ready.clear()
            while self._shard_queue:
                points = self._shard_queue.popleft()
                try:
                    if self._router is None:
                        await self._ensure_shards()
                    if self._router is not None:
                        await asyncio.gather(*self._router.ingest(points))
                except Exception as exc:  # a shard restarting: its points for now are lost
                    logger.warning("could not feed the anomaly shards: %s", exc)

    async def _ensure_shards(self, alive: list[str] | None = None) -> None:
        """Keep ``anomaly_shards`` shards, or with ``"auto"`` one per node that ever joined:
        a new node gets a shard placed on it, and the router re-hashes (rendezvous: only the
        series that rank the new shard first move there, and learn afresh). A shard whose
        node died is re-created on a live node and resumes from its checkpoint."""
        if alive is None:
            alive = _alive_nodes()
        if self._shard_setting == "auto":
            want = max(len(self._shards), len(alive))
        else:
            want = int(self._shard_setting)
        found = await _answers([h.node_id.remote() for h in self._shards], _REGISTRY_TIMEOUT_S)
        if any(answer is None for answer in found):
            return  # a busy or starting shard: where it runs is unknown, so place nothing yet
        lost = [i for i, node in enumerate(found) if isinstance(node, BaseException)]
        if want <= len(self._shards) and not lost and self._router is not None:
            return
        placed = {node for node in found if isinstance(node, str)}
        free = [node for node in alive if node not in placed]
        handles = list(self._shards)
        for index in lost:
            handles[index] = shard_handle(index, free.pop(0) if free else None, recreated=True)
        for index in range(len(handles), want):
            handles.append(shard_handle(index, free.pop(0) if free else None))
        self._shards, self._router = handles, AnomalyRouter(handles)
        logger.info("anomaly detection on %d shard(s), %d re-created", want, len(lost))

    async def _measure_anomaly_rate(self) -> float | None:
        try:
            stats = await asyncio.gather(*(h.stats.remote() for h in self._shards))
        except Exception:
            return self._measured_rate
        self._system.anomaly_shards = stats
        rate = self._shard_rate.update(stats)
        if rate is not None:
            self._measured_rate = rate
        return self._measured_rate

    def _restore(self) -> int:
        """A restarted system actor resumes the series it had at its last checkpoint, so
        windows, totals and Prometheus counters do not start again from zero."""
        try:
            blob = _kv.get_blob(_CHECKPOINT_KEY)
            if blob is None:
                return 0
            restored = self._store.restore(pickle.loads(zlib.decompress(blob)))
        except Exception:  # a damaged checkpoint costs history, never the actor
            logger.exception("observability checkpoint unreadable; starting empty")
            return 0
        logger.info("observability store restored %d series from its checkpoint", restored)
        return restored

    async def _checkpoint_forever(self) -> None:
        while self._owns_state:
            await asyncio.sleep(self._checkpoint_s)
            if self._store.points == self._checkpointed_points:
                continue  # nothing new since the last one
            try:
                await self.checkpoint()
            except Exception:
                logger.exception("observability checkpoint failed")

    async def _read_alive_nodes(self) -> list[str]:
        """One GCS read per period, for shards and collectors, off the event loop and bounded:
        while the GCS is away Ray's client waits on it far longer than a period. A read still
        hanging from an earlier period counts as failed again instead of starting another."""
        if self._nodes_read is None or self._nodes_read.done():
            self._nodes_read = asyncio.ensure_future(asyncio.to_thread(_alive_nodes))
        timeout = max(self._health_period_s, GCS_READ_TIMEOUT_S)
        done, _ = await asyncio.wait({self._nodes_read}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no answer within {timeout:.1f} s")
        return self._nodes_read.result()

    def _watch_control_plane(self, ok: bool, detail: str = "", since: float | None = None) -> None:
        if self._owns_state:
            if ok:
                warm_up()  # so that the next outage can still be told
            items = []
            if not ok and since is not None:
                # The outage began when the read that never answered was sent, not when the
                # wait for it ended: the first observation is dated then.
                items += self._control_plane.observe(False, since, detail)
            items += self._control_plane.observe(ok, time.time(), detail)
            for item in items:
                report_input(item)

    async def _probe_control_plane_forever(self) -> None:
        """One cheap GCS read per second, apart from the health refresh (every
        ``health_period_s``, 5 s by default): with the refresh alone an outage was seen after
        two or three periods, so an 8 s GCS restart never raised ControlPlaneUnreachable."""
        await probe_forever(_NODES_KEY, self._watch_control_plane)

    async def _refresh_forever(self) -> None:
        while True:
            try:
                alive = await self._read_alive_nodes()
            except Exception:  # the GCS is away: nothing below can work either (the 1 s
                await asyncio.sleep(self._health_period_s)  # probe tells the outage)
                continue
            try:
                self._watch_nodes(alive)
                if self._shard_setting:
                    await self._ensure_shards(alive)
                await self._refresh_health()
                self._ensure_collectors(alive)
            except Exception:
                logger.exception("health refresh failed")
            await asyncio.sleep(self._health_period_s)

    def _watch_nodes(self, alive: list[str]) -> None:
        """NodeLost for a node gone since the last period; resolved when capacity is back."""
        if not self._owns_state:
            return
        for item in self._nodes.observe(alive):
            report_input(item)
        state = self._nodes.to_state()
        if state != self._nodes_saved:  # a restarted actor resolves what it raised
            _kv.put(_NODES_KEY, state)
            self._nodes_saved = state

    async def _watch_refusals_forever(self) -> None:
        """MetricsRefused for each reason with new refusals since the last look; the alert
        actor lets it expire after its quiet period without a new one."""
        while True:
            await asyncio.sleep(self._refusal_check_s)
            try:
                with self._lock:
                    counts = dict(self._store.refused)
                    messages = dict(self._store.refusal_messages)
                for item in self._refusals.observe(counts, messages):
                    report_input(item)
            except Exception:
                logger.exception("refusal check failed")

    def _ensure_collectors(self, alive: list[str]) -> None:
        """A node that joined after boot gets its collector within one refresh period."""
        named = {
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == NAMESPACE
        }
        actor_class: Any = ray.remote(CollectorActor)
        for node_id in alive:
            name = collector_name(node_id)
            if name not in named:
                # One this actor saw before was lost for good (killed, not restarted by Ray).
                recreated = name in self._collectors_seen
                actor_class.options(**collector_options(node_id)).remote(recreated=recreated)
            self._collectors_seen.add(name)
