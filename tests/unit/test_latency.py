"""Latency buckets: a p99 read from them is within one bucket (25 %) of the true one."""

from __future__ import annotations

import random

import pytest

from ray_enterprise import latency


@pytest.mark.parametrize("seed", range(5))
def test_a_quantile_from_buckets_bounds_the_true_one_within_a_bucket(seed: int) -> None:
    rng = random.Random(seed)
    samples = [rng.lognormvariate(-4, 1.5) for _ in range(5_000)]
    counts = latency.empty()
    for s in samples:
        counts[latency.bucket_of(s)] += 1
    true_p99 = sorted(samples)[int(0.99 * len(samples)) - 1]
    read = latency.quantile_s(counts, 0.99)
    assert read is not None
    assert true_p99 <= read <= max(true_p99 * latency.GROWTH, latency.FIRST_S)


def test_extremes_land_in_the_first_and_last_buckets() -> None:
    assert latency.bucket_of(0.0) == 0
    assert latency.bucket_of(1e9) == latency.COUNT - 1
    assert latency.quantile_s(latency.empty(), 0.99) is None
    assert latency.upper_bound_s(latency.COUNT - 1) == float("inf")
