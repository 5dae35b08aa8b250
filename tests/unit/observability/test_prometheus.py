"""Prometheus exposition of the series store, parsed back with prometheus-client's parser."""

from __future__ import annotations

import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from ray_enterprise.observability.health import HealthReport
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.prometheus import (
    ExpositionServer,
    health_families,
    render,
    store_families,
)
from ray_enterprise.observability.ray_mirror import RayMetricsMirror
from ray_enterprise.observability.series import SeriesStore


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def filled_store() -> SeriesStore:
    store = SeriesStore(buckets=(10.0, 100.0), clock=lambda: 1000.0)
    svc = (("service", "search"),)
    batch = MetricBatch(
        ts_ms=999_000,
        series=[
            SeriesPoints("requests", MetricType.COUNTER, svc, np.array([7.0])),
            SeriesPoints("queue_depth", MetricType.GAUGE, svc, np.array([3.0, 4.0])),
            SeriesPoints("payload_bytes", MetricType.HISTOGRAM, svc, np.array([5.0, 50.0, 500.0])),
            SeriesPoints(
                "response_time_ms",
                MetricType.TIMER,
                (("endpoint", "/search"), *svc),
                np.arange(1.0, 101.0),
            ),
        ],
        refused={("bad name", "invalid_name"): 2},
    )
    store.ingest(batch)
    return store


def test_every_type_round_trips_through_the_text_format() -> None:
    got = samples(render(store_families(filled_store())).decode())
    svc = (("service_name", "search"),)  # the store's `service`, as scraped
    assert got[("requests_total", svc)] == 7.0
    assert got[("queue_depth", svc)] == 4.0
    assert got[("payload_bytes_bucket", (("le", "10.0"), *svc))] == 1.0
    assert got[("payload_bytes_bucket", (("le", "100.0"), *svc))] == 2.0
    assert got[("payload_bytes_bucket", (("le", "+Inf"), *svc))] == 3.0
    assert got[("payload_bytes_sum", svc)] == 555.0
    timer = (("endpoint", "/search"), ("quantile", "0.95"), ("service_name", "search"))
    assert got[("response_time_ms", timer)] == np.quantile(np.arange(1.0, 101.0), 0.95)
    assert got[("response_time_ms_count", (("endpoint", "/search"), *svc))] == 100.0
    refusals = (("metric", "bad name"), ("reason", "invalid_name"))
    assert got[("ray_enterprise_metric_refusals_total", refusals)] == 2.0


def test_health_score_is_a_gauge() -> None:
    report = HealthReport(87.5, "degraded", ("x",))
    assert samples(render(health_families(report)).decode()) == {
        ("ray_enterprise_health_score", ()): 87.5
    }


def test_http_server_serves_fresh_families_at_every_scrape() -> None:
    store = SeriesStore(clock=lambda: 1000.0)
    server = ExpositionServer(lambda: store_families(store))
    host, port = server.start("127.0.0.1", 0)
    try:
        store.ingest(
            MetricBatch(
                ts_ms=999_000,
                series=[SeriesPoints("hits", MetricType.COUNTER, (), np.array([2.0]))],
            )
        )
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:
            body = resp.read().decode()
        assert samples(body)[("hits_total", ())] == 2.0
    finally:
        server.stop()


class FakeRayMetric:
    def __init__(self, kind: MetricType, name: str, keys: tuple[str, ...]) -> None:
        self.kind, self.name, self.keys = kind, name, keys
        self.calls: list[tuple[str, float, dict[str, str]]] = []

    def inc(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("inc", value, tags))

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("set", value, tags))

    def observe(self, value: float, tags: dict[str, str]) -> None:
        self.calls.append(("observe", value, tags))


def test_ray_mirror_replays_batches_with_fixed_tag_keys() -> None:
    made: dict[str, FakeRayMetric] = {}

    def factory(kind: MetricType, name: str, keys: tuple[str, ...], _: object) -> FakeRayMetric:
        made[name] = FakeRayMetric(kind, name, keys)
        return made[name]

    mirror = RayMetricsMirror((1.0, 10.0), factory=factory, max_observations=2)
    svc = (("service", "a"),)
    mirror.mirror(
        MetricBatch(
            ts_ms=1,
            series=[
                SeriesPoints("hits", MetricType.COUNTER, svc, np.array([3.0])),
                SeriesPoints("depth", MetricType.GAUGE, svc, np.array([1.0, 2.0])),
                SeriesPoints("lat", MetricType.TIMER, svc, np.array([1.0, 2.0, 3.0])),
                SeriesPoints("hits", MetricType.COUNTER, (("zone", "x"),), np.array([1.0])),
            ],
        )
    )
    assert made["hits"].calls == [("inc", 3.0, {"service": "a"})]
    assert made["depth"].calls == [("set", 2.0, {"service": "a"})]
    assert [c[1] for c in made["lat"].calls] == [2.0, 3.0]
    assert mirror.skipped == 1  # other label names than the metric's first series
