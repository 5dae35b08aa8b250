"""Rate limiter: cost per admitted request through the leasing client vs one remote call to the
limiter per request, and the admitted rate of 4 processes hammering one key vs the configured
rate.

The cost is measured with a limit far above what one process can ask for, so every request is
admitted and the figure is pure overhead; both sides run in interleaved blocks so that noise on
a shared machine falls on both. Target: ratio well below 0.1 (the hot path is local), and the
admitted rate within 5% of the configured one.

    python -m benchmarks.ratelimit --requests 20000 --blocks 5 --rounds 3
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.security.events import SecurityEvents
from ray_enterprise.security.limiter_actor import get_limiter_handle
from ray_enterprise.security.limiter_client import LeasingLimiter
from tests.integration.security.hammer import Hammer  # the same client the accuracy test runs


def leased_cost(limiter: LeasingLimiter, key: str, requests: int) -> float:
    began = time.perf_counter()
    for _ in range(requests):
        if not limiter.try_acquire(key, "/bench").admitted:
            raise RuntimeError("the cost benchmark must never be throttled: raise the limit")
    return (time.perf_counter() - began) / requests


def remote_cost(handle: Any, key: str, requests: int) -> float:
    began = time.perf_counter()
    for _ in range(requests):
        admitted, _ = ray.get(handle.acquire.remote(key, "/bench"))
        if not admitted:
            raise RuntimeError("the cost benchmark must never be throttled: raise the limit")
    return (time.perf_counter() - began) / requests


def accuracy_round(handle: Any, rate: float, seconds: float) -> dict[str, Any]:
    key, route = uuid.uuid4().hex[:12], "/api"
    ray.get(handle.set_limit.remote(key, route, rate, rate / 4))
    hammers = [Hammer.remote() for _ in range(4)]  # type: ignore[attr-defined]
    ray.get([h.ready.remote() for h in hammers], timeout=120)
    start = time.time()
    window = (start + 1.0, start + 1.0 + seconds)
    results = ray.get([h.hammer.remote(key, route, window[1] + 0.2, window) for h in hammers])
    for h in hammers:
        ray.kill(h)
    admitted = sum(r["in_window"] for r in results)
    total = sum(r["admitted"] for r in results)
    calls = sum(r["remote_calls"] for r in results)
    return {
        "admitted_in_window": admitted,
        "expected": rate * seconds,
        "error": admitted / (rate * seconds) - 1,
        "per_client": [r["admitted"] for r in results],
        "admitted_per_remote_call": total / max(1, calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000, help="leased requests per block")
    parser.add_argument("--remote-requests", type=int, default=1000, help="remote ones per block")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="4-client accuracy rounds")
    parser.add_argument("--rate", type=float, default=1000.0, help="configured rate, per second")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured window per round")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    handle = get_limiter_handle(create=True)
    try:
        key = uuid.uuid4().hex[:12]
        ray.get(handle.set_limit.remote(key, "/bench", 1e9, 1e9))
        limiter = LeasingLimiter(handle, events=SecurityEvents(metrics=False))
        leased_cost(limiter, key, 2000)  # warm both up
        remote_cost(handle, key, 100)
        ours, bare = [], []
        for _ in range(args.blocks):
            ours.append(leased_cost(limiter, key, args.requests))
            bare.append(remote_cost(handle, key, args.remote_requests))
        ratio = median(ours) / median(bare)
        print(
            f"per admitted request: leasing client {median(ours) * 1e6:.2f} us, one remote call "
            f"{median(bare) * 1e6:.0f} us, ratio = {ratio:.4f} (target << 0.1)"
        )
        rounds = [accuracy_round(handle, args.rate, args.seconds) for _ in range(args.rounds)]
        errors = [r["error"] for r in rounds]
        for r in rounds:
            print(
                f"4 clients, {args.rate:g}/s configured: admitted {r['admitted_in_window']} in "
                f"{args.seconds:g} s (expected {r['expected']:.0f}), error {r['error']:+.2%}, "
                f"{r['admitted_per_remote_call']:.0f} admitted per remote call, "
                f"per client {r['per_client']}"
            )
        worst = max(errors, key=abs)
        print(
            f"admitted-rate error: median {median(errors):+.2%}, worst {worst:+.2%} "
            "(target within 5%)"
        )
        write_result(
            "ratelimit",
            {
                "leased_s": ours,
                "remote_s": bare,
                "ratio": ratio,
                "rate": args.rate,
                "window_s": args.seconds,
                "rounds": rounds,
                "worst_error": worst,
            },
        )
    finally:
        ray.kill(handle)
        ray.shutdown()


if __name__ == "__main__":
    main()
