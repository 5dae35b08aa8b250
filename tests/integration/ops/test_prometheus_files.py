"""cluster/prometheus and cluster/grafana against the real tools: promtool checks the files, a
real Prometheus scrapes a running system with the shipped config and rules, a rule fires into a
real Alertmanager, and every query of the Grafana dashboard returns data from that Prometheus."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray
import sqlalchemy as sa
import yaml

import ray_enterprise
from ray_enterprise.anomaly.shard import clear_checkpoints, get_shard_handles, remove_shards
from ray_enterprise.config.errors import ConfigError
from ray_enterprise.observability.central import ObservabilityActor
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.platform import (
    EnterpriseObservabilityPlatform,
    boot_observability,
    flush_all,
)
from ray_enterprise.security.apikeys import ApiKeyStore
from ray_enterprise.security.errors import SecurityError
from tests.integration.helpers import faulty
from tests.support import free_port, wait_for

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "cluster"
PROMETHEUS_DIR = CLUSTER / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "ray_enterprise_rules.yml"
DASHBOARD = CLUSTER / "grafana" / "ray_enterprise.json"
#: The port the shipped config scrapes (observability.prometheus_port on the head).
SHIPPED_PORT = 9464


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not on PATH; install the Debian packages prometheus and "
        message += "prometheus-alertmanager"
        if os.environ.get("CI"):
            pytest.fail(message + ", but CI is set: these tests must run")
        pytest.skip(message)
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROMETHEUS_DIR,
        check=False,
    )


def test_promtool_accepts_the_scrape_config_and_the_rules_and_their_unit_tests() -> None:
    for args in (
        ("check", "config", CONFIG.name),
        ("check", "rules", RULES.name),
        ("test", "rules", "ray_enterprise_rules_test.yml"),
    ):
        done = promtool(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    shipped = yaml.safe_load(CONFIG.read_text())
    [job] = shipped["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"ray-head:{SHIPPED_PORT}"]


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except OSError:
        return None  # not listening yet


def query(base: str, expr: str) -> list[dict[str, Any]]:
    answer = _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    return list(answer["data"]["result"]) if answer else []


def _serve(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_every_metric_the_dashboard_plots_is_exported_by_the_code() -> None:
    """A panel over a name nothing exports would show "No data" forever; the next test proves
    each query has data, this one says which name is unknown when a rename breaks one."""
    code = "\n".join(p.read_text() for p in (REPO / "ray_enterprise").rglob("*.py"))
    names = {n for e in dashboard_exprs() for n in re.findall(r"\bray_enterprise_\w+", e)}
    assert len(names) >= 12
    unknown = sorted(n for n in names if f'"{n.removesuffix("_total")}"' not in code)
    assert unknown == [], "the dashboard plots metrics no code exports"


@pytest.fixture(scope="module")
def anomaly_central(ray_session: None) -> Iterator[tuple[str, int]]:
    """A second, unnamed observability actor with one anomaly shard, fed points of one series:
    the session's system actor runs without shards (tests/conftest.py sets
    RAY_ENTERPRISE_ANOMALY_SHARDS=0 to spare the machine), and a cluster with detection on
    exports what this one does. Prometheus scrapes both."""
    remove_shards()
    (shard,) = get_shard_handles(1, create=True)
    central = (
        ray.remote(ObservabilityActor)
        .options(num_cpus=0)
        .remote(anomaly_shards=1, health_period_s=1.0)
    )
    labels = (("service", "ops-dashboard"),)
    for i in range(20):
        values = np.array([5.0, 5.5]) if i < 19 else np.array([500.0])
        batch = MetricBatch(
            ts_ms=1_000_000 + i * 1000,
            series=[SeriesPoints("ops_queue_depth", MetricType.GAUGE, labels, values)],
        )
        ray.get(central.ingest.remote(batch))
    address = ray.get(central.prometheus_address.remote())
    try:
        yield address
    finally:
        ray.kill(central)
        ray.kill(shard)
        remove_shards()
        clear_checkpoints()


@pytest.fixture(scope="module")
def stack(
    ray_session: None,
    anomaly_central: tuple[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EnterpriseObservabilityPlatform, str, str]]:
    """The session's observability actor, a real Alertmanager, and a real Prometheus run with
    the shipped config and rules; only the addresses and intervals differ from the files."""
    tmp = tmp_path_factory.mktemp("prometheus")
    platform = EnterpriseObservabilityPlatform(boot_observability())
    host, port = platform.prometheus_address()
    shard_host, shard_port = anomaly_central
    am_port, prom_port = free_port(), free_port()
    (tmp / "am.yml").write_text('route: {receiver: "null"}\nreceivers: [{name: "null"}]\n')
    alertmanager = _serve(
        [
            binary("prometheus-alertmanager"),
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
            f"--storage.path={tmp / 'am'}",
            f"--config.file={tmp / 'am.yml'}",
        ],
        tmp / "am.log",
    )
    config = yaml.safe_load(CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{am_port}"
    ]
    job = config["scrape_configs"][0]
    job["scrape_interval"] = "1s"
    job["static_configs"][0]["targets"] = [f"{host}:{port}", f"{shard_host}:{shard_port}"]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = _serve(
        [
            binary("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp / "prometheus.log",
    )
    try:
        yield platform, f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
    finally:
        _stop(prometheus)
        _stop(alertmanager)


def _refuse(platform: EnterpriseObservabilityPlatform, name: str) -> None:
    assert not platform.record_metric(name, 1.0)  # a '-' is no Prometheus name: refused
    platform.flush()


def test_a_real_prometheus_scrapes_the_system_and_a_shipped_rule_fires_into_alertmanager(
    stack: tuple[EnterpriseObservabilityPlatform, str, str],
) -> None:
    platform, prometheus, alertmanager = stack
    bad = f"ops-probe-{uuid.uuid4().hex[:8]}"
    _refuse(platform, bad)
    # A counter's first sample is no increase: Prometheus must see it once, then see it rise.
    selector = f'ray_enterprise_metric_refusals_total{{metric="{bad}"}}'
    wait_for(lambda: query(prometheus, selector), timeout=60, what=f"Prometheus to scrape {bad}")
    _refuse(platform, bad)

    def fired() -> list[dict[str, Any]]:
        alerts = _get(f"{alertmanager}/api/v2/alerts") or []
        return [
            a
            for a in alerts
            if a["labels"].get("alertname") == "RayEnterpriseMetricsRefused"
            and a["labels"].get("metric") == bad
        ]

    [alert] = wait_for(fired, timeout=90, what="RayEnterpriseMetricsRefused at Alertmanager")
    assert alert["labels"]["severity"] == "low" and alert["labels"]["reason"] == "invalid_name"
    assert alert["annotations"]["summary"] == f"points of {bad} refused: invalid_name"
    assert query(prometheus, 'up{job="ray_enterprise"}')[0]["value"][1] == "1"


def test_every_query_of_the_grafana_dashboard_returns_data_from_that_prometheus(
    stack: tuple[EnterpriseObservabilityPlatform, str, str],
    registry: ray_enterprise.EnterpriseServiceRegistry,
    own_config_and_alerts: tuple[Any, Any],
    tmp_path: Path,
) -> None:
    platform, prometheus, _ = stack
    # What the dashboard plots must have happened: a service in the registry, a config change
    # applied and one rejected, an open alert, anomaly points scored (the fixture's), a refused
    # API key, refused points (the previous test's, or these), and a firing rule.
    registry.register_app_sync([faulty("ops-dashboard")])
    assert registry.start_all_sync(timeout_s=60)["status"] == "healthy"
    config, alerts = own_config_and_alerts
    with pytest.raises(ConfigError):
        ray.get(config.set_value.remote("observability.cardinality_limit", -1))
    ray.get(config.set_value.remote("observability.cardinality_limit", 500))
    signal = {"labels": {"alertname": "OpsDashboardProbe", "service": "x"}, "severity": "low"}
    ray.get(alerts.ingest.remote([signal]))
    store = ApiKeyStore(sa.create_engine(f"sqlite:///{tmp_path / 'keys.db'}"), iterations=1000)
    for _ in range(2):
        with pytest.raises(SecurityError):
            store.verify("rek_notakey_" + "A" * 40)
        flush_all()
        _refuse(platform, "ops-dashboard-probe")
        wait_for(
            lambda: query(prometheus, "ray_enterprise_security_auth_failures_total"),
            timeout=60,
            what="auth failures in Prometheus",
        )
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    for expr in exprs:
        wait_for(lambda e=expr: query(prometheus, e), timeout=60, what=f"data for {expr}")
