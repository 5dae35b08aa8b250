"""The observability section's settings take effect on a real central actor and a real scrape.

The settings are written to a fresh ConfigActor's database source and read back the way
``boot_observability`` reads them; the central actor is an unnamed instance, so the session's
system actor (shared by every test) keeps its own settings.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.observability.central import ObservabilityActor
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.platform import central_options, observability_section
from tests.support import free_port, wait_for


@pytest.fixture
def config(ray_session: None, tmp_path: Path) -> Iterator[Any]:
    remove_config_actor()
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 'config.db'}")
    yield get_config_handle(create=True, settings=settings)
    remove_config_actor()


def central_from_config() -> Any:
    options = central_options(observability_section())
    return ray.remote(ObservabilityActor).options(num_cpus=0).remote(**options)


def batch(*series: SeriesPoints) -> MetricBatch:
    return MetricBatch(ts_ms=int(time.time() * 1000), series=list(series))


def gauge(name: str, value: str, points: int = 1) -> SeriesPoints:
    labels = (("service", value),)
    return SeriesPoints(name, MetricType.GAUGE, labels, np.arange(float(points)))


def test_limits_port_and_label_come_from_the_config_section(config: Any) -> None:
    port = free_port()
    ray.get(config.set_value.remote("observability.cardinality_limit", 3))
    ray.get(config.set_value.remote("observability.series_capacity", 4))
    ray.get(config.set_value.remote("observability.prometheus_port", port))
    central = central_from_config()
    try:
        ray.get(central.ingest.remote(batch(*(gauge("card_probe", f"s{i}") for i in range(5)))))
        assert len(ray.get(central.series.remote("card_probe"))) == 3
        assert ray.get(central.refusals.remote())["counts"]["card_probe:cardinality"] == 2
        ray.get(central.ingest.remote(batch(gauge("ring_probe", "r", points=10))))
        stats = ray.get(central.stats.remote("ring_probe", {"service": "r"}))
        assert stats["total_count"] == 10 and stats["windows"]["1m"]["count"] == 4

        # Loopback and the configured port, scraped over real HTTP; `service` is exposed as
        # service_name, which a ServiceMonitor's own `service` label does not collide with.
        assert tuple(ray.get(central.prometheus_address.remote())) == ("127.0.0.1", port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'ring_probe{service_name="r"} 9.0' in text
        assert 'service="' not in text
    finally:
        ray.kill(central)


def test_prometheus_disabled_serves_no_metrics_port(config: Any) -> None:
    port = free_port()
    ray.get(config.set_value.remote("observability.prometheus_port", port))
    ray.get(config.set_value.remote("observability.prometheus_enabled", False))
    central = central_from_config()
    try:
        assert ray.get(central.prometheus_address.remote()) is None
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        # The store and its exposition through the management API still work.
        ray.get(central.ingest.remote(batch(gauge("quiet_probe", "q"))))
        assert b"quiet_probe" in ray.get(central.exposition.remote())
    finally:
        ray.kill(central)


def test_mirror_to_ray_metrics_reaches_rays_own_metrics_endpoint(config: Any) -> None:
    ray.get(config.set_value.remote("observability.mirror_to_ray_metrics", True))
    ray.get(config.set_value.remote("observability.prometheus_enabled", False))
    central = central_from_config()
    node = next(n for n in ray.nodes() if n["Alive"])
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"

    def mirrored() -> bool:
        ray.get(central.ingest.remote(batch(gauge("mirror_probe", "m"))))
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return "mirror_probe" in resp.read().decode()
        except OSError:
            return False

    try:
        wait_for(mirrored, timeout=60, interval=1.0, what=f"mirror_probe at Ray's {url}")
    finally:
        ray.kill(central)
