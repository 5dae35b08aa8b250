"""Upgrade: calls failed during a zero-downtime upgrade (target 0), and the upgrade's time
beside a cold start of the same service, median over rounds.

Each round, in one run: a cold start (register a new copy of the service, wait until it takes
calls) and a blue-green upgrade of the running one to a new version (start green beside blue,
wait healthy, switch, drain blue, stop it) while callers call it without pause. The upgrade
costs one cold start of green plus the drain: the route TTL (callers' copies of the replica
list expire) and the calls still in flight.

    python -m benchmarks.upgrade --rounds 5 --callers 4
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.spec import ServiceSpec

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def spec(name: str, version: int, replicas: int) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {
            "name": name,
            "class": FAULTY,
            "replicas": replicas,
            "config": {"version": version},
            "health": {"period_s": 0.5},
        }
    )


class Callers:
    """Threads calling ``work`` without pause; every failure is counted."""

    def __init__(self, registry: Any, name: str, n: int) -> None:
        self.calls = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        handles = [registry.get_service_sync(name, wait_s=60) for _ in range(n)]
        self._threads = [threading.Thread(target=self._run, args=(h,)) for h in handles]

    def _run(self, handle: Any) -> None:
        while not self._stop.is_set():
            try:
                ray.get(handle.work.remote(0, 0.005), timeout=60)
                ok = True
            except Exception as exc:
                ok = False
                error = f"{type(exc).__name__}: {str(exc)[-200:]}"
            with self._lock:
                self.calls += 1
                if not ok:
                    self.failed.append(error)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def cold_start(registry: Any, name: str, replicas: int) -> float:
    began = time.perf_counter()
    registry.register_service_sync(spec=spec(name, 1, replicas))
    handle = registry.get_service_sync(name, wait_s=120)
    ray.get(handle.work.remote(0))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=1, help="> 1 upgrades rolling")
    parser.add_argument("--bake", type=float, default=0.0, help="bake period (s), not timed")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    registry.register_app_sync([spec("api", 1, args.replicas)])
    registry.start_all_sync(timeout_s=120)
    callers = Callers(registry, "api", args.callers)
    callers.start()
    cold_s: list[float] = []
    upgrade_s: list[float] = []
    per_round: list[dict[str, Any]] = []
    try:
        for index in range(args.rounds):
            cold_s.append(cold_start(registry, f"cold-{index}", args.replicas))
            before_calls, before_failed = callers.calls, len(callers.failed)
            began = time.perf_counter()
            new = spec("api", index + 2, args.replicas)
            result = registry.upgrade_sync("api", new, bake_s=args.bake)
            took = time.perf_counter() - began - args.bake
            if result["outcome"] != "done":
                raise SystemExit(f"round {index}: upgrade {result['outcome']}: {result['reason']}")
            time.sleep(1.0)  # calls right after the switch count too
            upgrade_s.append(took)
            per_round.append(
                {
                    "cold_s": cold_s[-1],
                    "upgrade_s": took,
                    "calls": callers.calls - before_calls,
                    "failed": len(callers.failed) - before_failed,
                }
            )
            print(
                f"round {index + 1}: cold start {cold_s[-1]:.2f} s, upgrade {took:.2f} s, "
                f"{per_round[-1]['calls']} calls, {per_round[-1]['failed']} failed"
            )
    finally:
        callers.stop()
    total_calls = sum(r["calls"] for r in per_round)
    failed = sum(r["failed"] for r in per_round)
    ratio = median(upgrade_s) / median(cold_s)
    print(
        f"failed calls during {args.rounds} upgrades: {failed} of {total_calls} (target 0); "
        f"upgrade {median(upgrade_s):.2f} s vs cold start {median(cold_s):.2f} s (medians), "
        f"ratio = {ratio:.2f}"
    )
    for error in callers.failed[:5]:
        print("  failure:", error)
    write_result(
        "upgrade",
        {
            "rounds": per_round,
            "replicas": args.replicas,
            "callers": args.callers,
            "failed": failed,
            "calls": total_calls,
            "cold_s": cold_s,
            "upgrade_s": upgrade_s,
            "ratio": ratio,
        },
    )
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
