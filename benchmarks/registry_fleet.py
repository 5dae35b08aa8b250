"""Registry fleet, on this machine: N services registered and started through the registry,
beside N bare Ray actors of a plain class started the same way, in the same run.

Sides, both ``num_cpus=0``, one process per actor (Ray's, for both):

* ours: N ``FaultyService`` services (1 s health period) registered and started through the
  registry; status is ``get_system_status`` on the registry actor;
* plain: N actors of a plain class; without a registry, a status of the fleet is a call to
  every actor, so that is what is timed beside ours.

Printed per N: start time, status p50/p99 over ``--status-calls`` calls, the registry
process's CPU % while the fleet idles ``--idle`` s (psutil on its pid), the registry's RSS,
and the summed RSS of the fleet's worker processes, each beside the plain side's.

Memory decides how many fit: each actor is a Ray worker process (~100+ MB). With
``--budget-gb``, after the sizes given the script runs the largest N (at most ``--max``)
whose fleet RSS, at the per-service RSS measured, fits the budget.

    nice -n 10 python -m benchmarks.registry_fleet --services 50 100 --budget-gb 12 --max 300
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

import psutil
import ray

from benchmarks._common import start_ray, write_result
from ray_enterprise.spec import ServiceSpec

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


class PlainService:
    """What a service is without us: a class whose actor answers calls."""

    async def ready(self) -> bool:
        return True

    async def pid(self) -> int:
        import os

        return os.getpid()


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            total += psutil.Process(pid).memory_info().rss
    return total / 2**20


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def ours(registry: Any, n: int, calls: int, idle_s: float) -> dict[str, Any]:
    specs = [
        ServiceSpec.model_validate({"name": f"f{i}", "class": FAULTY, "health": {"period_s": 1}})
        for i in range(n)
    ]
    actor = registry.actor
    began = time.perf_counter()
    registry.register_app_sync(specs)
    status = registry.start_all_sync(timeout_s=3600)
    started_s = time.perf_counter() - began
    up = sum(1 for s in status["services"] if s["state"] == "healthy")
    handles = [registry.get_service_sync(f"f{i}", wait_s=60) for i in range(n)]
    pids = [int(p) for p in ray.get([h.pid.remote() for h in handles])]
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        ray.get(actor.get_system_status.remote())
        samples.append(time.perf_counter() - t)
    reg = psutil.Process(int(ray.get(actor.pid.remote())))
    reg.cpu_percent(None)
    time.sleep(idle_s)
    cpu = reg.cpu_percent(None)
    p50, p99 = percentiles(samples)
    row = {
        "side": "ours",
        "services": n,
        "healthy": up,
        "start_s": started_s,
        "status_p50_ms": p50,
        "status_p99_ms": p99,
        "registry_cpu_pct": cpu,
        "registry_rss_mb": reg.memory_info().rss / 2**20,
        "fleet_rss_mb": rss_mb(pids),
    }
    ray.get(actor.forget.remote())  # stops all, waits until their names are released
    return row


def plain(n: int, calls: int) -> dict[str, Any]:
    cls = ray.remote(PlainService)
    began = time.perf_counter()
    actors: list[Any] = [cls.options(num_cpus=0).remote() for _ in range(n)]
    ray.get([a.ready.remote() for a in actors])
    started_s = time.perf_counter() - began
    pids = [int(p) for p in ray.get([a.pid.remote() for a in actors])]
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        ray.get([a.ready.remote() for a in actors])
        samples.append(time.perf_counter() - t)
    p50, p99 = percentiles(samples)
    row = {
        "side": "plain",
        "services": n,
        "healthy": n,
        "start_s": started_s,
        "status_p50_ms": p50,
        "status_p99_ms": p99,
        "fleet_rss_mb": rss_mb(pids),
    }
    for a in actors:
        ray.kill(a)
    for a in actors:  # gone before the next side starts
        with contextlib.suppress(ray.exceptions.RayActorError):
            ray.get(a.ready.remote(), timeout=120)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--status-calls", type=int, default=200)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--budget-gb", type=float, default=0.0, help="0: no extra size")
    parser.add_argument("--max", type=int, default=300)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    rows: list[dict[str, Any]] = []
    sizes = list(args.services)
    i = 0
    while i < len(sizes):
        n = sizes[i]
        sides = ["ours", "plain"] if i % 2 == 0 else ["plain", "ours"]
        for side in sides:
            if side == "ours":
                row = ours(registry, n, args.status_calls, args.idle)
            else:
                row = plain(n, args.status_calls)
            rows.append(row)
            print(
                f"n={n} {side:5s}: {row['healthy']} up, start {row['start_s']:.1f} s, status"
                f" p50 {row['status_p50_ms']:.1f} ms p99 {row['status_p99_ms']:.1f} ms, fleet"
                f" RSS {row['fleet_rss_mb']:.0f} MB ({row['fleet_rss_mb'] / n:.0f} MB each)"
                + (
                    f", registry CPU {row['registry_cpu_pct']:.1f} % idle over {args.idle:g} s,"
                    f" RSS {row['registry_rss_mb']:.0f} MB"
                    if side == "ours"
                    else ""
                ),
                flush=True,
            )
        i += 1
        if i == len(sizes) and args.budget_gb:
            each = max(r["fleet_rss_mb"] / r["services"] for r in rows)
            fits = min(args.max, int(args.budget_gb * 1024 / each))
            print(f"{each:.0f} MB per service: {fits} fit in {args.budget_gb:g} GB", flush=True)
            if fits > max(sizes):
                sizes.append(fits)
    write_result("registry_fleet", {"args": vars(args), "rows": rows})
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
