"""The demo application of cluster/demo.yaml does real work end to end."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import ray

import ray_enterprise
from ray_enterprise.spec import load_app_spec
from tests.integration.helpers import service
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_demo_serves_searches_caches_and_exports(
    registry: ray_enterprise.EnterpriseServiceRegistry,
) -> None:
    app = load_app_spec(REPO / "cluster" / "demo.yaml")
    registry.register_app_sync(app)
    status = registry.start_all_sync(timeout_s=180)
    assert status["status"] == "healthy", status["reasons"]
    assert status["levels"][0] == ["database"]

    api = registry.get_service_sync("api")
    reply = ray.get(api.handle.remote({"op": "search", "q": "restart intensity supervisor"}))
    assert reply["ok"], reply
    assert reply["result"][0]["title"] == "Restart intensity"

    cache = registry.get_service_sync("cache")
    before = ray.get(cache.stats.remote())
    for _ in range(3):
        assert ray.get(api.handle.remote({"op": "get", "key": "doc:d000"}))["result"]["title"]
    after = ray.get(cache.stats.remote())
    assert after["hits"] >= before["hits"] + 2

    bad = ray.get(api.handle.remote({"op": "drop tables"}))
    assert not bad["ok"] and "unknown op" in bad["error"]

    exporter = registry.get_service_sync("exporter")
    snap = wait_for(
        lambda: (s := ray.get(exporter.snapshot.remote())).get("services", {}).get("api") and s,
        what="exporter snapshot with api stats",
    )
    assert set(snap["services"]) == {"api", "worker", "cache"}

    # Kill the cache: it is restarted, its dependents are degraded meanwhile and recover.
    pid = ray.get(cache.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            service(registry, "cache")["generation"] == 2
            and registry.get_system_status_sync()["status"] == "healthy"
        ),
        timeout=60,
        what="demo healthy again after the cache was killed",
    )
    reply = ray.get(api.handle.remote({"op": "search", "q": "token bucket rate"}))
    assert reply["ok"] and reply["result"][0]["title"] == "Rate limiting"
