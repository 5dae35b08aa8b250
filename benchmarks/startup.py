"""Startup: N services through the registry beside N plain Ray actors and N Ray Serve deployments.

Sides, one at a time, each torn down completely before the next starts (its processes gone:
our registry's ``forget`` waits until the actors' names are released, plain actors until a
call to each raises that it died, Serve's ``delete`` until the application is gone):

* ours: register N ``FaultyService`` specs in an L-level dependency graph and ``start_all``;
  the clock stops when every service passed its first health check (``--levels 1``: all at
  once, the per-service start cost; more levels add the readiness gate between levels);
* plain: N actors of a plain class (not our ``Service``: no package import, no wrappers), the
  clock stops when each answered a call;
* serve: one Serve application of N deployments, one replica each (the first takes the others'
  handles, so Serve deploys all N at once), the clock stops when ``serve.run`` returns.

Everything each side does is inside its clock (registering the specs too). The order rotates
from round to round, so no side always runs first (on a cold or a warm worker pool).

    python -m benchmarks.startup --services 20 --levels 1 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.spec import ServiceSpec

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


class PlainService:
    """What a service is without us: a class whose actor answers calls."""

    async def ready(self) -> bool:
        return True


class ServeService:
    def __init__(self, *others: Any) -> None:
        self.others = others

    async def ready(self) -> bool:
        return True


def graph_specs(n: int, levels: int) -> list[ServiceSpec]:
    per_level = max(n // levels, 1)
    specs = []
    for i in range(n):
        level = min(i // per_level, levels - 1)
        deps = [f"s{i - per_level}"] if level > 0 else []
        specs.append(
            ServiceSpec.model_validate(
                {"name": f"s{i}", "class": FAULTY, "depends_on": deps, "health": {"period_s": 1}}
            )
        )
    return specs


def ours_round(registry: Any, n: int, levels: int) -> float:
    began = time.perf_counter()
    registry.register_app_sync(graph_specs(n, levels))
    status = registry.start_all_sync(timeout_s=900)
    elapsed = time.perf_counter() - began
    assert status["status"] == "healthy", status["reasons"][:5]
    ray.get(registry.actor.forget.remote())  # stops all, waits until their names are released
    return elapsed


def plain_round(n: int) -> float:
    began = time.perf_counter()
    cls = ray.remote(PlainService)
    actors: list[Any] = [cls.options(num_cpus=0).remote() for _ in range(n)]
    ray.get([a.ready.remote() for a in actors])
    elapsed = time.perf_counter() - began
    for actor in actors:
        ray.kill(actor)
    for actor in actors:  # gone before the next side starts
        with contextlib.suppress(ray.exceptions.RayActorError):
            ray.get(actor.ready.remote(), timeout=120)
    return elapsed


def serve_round(n: int) -> float:
    from ray import serve

    began = time.perf_counter()
    options: dict[str, Any] = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}}
    others = [serve.deployment(name=f"s{i}", **options)(ServeService).bind() for i in range(1, n)]
    app = serve.deployment(name="s0", **options)(ServeService).bind(*others)
    serve.run(app, name="fleet", route_prefix="/fleet")
    elapsed = time.perf_counter() - began
    serve.delete("fleet")  # blocks until the application and its replicas are gone
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--levels", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-serve", action="store_true", help="leave Ray Serve out")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    n = args.services
    sides: dict[str, Callable[[], float]] = {
        "ours": lambda: ours_round(registry, n, args.levels),
        "plain": lambda: plain_round(n),
    }
    if not args.no_serve:
        from ray import serve

        serve.start(proxy_location="Disabled")  # handles only: no HTTP proxy on any side
        sides["serve"] = lambda: serve_round(n)
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(sides[name]())
        print(
            f"round {r + 1}: " + ", ".join(f"{x} {times[x][-1]:.2f} s" for x in order), flush=True
        )
    per_service = {name: median(values) / n for name, values in times.items()}
    ratio = per_service["ours"] / per_service["plain"]
    print(
        f"{n} services, {args.levels} level(s), per service (median of {args.rounds} rounds): "
        + ", ".join(f"{name} {cost:.3f} s" for name, cost in per_service.items())
    )
    print(f"ratio ours/plain actor = {ratio:.2f} (target <= 1.2)")
    if "serve" in per_service:
        print(f"ratio ours/serve deployments = {per_service['ours'] / per_service['serve']:.2f}")
    write_result(
        "startup",
        {
            "services": n,
            "levels": args.levels,
            "rounds_s": times,
            "per_service_s": per_service,
            "ratio_plain": ratio,
        },
    )
    if not args.no_serve:
        from ray import serve

        serve.shutdown()
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
