"""Registry-side CPU of one health check with the issue-24 probe features on, beside today's.

Per check the registry runs the probe rule (``judge_check``) and rebuilds the route table
when the replica started or readiness moved it in or out. The peer: the same code with the
features at their defaults (no readiness answers, ``success_threshold`` 1), what every spec
written before them runs, the table rebuilt only when a replica starts. On:
readiness answers that say no now and then, ``success_threshold`` 3. Blocks alternate, the
side that leads alternating, in one process; the figure is the ratio.

    python -m benchmarks.probe_rules --replicas 64 --checks 200000 --blocks 6
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from benchmarks._common import median, write_result
from ray_enterprise.registry.replica_rules import CheckVerdict, judge_check
from ray_enterprise.registry.replicas import ReplicaSet
from ray_enterprise.registry.routing import RouteTable, Routing


def run(replicas: int, checks: int, *, features: bool) -> float:
    """Seconds per check: the rule, and the route table rebuilt when it changed."""
    fleet = ReplicaSet("api")
    members = [fleet.add(1) for _ in range(replicas)]
    table = RouteTable(1, (), 0.5, Routing.ROUND_ROBIN, 5.0)
    began = time.perf_counter()
    for i in range(checks):
        replica = members[i % replicas]
        serving = replica.serving
        if features:
            ready = (i // replicas) % 50 != 7  # a "no" now and then
            verdict = judge_check(
                fleet, replica, True, ready=ready, current=True, threshold=3,
                success_threshold=3, now=float(i),
            )  # fmt: skip
        else:
            verdict = judge_check(fleet, replica, True, current=True, threshold=3)
        if verdict is CheckVerdict.READY or replica.serving != serving:
            new = RouteTable(table.epoch + 1, tuple(fleet.routes()), 0.5, Routing.ROUND_ROBIN, 5.0)
            if replace(table, epoch=new.epoch) != new:
                table = new
    return (time.perf_counter() - began) / checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--blocks", type=int, default=6)
    args = parser.parse_args()
    on: list[float] = []
    off: list[float] = []
    for block in range(args.blocks):
        order = [True, False] if block % 2 == 0 else [False, True]
        for features in order:
            (on if features else off).append(run(args.replicas, args.checks, features=features))
    ratio = median(on) / median(off)
    print(
        f"per check: features on {median(on) * 1e6:.2f} us, off (today's rule) "
        f"{median(off) * 1e6:.2f} us, ratio {ratio:.2f} ({args.replicas} replicas)"
    )
    write_result(
        "probe_rules",
        {"args": vars(args), "on_s": on, "off_s": off, "ratio": ratio},
    )


if __name__ == "__main__":
    main()
