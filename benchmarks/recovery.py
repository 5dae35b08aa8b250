"""Recovery: SIGKILL a service process -> healthy again, median over rounds.

Printed beside it: what a supervisor that only notices failures by periodic health checks
would need with Ray Serve's default period (10 s): on average half a period to notice, plus the
same restart. Our registry keeps a call pending on every service, so a crash is seen at once.

    python benchmarks/recovery.py --rounds 10
"""

from __future__ import annotations

import argparse
import os
import signal
import time

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.spec import ServiceSpec

SERVE_HEALTH_PERIOD_S = 10.0  # Ray Serve's default health_check_period_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    spec = ServiceSpec.model_validate(
        {
            "name": "victim",
            "class": "ray_enterprise.examples.faulty:FaultyService",
            # Ordinary settings: a 1 s health period, and enough intensity for every round.
            "restart": {"max_restarts": args.rounds + 5, "window_s": 3600, "backoff_reset_s": 1},
        }
    )
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=120)
    times: list[float] = []
    for r in range(args.rounds):
        time.sleep(1.5)  # let the backoff streak reset: every round measures a first restart
        before = registry.validate_service_health_sync("victim")
        handle = registry.get_service_sync("victim")
        pid = ray.get(handle.pid.remote())
        killed = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            info = registry.validate_service_health_sync("victim")
            if info["generation"] > before["generation"] and info["healthy"]:
                break
            time.sleep(0.005)
        times.append(time.perf_counter() - killed)
        print(f"round {r + 1}: healthy again after {times[-1]:.3f} s", flush=True)
    ours = median(times)
    restart_only = ours  # our time is detection (~10 ms) plus the restart itself
    periodic = SERVE_HEALTH_PERIOD_S / 2 + restart_only
    print(
        f"median SIGKILL -> healthy: {ours:.3f} s (target < 2 s); "
        f"periodic health checks at Ray Serve's default 10 s period: ~{periodic:.1f} s on average "
        f"(up to {SERVE_HEALTH_PERIOD_S + restart_only:.1f} s); ratio ours/periodic = "
        f"{ours / periodic:.2f}"
    )
    write_result(
        "recovery",
        {
            "rounds_s": times,
            "median_s": ours,
            "periodic_estimate_s": periodic,
            "ratio": ours / periodic,
        },
    )
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
