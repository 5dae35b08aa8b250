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
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
from prometheus_client.core import Metric

from ray_enterprise import _kv
from ray_enterprise.observability.alert_matchers import Matcher
from ray_enterprise.observability.anomaly_feed import AnomalyRate, anomaly_points, series_text
from ray_enterprise.observability.anomaly_shard import AnomalyRouter, get_shard_handles
from ray_enterprise.observability.collector import (
    CENTRAL_NAME,
    NAMESPACE,
    CollectorActor,
    collector_name,
    collector_options,
)
from ray_enterprise.observability.health import HealthReport, health_score
from ray_enterprise.observability.metric_batch import Labels, MetricBatch
from ray_enterprise.observability.prometheus import (
    ExpositionServer,
    health_families,
    render,
    store_families,
)
from ray_enterprise.observability.ray_mirror import RayMetricsMirror
from ray_enterprise.observability.series import SeriesStore
from ray_enterprise.observability.series_plot import plot_points
from ray_enterprise.observability.trace_map import TraceMap
from ray_enterprise.observability.tracing import SpanRecord

logger = logging.getLogger("ray_enterprise.observability")

_PORT_KEY = "observability/prometheus"
_REGISTRY_TIMEOUT_S = 5.0


class ObservabilityActor:
    """Series store, trace map, health score and Prometheus endpoint of the whole cluster."""

    def __init__(
        self,
        *,
        prometheus_host: str | None = None,
        prometheus_port: int = 0,
        health_period_s: float = 5.0,
        cardinality_limit: int = 1000,
        capacity: int = 8192,
        mirror_to_ray: bool = False,
        anomaly_shards: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._store = SeriesStore(
            capacity=capacity, cardinality_limit=cardinality_limit, clock=clock
        )
        self._traces = TraceMap()
        self._alerts: dict[str, int] = {}
        self._anomaly_rate: float | None = None  # reported by someone else: it wins
        self._shard_count = anomaly_shards
        self._router: AnomalyRouter | None = None
        self._shards: list[Any] = []
        self._shard_rate = AnomalyRate()
        self._measured_rate: float | None = None
        self._health: HealthReport | None = None
        self._mirror = RayMetricsMirror(self._store.buckets) if mirror_to_ray else None
        self._server = ExpositionServer(self._families)
        # A restarted actor serves on the port it had, so Prometheus keeps scraping it.
        saved = _kv.get(_PORT_KEY)
        host = prometheus_host or (saved[0] if saved else ray.util.get_node_ip_address())
        port = prometheus_port or (int(saved[1]) if saved else 0)
        try:
            address = self._server.start(host, port)
        except OSError:
            address = self._server.start(host, 0)
        if ray.get_runtime_context().get_actor_name() == CENTRAL_NAME:
            _kv.put(_PORT_KEY, list(address))  # only the system actor owns the saved port
        self._health_period_s = health_period_s
        self._task = asyncio.get_event_loop().create_task(self._refresh_forever())

    async def ping(self) -> str:
        return "ok"

    # -- intake ---------------------------------------------------------------------------

    async def ingest(self, batch: MetricBatch) -> int:
        with self._lock:
            self._store.ingest(batch)
        if self._shard_count:
            self._feed_anomaly_shards(batch)
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
        """The alert actor reports what fires now; it counts in the health score."""
        self._alerts = {k: int(v) for k, v in firing_by_severity.items()}

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

    async def get_system_health(self) -> dict[str, Any]:
        """Fresh score from the registry's status, firing alerts and the anomaly rate."""
        return (await self._refresh_health()).to_json()

    async def exposition(self) -> bytes:
        return render(self._families())

    async def prometheus_address(self) -> tuple[str, int]:
        assert self._server.address is not None
        return self._server.address

    # -- internals ------------------------------------------------------------------------

    def _families(self) -> list[Metric]:
        with self._lock:
            return [*store_families(self._store), *health_families(self._health)]

    async def _refresh_health(self) -> HealthReport:
        status: dict[str, Any] | None = None
        with contextlib.suppress(Exception):  # no registry, or it is restarting
            registry = ray.get_actor("registry", namespace=NAMESPACE)
            status = await asyncio.wait_for(
                registry.get_system_status.remote(), timeout=_REGISTRY_TIMEOUT_S
            )
        rate = self._anomaly_rate
        if rate is None and self._router is not None:
            rate = await self._measure_anomaly_rate()
        self._health = health_score(status, self._alerts, rate, timestamp=self._clock())
        return self._health

    def _feed_anomaly_shards(self, batch: MetricBatch) -> None:
        """One point per series to the shard its series hashes to; never blocks ingestion."""
        if self._router is None:
            try:
                handles = get_shard_handles(self._shard_count, create=False)
            except ValueError:
                return  # the shards are not booted (yet)
            self._shards, self._router = handles, AnomalyRouter(handles)
        try:
            self._router.ingest(anomaly_points(batch))
        except Exception as exc:
            logger.warning("could not feed the anomaly shards: %s", exc)

    async def _measure_anomaly_rate(self) -> float | None:
        try:
            stats = await asyncio.gather(*(h.stats.remote() for h in self._shards))
        except Exception:
            return self._measured_rate
        rate = self._shard_rate.update(stats)
        if rate is not None:
            self._measured_rate = rate
        return self._measured_rate

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self._refresh_health()
                self._ensure_collectors()
            except Exception:
                logger.exception("health refresh failed")
            await asyncio.sleep(self._health_period_s)

    def _ensure_collectors(self) -> None:
        """A node that joined after boot gets its collector within one refresh period."""
        named = {
            a["name"]
            for a in ray.util.list_named_actors(all_namespaces=True)
            if a["namespace"] == NAMESPACE
        }
        actor_class: Any = ray.remote(CollectorActor)
        for node in ray.nodes():
            node_id = node["NodeID"]
            if node.get("Alive") and collector_name(node_id) not in named:
                actor_class.options(**collector_options(node_id)).remote()
