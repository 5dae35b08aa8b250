"""Anomaly shards on a real Ray: spikes found after warm-up, bad points counted, state kept."""

from __future__ import annotations

import math
import os
import random
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from ray_enterprise.anomaly.series import service_of, text_of
from ray_enterprise.anomaly.shard import (
    AnomalyRouter,
    get_shard_handles,
    remove_shards,
    shard_of,
)
from tests.support import wait_for

DETECTOR = {"name": "ewm_zscore", "params": {"alpha": 0.05, "warmup": 30}}


@pytest.fixture
def shards(ray_session: None) -> Iterator[list[Any]]:
    remove_shards()
    handles = get_shard_handles(2, create=True, detector=DETECTOR, min_samples=60, checkpoint_s=0.2)
    yield handles
    remove_shards()


def series_points(name: str, n: int, *, spike_at: int | None = None, shift_at: int | None = None):
    rnd = random.Random(7)
    points = []
    for t in range(n):
        value = 100.0 + 5.0 * math.sin(t / 10.0) + rnd.gauss(0.0, 1.0)
        if spike_at is not None and t == spike_at:
            value += 80.0
        if shift_at is not None and t >= shift_at:
            value += 60.0
        points.append((name, float(t), value))
    return points


def test_spikes_and_level_shifts_are_found_after_warm_up_only(shards: list[Any]) -> None:
    router = AnomalyRouter(shards)
    spiky = 'latency_ms{service="search"}'
    shifty = 'queue_depth{service="worker"}'
    ray.get(router.ingest(series_points(spiky, 400, spike_at=300)))
    ray.get(router.ingest(series_points(shifty, 400, shift_at=250)))
    events = router.events()
    spikes = [e for e in events if e["series"] == spiky]
    shifts = [e for e in events if e["series"] == shifty]
    assert [e["timestamp"] for e in spikes] == [300.0]
    assert spikes[0]["score"] > 0.5 and 0.0 < spikes[0]["confidence"] <= 1.0
    assert spikes[0]["detector"] == "ewm_zscore"
    assert shifts and 250.0 <= shifts[0]["timestamp"] <= 255.0
    assert all(e["timestamp"] >= 60 for e in events)  # nothing during the baseline's warm-up


def test_bad_points_are_refused_counted_and_harmless(shards: list[Any]) -> None:
    router = AnomalyRouter(shards)
    name = 'cpu{service="api"}'
    bad = [(name, 1.0, float("nan")), (name, 2.0, float("inf")), (name, 3.0, "high")]
    ray.get(router.ingest([(name, 10.0, 1.0), *bad]))
    # Within a batch points are taken in time order; a point older than one already seen is late.
    ray.get(router.ingest([(name, 5.0, 1.0), (name, 11.0, 1.0)]))
    shard = shards[shard_of(name, len(shards))]
    stats = ray.get(shard.stats.remote())
    refused = stats["refused"]
    assert refused.get("nan") == 1 and refused.get("infinite") == 1
    assert refused.get("not_a_number") == 1 and refused.get("out_of_order") == 1
    assert ray.get(shard.baseline_samples.remote(name)) == 2


def test_a_restarted_shard_keeps_what_it_learned(shards: list[Any]) -> None:
    name = 'rps{service="api"}'
    shard = shards[shard_of(name, len(shards))]
    ray.get(shard.ingest.remote(series_points(name, 200)))
    ray.get(shard.checkpoint.remote())
    learned = ray.get(shard.baseline_samples.remote(name))
    assert learned == 200
    pid = ray.get(shard.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: ray.get(shard.stats.remote())["restored_from_checkpoint"],
        what="the shard back from its checkpoint",
    )
    assert ray.get(shard.baseline_samples.remote(name)) == learned
    # Warm detectors: a spike right after the restart is an event, not more warm-up.
    tail = series_points(name, 210, spike_at=205)[200:]
    assert ray.get(shard.ingest.remote(tail)) == 1


def test_events_carry_the_series_labels_so_a_tag_value_cannot_pose_as_a_service(
    shards: list[Any],
) -> None:
    router = AnomalyRouter(shards)
    forged = ("latency_ms", (("tag", 'x",service="admin'), ("service", "api")))
    points = [(forged, t, v) for _, t, v in series_points("unused", 400, spike_at=300)]
    ray.get(router.ingest(points))
    [event] = router.events(forged)
    assert service_of(event["labels"]) == "api"
    assert event["series"] == text_of(forged)
    shard = shards[shard_of(forged, len(shards))]
    assert ray.get(shard.baseline_samples.remote(forged)) == 400
    assert ray.get(shard.baseline_samples.remote(text_of(forged))) == 400
