"""Upgrade: calls failed during a zero-downtime upgrade (target 0), and the upgrade's time,
beside a Ray Serve rolling update of the same class under the same load, median over rounds.

Each round, in one run, both sides one after the other (the side that goes first alternates):

* ours: the registry upgrades the running ``FaultyService`` to a new version (one replica:
  blue-green, start green beside blue, wait healthy, switch, drain blue, stop it; more
  replicas: rolling, one canary then one at a time); the clock runs until ``upgrade`` returns;
* serve: the same ``FaultyService`` class as a Serve deployment with as many replicas,
  redeployed with a new version as its init argument (a change Serve treats as new code: it
  replaces every replica, rolling);
  the clock runs until ``serve.run`` returns, when Serve reports the application RUNNING.

During each side's update, and 1 s after it, ``--callers`` threads call ``work`` through that
side's handle without pause; every failed call is counted. Nothing else runs: no copies of the
service are left from earlier rounds.

    python -m benchmarks.upgrade --rounds 3 --callers 4
"""

from __future__ import annotations

import argparse
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.examples.faulty import FaultyService
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

    def __init__(self, calls: list[Callable[[], Any]]) -> None:
        self.calls = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(c,)) for c in calls]

    def _run(self, call: Callable[[], Any]) -> None:
        while not self._stop.is_set():
            try:
                call()
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


class ServeFaulty(FaultyService):
    """The registry's service class under Serve: its version comes in as an init argument."""

    def __init__(self, version: int) -> None:
        # What the registry's start() would set: Serve calls check_health on it.
        self.config = {"version": version}
        self._healthy = True
        self._events = []


def ours_side(registry: Any, replicas: int, callers: int, bake_s: float) -> Side:
    registry.register_app_sync([spec("api", 1, replicas)])
    registry.start_all_sync(timeout_s=300)
    handles = [registry.get_service_sync("api", wait_s=60) for _ in range(callers)]
    calls: list[Callable[[], Any]] = [functools.partial(_ray_call, h) for h in handles]

    def update(version: int) -> float:
        began = time.perf_counter()
        result = registry.upgrade_sync("api", spec("api", version, replicas), bake_s=bake_s)
        took = time.perf_counter() - began - bake_s
        if result["outcome"] != "done":
            raise SystemExit(f"upgrade to {version}: {result['outcome']}: {result['reason']}")
        return took

    return Side(calls, update)


def serve_side(replicas: int, callers: int) -> Side:
    from ray import serve

    def deploy(version: int) -> Any:
        deployment = serve.deployment(
            name="api",
            num_replicas=replicas,
            ray_actor_options={"num_cpus": 0},
            health_check_period_s=0.5,  # as the registry's spec: no side waits on a slower probe
        )(ServeFaulty)
        return serve.run(deployment.bind(version), name="api", route_prefix="/api")

    handle = deploy(1)
    calls = [lambda: handle.work.remote(0, 0.005).result(timeout_s=60) for _ in range(callers)]

    def update(version: int) -> float:
        began = time.perf_counter()
        deploy(version)
        return time.perf_counter() - began

    return Side(calls, update)


def _ray_call(handle: Any) -> Any:
    return ray.get(handle.work.remote(0, 0.005), timeout=60)


@dataclass
class Side:
    calls: list[Callable[[], Any]]
    update: Callable[[int], float]
    times: list[float] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def run(self, version: int) -> None:
        callers = Callers(self.calls)
        callers.start()
        try:
            time.sleep(0.5)  # callers under way before the update starts
            took = self.update(version)
            time.sleep(1.0)  # calls right after the switch count too
        finally:
            callers.stop()
        self.times.append(took)
        self.rounds.append(
            {"update_s": took, "calls": callers.calls, "failed": len(callers.failed)}
        )
        for error in callers.failed[:3]:
            print("  failure:", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=1, help="> 1 upgrades rolling")
    parser.add_argument("--bake", type=float, default=0.0, help="bake period (s), not timed")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    from ray import serve

    import ray_enterprise

    serve.start(proxy_location="Disabled")  # handles only: no HTTP proxy on either side
    registry = ray_enterprise.connect().registry
    sides = {
        "ours": ours_side(registry, args.replicas, args.callers, args.bake),
        "serve": serve_side(args.replicas, args.callers),
    }
    try:
        for index in range(args.rounds):
            order = ["ours", "serve"] if index % 2 == 0 else ["serve", "ours"]
            for name in order:
                sides[name].run(index + 2)
            print(
                f"round {index + 1}: "
                + ", ".join(
                    f"{n} {sides[n].times[-1]:.2f} s ({sides[n].rounds[-1]['failed']} of "
                    f"{sides[n].rounds[-1]['calls']} calls failed)"
                    for n in order
                ),
                flush=True,
            )
    finally:
        serve.shutdown()
    summary = {
        name: {
            "median_s": median(side.times),
            "calls": sum(r["calls"] for r in side.rounds),
            "failed": sum(r["failed"] for r in side.rounds),
            "rounds": side.rounds,
        }
        for name, side in sides.items()
    }
    ratio = summary["ours"]["median_s"] / summary["serve"]["median_s"]
    for name, row in summary.items():
        print(
            f"{name}: {args.replicas} replica(s), update median {row['median_s']:.2f} s, "
            f"{row['failed']} of {row['calls']} calls failed"
        )
    print(f"ratio ours/serve update time = {ratio:.2f}; target 0 failed calls")
    write_result(
        "upgrade",
        {"replicas": args.replicas, "callers": args.callers, "sides": summary, "ratio": ratio},
    )
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
