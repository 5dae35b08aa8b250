"""The limiter actor on the session's real Ray: leases, restarts, and 4 processes on one key."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import ray

from ray_enterprise.security.events import RATE_LIMITED, SecurityEvents
from ray_enterprise.security.limiter_actor import LIMITER_NAME, NAMESPACE, get_limiter_handle
from ray_enterprise.security.limiter_client import LeasingLimiter
from tests.integration.security.hammer import Hammer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def limiter(ray_session: None) -> Any:
    return get_limiter_handle(create=True)


def unique_key() -> str:
    return uuid.uuid4().hex[:12]


def test_the_limiter_is_one_named_actor_in_the_system_namespace(limiter: Any) -> None:
    found = ray.get_actor(LIMITER_NAME, namespace=NAMESPACE)
    assert ray.get(found.ping.remote()) == "ok"
    assert get_limiter_handle(create=True)._actor_id == limiter._actor_id


def test_a_client_admits_the_burst_then_refuses_locally(limiter: Any) -> None:
    key = unique_key()
    ray.get(limiter.set_limit.remote(key, "/status", 20.0, 10.0))
    events = SecurityEvents(metrics=False)
    client = LeasingLimiter(limiter, events=events)
    began = time.monotonic()
    decisions = [client.try_acquire(key, "/status") for _ in range(500)]
    elapsed = time.monotonic() - began
    admitted = sum(d.admitted for d in decisions)
    assert 10 <= admitted <= 10 + 20 * elapsed + 1
    refused = [d for d in decisions if not d.admitted]
    assert refused and all(0 < d.retry_after_s <= 1.0 for d in refused)
    assert client.remote_calls < 20 + 20 * elapsed  # refusals are local until retry_after
    client.close()
    assert events.total(RATE_LIMITED) == len(refused)


def test_four_processes_on_one_key_are_admitted_within_5_percent_of_the_rate(
    limiter: Any,
) -> None:
    key, route, rate = unique_key(), "/api", 1000.0
    ray.get(limiter.set_limit.remote(key, route, rate, 250.0))
    hammers = [Hammer.remote() for _ in range(4)]  # type: ignore[attr-defined]
    ray.get([h.ready.remote() for h in hammers], timeout=90)  # four live processes
    start = time.time()
    window = (start + 1.0, start + 3.5)  # after the initial burst is spent
    results = ray.get(
        [h.hammer.remote(key, route, start + 3.7, window) for h in hammers], timeout=60
    )
    for h in hammers:
        ray.kill(h)
    assert all(
        r["first_admitted"] is not None and r["first_admitted"] < window[0] for r in results
    ), f"not every client was hammering before the window opened: {results}"
    admitted = sum(r["in_window"] for r in results)
    expected = rate * (window[1] - window[0])
    assert abs(admitted / expected - 1) <= 0.05, (
        f"admitted {admitted}, expected {expected}: {results}"
    )
    calls = sum(r["remote_calls"] for r in results)
    total = sum(r["admitted"] for r in results)
    assert calls * 5 < total, f"{calls} remote calls for {total} admitted requests"
    assert all(r["admitted"] > 0.1 * total / 4 for r in results), f"one client starved: {results}"


def test_limits_survive_a_restart_of_the_limiter(limiter: Any) -> None:
    key = unique_key()
    ray.get(limiter.set_limit.remote(key, "*", 7.0, 3.0))
    before = ray.get(limiter.process_id.remote())
    ray.kill(limiter, no_restart=False)
    deadline = time.monotonic() + 90
    while True:  # the handle retries calls while the actor restarts (max_task_retries=-1)
        try:
            if ray.get(limiter.process_id.remote(), timeout=30) != before:
                break
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, "the limiter did not come back within 90 s"
    limits = ray.get(limiter.limits.remote(), timeout=30)
    assert limits[f"{key}|*"] == {"rate": 7.0, "burst": 3.0}
