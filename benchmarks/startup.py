"""Startup: N services in an L-level dependency graph vs N bare actors started at once.

Both sides start the same class (FaultyService) and count as started when its ``start()`` hook
has returned: the bare side calls it on all actors concurrently with no ordering, the registry
starts level by level, each level only after the previous one passed a health check.

    python benchmarks/startup.py --services 50 --levels 5 --rounds 3
"""

from __future__ import annotations

import argparse
import time

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.examples.faulty import FaultyService
from ray_enterprise.service import CONCURRENCY_GROUPS
from ray_enterprise.spec import ServiceSpec

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def graph_specs(n: int, levels: int) -> list[ServiceSpec]:
    per_level = n // levels
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


def bare_round(n: int) -> float:
    cls = ray.remote(concurrency_groups=CONCURRENCY_GROUPS)(FaultyService)
    began = time.perf_counter()
    actors = [cls.options(num_cpus=0).remote() for _ in range(n)]
    ray.get([a._re_start.remote(f"b{i}", {}, 1) for i, a in enumerate(actors)])
    elapsed = time.perf_counter() - began
    for actor in actors:
        ray.kill(actor)
    return elapsed


def ordered_round(registry: object, specs: list[ServiceSpec]) -> float:
    from ray_enterprise.registry.client import EnterpriseServiceRegistry

    assert isinstance(registry, EnterpriseServiceRegistry)
    registry.register_app_sync(specs)
    began = time.perf_counter()
    status = registry.start_all_sync(timeout_s=600)
    elapsed = time.perf_counter() - began
    assert status["status"] == "healthy", status["reasons"][:5]
    ray.get(registry.actor.forget.remote())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    specs = graph_specs(args.services, args.levels)
    bare, ordered = [], []
    for r in range(args.rounds):  # alternate, so drift on a shared machine hits both sides
        bare.append(bare_round(args.services))
        ordered.append(ordered_round(registry, specs))
        print(f"round {r + 1}: bare {bare[-1]:.2f} s  ordered {ordered[-1]:.2f} s", flush=True)
    ratio = median(ordered) / median(bare)
    print(
        f"{args.services} services, {args.levels} levels: ordered median {median(ordered):.2f} s, "
        f"bare actors median {median(bare):.2f} s, ratio ordered/bare = {ratio:.2f} "
        "(target <= 1.3)"
    )
    write_result(
        "startup",
        {
            "services": args.services,
            "levels": args.levels,
            "bare_s": bare,
            "ordered_s": ordered,
            "ratio": ratio,
        },
    )
    ray_enterprise.shutdown_system()
    ray.shutdown()


if __name__ == "__main__":
    main()
