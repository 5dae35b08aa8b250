"""Graceful stop (Ray Serve's graceful_shutdown_timeout_s) on a real local Ray: a replica taken
away finishes its calls in flight before stop(), and a call that never ends is cut at the
timeout. No mocks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray
from ray.exceptions import RayActorError

import ray_enterprise
from ray_enterprise import _kv
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def test_a_scale_down_waits_for_calls_in_flight_and_cuts_one_that_never_ends(
    registry: Registry, tmp_path: Path
) -> None:
    marker = tmp_path / "stopped"
    spec = faulty(
        "grace",
        replicas=3,
        graceful_shutdown_timeout_s=4.0,
        config={"stop_marker": str(marker)},
    )
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=60)
    wait_for(lambda: len(service_actor_names()) == 3, what="3 replicas")
    # A scale-down retires the highest index first: svc:grace:1.2, then svc:grace:1.1.
    third = ray.get_actor("svc:grace:1.2", namespace=_kv.NAMESPACE)
    began = time.time()
    slow = third.work.remote("slow", 2.0)
    wait_for(lambda: ray.get(third._re_stats.remote())["inflight"] == 1, what="call in flight")
    registry.scale_sync("grace", 2)
    assert ray.get(slow, timeout=60)["value"] == "slow"  # finished, not cut by the stop
    wait_for(lambda: marker.exists(), what="stop() of the retired replica")
    stopped_at = float(marker.read_text().split()[1])
    assert stopped_at >= began + 2.0  # stop() ran only after the call returned
    wait_for(lambda: "svc:grace:1.2" not in service_actor_names(), what="replica killed")

    second = ray.get_actor("svc:grace:1.1", namespace=_kv.NAMESPACE)
    endless = second.work.remote("endless", 3600.0)
    wait_for(lambda: ray.get(second._re_stats.remote())["inflight"] == 1, what="call in flight")
    registry.scale_sync("grace", 1)
    with pytest.raises(RayActorError):  # cut by the kill after 4 s, not left to run an hour
        ray.get(endless, timeout=120)
    wait_for(lambda: service_actor_names() == ["svc:grace:1"], what="one replica left")
