"""Prometheus text exposition: a view over the series store, served by prometheus-client.

Like prometheus-client's own split of data model and format, the store stays plain data and
this module turns a snapshot of it into metric families: counters as monotonic ``_total``,
gauges as their last value, histograms with cumulative ``le`` buckets, timers as summaries
with p50/p95/p99 over the last five minutes. The platform's own figures (refusals, drops, the
health score) are exported beside them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from ray_enterprise.observability.health import HealthReport
from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.metric_names import SERVICE_LABEL
from ray_enterprise.observability.series import QUANTILES, WINDOWS_MS, Series, SeriesStore

logger = logging.getLogger("ray_enterprise.observability")

SUMMARY_WINDOW = "5m"
_DOC = "recorded through ray_enterprise"
#: The label the ``service_name=`` of ``record_metric`` gets in the exposition. Not
#: ``service``: a Prometheus Operator ServiceMonitor adds that target label itself (the
#: Kubernetes Service scraped), and the clash would rename ours to ``exported_service``.
EXPOSED_SERVICE_LABEL = "service_name"


def _fmt_le(bound: float) -> str:
    return repr(float(bound))


def exposed_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels as scraped: the store's ``service`` becomes :data:`EXPOSED_SERVICE_LABEL`."""
    if SERVICE_LABEL not in labels or EXPOSED_SERVICE_LABEL in labels:
        return labels
    out = {k: v for k, v in labels.items() if k != SERVICE_LABEL}
    out[EXPOSED_SERVICE_LABEL] = labels[SERVICE_LABEL]
    return out


def _series_samples(family: Metric, s: Series, now_ms: int) -> None:
    labels = exposed_labels(s.label_dict)
    if s.kind is MetricType.COUNTER:
        family.add_sample(family.name + "_total", labels, s.total_sum)
    elif s.kind is MetricType.GAUGE:
        family.add_sample(family.name, labels, s.last)
    elif s.kind is MetricType.HISTOGRAM:
        counts = s.bucket_counts if len(s.bucket_counts) else np.zeros(len(s.buckets), np.int64)
        for bound, count in zip(s.buckets, counts, strict=True):
            family.add_sample(family.name + "_bucket", {**labels, "le": _fmt_le(bound)}, count)
        family.add_sample(family.name + "_bucket", {**labels, "le": "+Inf"}, s.total_count)
        family.add_sample(family.name + "_count", labels, s.total_count)
        family.add_sample(family.name + "_sum", labels, s.total_sum)
    else:
        recent = s.ring.window(now_ms - WINDOWS_MS[SUMMARY_WINDOW], now_ms)
        if len(recent):
            for q, value in zip(QUANTILES, np.quantile(recent, QUANTILES), strict=True):
                family.add_sample(family.name, {**labels, "quantile": str(q)}, float(value))
        family.add_sample(family.name + "_count", labels, s.total_count)
        family.add_sample(family.name + "_sum", labels, s.total_sum)


_FAMILY: dict[MetricType, Callable[[str, str], Metric]] = {
    MetricType.COUNTER: CounterMetricFamily,
    MetricType.GAUGE: GaugeMetricFamily,
    MetricType.HISTOGRAM: HistogramMetricFamily,
    MetricType.TIMER: SummaryMetricFamily,
}


def store_families(store: SeriesStore, now_ms: int | None = None) -> list[Metric]:
    """One metric family per recorded metric name, plus the pipeline's own counters."""
    now = store.now_ms() if now_ms is None else now_ms
    families: dict[str, Metric] = {}
    for s in sorted(store, key=lambda s: (s.name, s.labels)):
        family = families.get(s.name)
        if family is None:
            # One HELP per metric: Prometheus tools show it beside the name.
            doc = f"{s.name}: a {s.kind.value} {_DOC}"
            family = families[s.name] = _FAMILY[s.kind](s.name, doc)
        _series_samples(family, s, now)
    refused = CounterMetricFamily(
        "ray_enterprise_metric_refusals",
        "metric points refused (bad name or tag, non-finite value, cardinality limit)",
        labels=["metric", "reason"],
    )
    for (metric, reason), count in sorted(store.refused.items()):
        refused.add_metric([metric, reason], count)
    dropped = CounterMetricFamily(
        "ray_enterprise_metric_points_dropped", "metric points lost to full buffers"
    )
    dropped.add_metric([], store.dropped)
    series = GaugeMetricFamily("ray_enterprise_metric_series", "series held by the store")
    series.add_metric([], len(store))
    return [*families.values(), refused, dropped, series]


def health_families(report: HealthReport | None) -> list[Metric]:
    score = GaugeMetricFamily("ray_enterprise_health_score", "system health score, 0-100")
    if report is not None:
        score.add_metric([], report.score)
    return [score]


class SnapshotCollector(Collector):
    """A prometheus-client collector that asks for fresh families at every scrape."""

    def __init__(self, snapshot: Callable[[], Iterable[Metric]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from self._snapshot()


def render(families: Iterable[Metric]) -> bytes:
    """The text exposition format of ``families`` (what ``/metrics`` returns)."""
    fams = list(families)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: fams))
    return generate_latest(registry)


class ExpositionServer:
    """``/metrics`` over HTTP on ``host:port`` (port 0 picks a free one)."""

    def __init__(self, snapshot: Callable[[], Iterable[Metric]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(snapshot))
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def start(self, host: str, port: int) -> tuple[str, int]:
        if self._server is None:
            self._server, self._thread = start_http_server(port, host, self.registry)
            self.address = (host, int(self._server.server_address[1]))
        assert self.address is not None
        return self.address

    def serve(self, host: str, port: int, saved: list[Any] | None) -> list[Any]:
        """Start on ``host:port``, or where ``saved`` says it ran with the same settings (a
        restarted actor keeps its address, so Prometheus keeps scraping it); a port someone
        else holds is logged and a free one used: metrics elsewhere beat no metrics. Returns
        what to save for the next start."""
        wanted = [host, port]
        if saved and list(saved[2:]) == wanted:
            host, port = str(saved[0]), int(saved[1])
        try:
            address = self.start(host, port)
        except OSError as exc:
            address = self.start(host, 0)
            logger.error(
                "observability.prometheus_port %d on %s is not free (%s); serving /metrics "
                "on port %d instead",
                port,
                host,
                exc,
                address[1],
            )
        return [*address, *wanted]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
