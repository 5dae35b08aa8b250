"""Metrics on a real Ray: driver and actors -> node collector -> central store -> Prometheus."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families

from ray_enterprise.observability import metrics
from ray_enterprise.observability.collector import NAMESPACE, collector_name
from ray_enterprise.observability.metric_batch import MetricType
from ray_enterprise.observability.platform import (
    EnterpriseObservabilityPlatform,
    boot_observability,
)
from tests.support import free_port, wait_for


@pytest.fixture(scope="module")
def platform(ray_session: None) -> EnterpriseObservabilityPlatform:
    return EnterpriseObservabilityPlatform(boot_observability())


@ray.remote(num_cpus=0)
class Recording:
    """A process that records through its own default recorder, like any service would."""

    def pid(self) -> int:
        return os.getpid()

    def record(self, name: str, values: list[float], kind: str, tags: dict[str, str]) -> int:
        ok = [metrics.record_metric(name, v, MetricType(kind), tags, "worker") for v in values]
        return sum(ok)

    def count(self, name: str, n: int) -> None:
        hits = metrics.counter(name, service_name="worker")
        for _ in range(n):
            hits.inc()


def stats(platform: EnterpriseObservabilityPlatform, name: str, **labels: str) -> Any:
    return ray.get(platform.handle.stats.remote(name, labels))


def counted(
    platform: EnterpriseObservabilityPlatform,
    name: str,
    at_least: float,
    timeout: float = 30.0,
    **labels: str,
) -> float:
    """Wait until a counter reaches ``at_least``; return its total (which may overshoot)."""

    def total() -> float:
        return float((stats(platform, name, **labels) or {}).get("total_sum", 0.0))

    wait_for(lambda: total() >= at_least, timeout=timeout, what=f"{at_least} of {name}")
    return total()


def test_seed_calls_reach_the_central_store_with_the_right_stats(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    for v in range(1, 101):
        assert platform.record_metric(
            name="response_time_ms",
            value=float(v),
            metric_type=MetricType.TIMER,
            tags={"endpoint": "/search"},
            service_name="enterprise_search",
        )
    platform.flush()
    found = platform.wait_for_points(
        "response_time_ms", {"endpoint": "/search", "service": "enterprise_search"}, 100
    )
    minute = found["windows"]["1m"]
    assert (found["total_count"], minute["count"], minute["sum"]) == (100, 100, 5050.0)
    assert (minute["min"], minute["max"], minute["p50"]) == (1.0, 100.0, 50.5)
    assert minute["p99"] == pytest.approx(99.01)


def test_counts_from_a_driver_and_several_actors_are_exact(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    actors = [Recording.remote() for _ in range(3)]  # type: ignore[attr-defined]
    ray.get([a.count.remote("pipeline_hits", 2000) for a in actors])
    hits = metrics.counter("pipeline_hits", service_name="worker")
    for _ in range(1000):
        hits.inc()
    # No explicit flush in the actors: their background flush ships within an interval.
    # Exact: nothing lost, nothing counted twice.
    assert counted(platform, "pipeline_hits", 7000.0, service="worker") == 7000.0
    for a in actors:
        ray.kill(a)


def test_a_killed_process_loses_at_most_what_it_recorded_since_its_last_flush(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    actor = Recording.remote()  # type: ignore[attr-defined]
    assert ray.get(actor.record.remote("kill_lat_ms", [1.0] * 100, "timer", {})) == 100
    labels = {"service": "worker"}
    # The first batch arrives by the background flush alone: one interval, plus forwarding.
    platform.wait_for_points("kill_lat_ms", labels, 100, timeout_s=10)
    ray.get(actor.record.remote("kill_lat_ms", [2.0] * 50, "timer", {}))
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)
    final = stats(platform, "kill_lat_ms", **labels)
    assert 100 <= final["total_count"] <= 150
    assert final["windows"]["1m"]["min"] == 1.0


def test_a_collector_killed_with_sigkill_comes_back(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    node_id = ray.get_runtime_context().get_node_id()
    collector = ray.get_actor(collector_name(node_id), namespace=NAMESPACE)
    labels = {"service": "driver"}
    for _ in range(100):
        metrics.record_metric("collector_kill_total_hits", 1, MetricType.COUNTER, None, "driver")
    platform.flush()
    assert counted(platform, "collector_kill_total_hits", 100.0, **labels) == 100.0
    os.kill(ray.get(collector.process_id.remote()), signal.SIGKILL)
    for _ in range(100):
        metrics.record_metric("collector_kill_total_hits", 1, MetricType.COUNTER, None, "driver")
    assert counted(platform, "collector_kill_total_hits", 200.0, **labels) == 200.0
    assert ray.get(collector.ping.remote(), timeout=30) == node_id


def test_a_central_actor_killed_with_sigkill_resumes_from_its_checkpoint(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    labels = {"service": "driver", "route": "/ckpt"}
    for i in range(40):
        platform.record_metric("ckpt_ms", float(i), MetricType.TIMER, {"route": "/ckpt"}, "driver")
    platform.flush()
    platform.wait_for_points("ckpt_ms", labels, 40, timeout_s=30)
    before = stats(platform, "ckpt_ms", **labels)
    assert ray.get(platform.handle.checkpoint.remote()) > 0
    os.kill(ray.get(platform.handle.process_id.remote()), signal.SIGKILL)
    # The restarted actor answers with the same totals and windows, and takes new points.
    after = wait_for(
        lambda: _alive_stats(platform, "ckpt_ms", labels), timeout=60, what="the restart"
    )
    assert after["total_count"] == 40 and after["total_sum"] == before["total_sum"]
    assert after["windows"]["1h"] == before["windows"]["1h"]
    platform.record_metric("ckpt_ms", 100.0, MetricType.TIMER, {"route": "/ckpt"}, "driver")
    platform.flush()
    platform.wait_for_points("ckpt_ms", labels, 41, timeout_s=30)


def _alive_stats(
    platform: EnterpriseObservabilityPlatform, name: str, labels: dict[str, str]
) -> dict[str, Any] | None:
    try:
        return ray.get(platform.handle.stats.remote(name, labels), timeout=5)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None  # still restarting


def test_bad_names_values_and_cardinality_are_refused_counted_and_explained(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    rec = platform.record_metric
    assert not rec("bad-name", 1.0)
    assert not rec("refusal_probe", float("nan"))
    assert not rec("refusal_probe", float("inf"))
    assert not rec("refusal_probe", "fast")  # type: ignore[arg-type]
    assert not rec("refusal_probe", 1.0, tags={"bad tag": "x"})
    accepted = sum(
        rec("per_request", 1.0, MetricType.COUNTER, {"request_id": str(i)}) for i in range(1010)
    )
    assert accepted == 1000
    platform.flush()

    def refused() -> dict[str, Any]:
        return dict(ray.get(platform.handle.refusals.remote()))

    expected = {
        "bad-name:invalid_name": 1,
        "refusal_probe:nan": 1,
        "refusal_probe:infinite": 1,
        "refusal_probe:not_a_number": 1,
        "refusal_probe:invalid_tag": 1,
        "per_request:cardinality": 10,
    }
    wait_for(
        lambda: all(refused()["counts"].get(k) == v for k, v in expected.items()),
        what="refusal counts at the central actor",
    )
    assert "cardinality limit of 1000" in refused()["messages"]["per_request:cardinality"]
    series = ray.get(platform.handle.series.remote("per_request"))
    assert len(series) == 1000


def scrape(platform: EnterpriseObservabilityPlatform) -> dict[tuple[str, str], float]:
    host, port = platform.prometheus_address()
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, json.dumps(s.labels, sort_keys=True)): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_exposition_parses_back_to_what_was_recorded(
    platform: EnterpriseObservabilityPlatform,
) -> None:
    for v in (5.0, 50.0, 500.0):
        platform.record_metric("expo_payload", v, MetricType.HISTOGRAM, {"kind": "a"}, "expo")
    platform.gauge("expo_depth", service_name="expo").set(7)
    platform.flush()
    labels = {"kind": "a", "service": "expo"}
    platform.wait_for_points("expo_payload", labels, 3)
    platform.wait_for_points("expo_depth", {"service": "expo"}, 1)
    got = scrape(platform)
    scraped = {"kind": "a", "service_name": "expo"}  # the store's `service`, as exposed
    key = json.dumps(scraped, sort_keys=True)
    assert got[("expo_payload_count", key)] == 3.0
    assert got[("expo_payload_sum", key)] == 555.0
    assert got[("expo_payload_bucket", json.dumps({**scraped, "le": "10.0"}, sort_keys=True))] == 1
    assert got[("expo_payload_bucket", json.dumps({**scraped, "le": "+Inf"}, sort_keys=True))] == 3
    assert got[("expo_depth", json.dumps({"service_name": "expo"}, sort_keys=True))] == 7.0
    assert ("ray_enterprise_health_score", "{}") in got


@pytest.fixture
def prometheus_server(platform: EnterpriseObservabilityPlatform) -> Iterator[str]:
    """A real Prometheus scraping the exposition every second; its HTTP API's base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is missing; .ci/run installs Debian's prometheus")
        pytest.skip("no prometheus binary: `apt-get install -y prometheus` to run this test")
    host, port = platform.prometheus_address()
    listen = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "p.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: ray_enterprise\n    static_configs: [{{targets: ['{host}:{port}']}}]\n"
        )
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{listen}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield f"http://127.0.0.1:{listen}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def prom_query(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return list(json.load(resp)["data"]["result"])
    except OSError:
        return []  # not listening yet


def test_a_real_prometheus_scrapes_the_recorded_values(
    platform: EnterpriseObservabilityPlatform, prometheus_server: str
) -> None:
    for _ in range(42):
        platform.record_metric("scraped_jobs", 1, MetricType.COUNTER, {"queue": "q1"}, "scraper")
    for v in (10.0, 20.0, 30.0):
        platform.record_metric("scraped_ms", v, MetricType.TIMER, None, "scraper")
    platform.flush()
    platform.wait_for_points("scraped_ms", {"service": "scraper"}, 3)
    result = wait_for(
        lambda: prom_query(prometheus_server, 'scraped_jobs_total{service_name="scraper"}'),
        timeout=40,
        what="Prometheus to scrape scraped_jobs_total",
    )
    assert float(result[0]["value"][1]) == 42.0
    assert result[0]["metric"]["queue"] == "q1"
    p50 = prom_query(prometheus_server, 'scraped_ms{service_name="scraper",quantile="0.5"}')
    assert float(p50[0]["value"][1]) == 20.0


def test_mirroring_into_ray_metrics_keeps_the_store_whole(ray_session: None) -> None:
    """A second, unnamed central actor with the mirror on: ingesting replays into Ray."""
    from ray_enterprise.observability.central import ObservabilityActor
    from ray_enterprise.observability.metric_batch import MetricBatch, SeriesPoints

    actor = ray.remote(ObservabilityActor).options(num_cpus=0).remote(mirror_to_ray=True)
    svc = (("service", "mirror"),)
    batch = MetricBatch(
        ts_ms=1,
        series=[
            SeriesPoints("mirror_hits", MetricType.COUNTER, svc, np.array([4.0])),
            SeriesPoints("mirror_ms", MetricType.TIMER, svc, np.array([1.0, 2.0])),
        ],
    )
    assert ray.get(actor.ingest.remote(batch)) == 3
    assert ray.get(actor.stats.remote("mirror_hits", {"service": "mirror"}))["total_sum"] == 4.0
    ray.kill(actor)
