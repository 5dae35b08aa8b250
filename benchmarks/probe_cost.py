"""Registry CPU per service per second for 1 Hz health probes: the batched prober (issues 20
and 25) beside the per-replica asyncio loop it replaced, on the same real service actors.

Both sides run in one async actor (``ProbeHost``, ``num_cpus=0``), as the registry's probes
do, against the same N ``FaultyService`` actors (``num_cpus=0``, started as the registry
starts them), probing each every ``--period`` s:

* batched: :class:`ray_enterprise.registry.prober.Prober`: one loop, each 50 ms tick sends the
  probes due and polls every probe out with one ``ray.wait``; watch calls are handed to the
  loop by their refs' completion callbacks;
* per-replica (the peer, the registry's code before issues 20/25, re-created here): per
  replica one asyncio task looping ``await asyncio.wait_for(handle._re_health.remote(),
  timeout)`` then ``asyncio.sleep(period)``, and one task keeping a watch call awaited.

Each answer goes through the same pure rule on both sides (``judge_check`` on a real
``ReplicaSet``); what the registry does beyond it (supervisor, routes) is the same on both
sides and not in the clock. The watch call polls every ``--watch-poll`` s on both sides (the
registry's is 30 s) so that the calls a side leaves pending when it stops are gone before
long. Inside the clock: ``time.process_time()`` of the host process (every thread: the event
loop and Ray's core worker) over ``--window`` s after ``--warmup`` s. An ``idle`` side (the
same host, no probes) gives the floor. Rounds alternate which side runs first. Under load the
per-replica loop's period stretches by each check's round trip (it sleeps a period after each
answer), the prober's does not: CPU per check is printed beside CPU per service per second.

    nice -n 10 .venv/bin/python -m benchmarks.probe_cost --services 50 100 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

import ray

from benchmarks._common import start_ray, write_result
from ray_enterprise.registry.prober import Prober
from ray_enterprise.registry.replica_rules import judge_check
from ray_enterprise.registry.replica_wrapper import (
    Check,
    ReplicaActor,
    check_failed,
    check_passed,
    timed_out,
)
from ray_enterprise.registry.replicas import ReplicaSet
from ray_enterprise.spec import ServiceSpec

FAULTY = "ray_enterprise.examples.faulty:FaultyService"
SIDES = ("batched", "per_replica")


class ProbeHost:
    """Plays the registry's probing part over the given actors, one side at a time."""

    def __init__(self, handles: list[Any], period_s: float, watch_poll_s: float) -> None:
        self.actors = [ReplicaActor(f"bench:1.{i}", h) for i, h in enumerate(handles)]
        self.period_s = period_s
        self.watch_poll_s = watch_poll_s
        self.timeout_s = 2.0
        self.judged = 0
        self.replicas = ReplicaSet("bench")
        self.members = {a.id: self.replicas.add(1) for a in self.actors}

    def judge(self, rid: str, check: Check) -> None:
        """The per-answer rule, identical on both sides."""
        self.judged += 1
        replica = self.members[rid]
        now = time.monotonic()
        judge_check(
            self.replicas, replica, check.ok, ready=check.ready, current=True, threshold=3, now=now
        )

    # -- batched: the prober, with an owner that only judges -------------------------------

    def probe_timeout(self, rid: str) -> float | None:
        return self.timeout_s

    def checked(self, rid: str, check: Check) -> None:
        self.judge(rid, check)
        self.prober.again(rid, self.period_s)

    def watched(self, rid: str, outcome: str) -> None:
        self.prober.watch_again(rid, 0.0)

    def _start_batched(self) -> list[asyncio.Task[None]]:
        self.prober = Prober(self, watch_poll_s=self.watch_poll_s)
        for actor in self.actors:
            self.prober.add(actor.id, actor)
            self.prober.again(actor.id, 0.0)
        return []

    # -- per replica: the loop the prober replaced -----------------------------------------

    async def _probe(self, actor: ReplicaActor) -> None:
        while True:
            try:
                answer = await asyncio.wait_for(
                    actor.handle._re_health.remote(), timeout=self.timeout_s
                )
                check = check_passed(answer)
            except asyncio.TimeoutError:
                check = timed_out(self.timeout_s)
            except Exception as exc:
                check = check_failed(exc)
            self.judge(actor.id, check)
            await asyncio.sleep(self.period_s)

    async def _watch(self, actor: ReplicaActor) -> None:
        while True:
            await actor.handle._re_watch.remote(self.watch_poll_s)

    def _start_per_replica(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(self._probe(a)) for a in self.actors]
        return tasks + [loop.create_task(self._watch(a)) for a in self.actors]

    async def measure(self, side: str, warmup_s: float, window_s: float) -> dict[str, Any]:
        tasks: list[asyncio.Task[None]] = []
        if side == "batched":
            tasks = self._start_batched()
        elif side == "per_replica":
            tasks = self._start_per_replica()
        await asyncio.sleep(warmup_s)
        cpu, wall, judged = time.process_time(), time.monotonic(), self.judged
        await asyncio.sleep(window_s)
        cpu = time.process_time() - cpu
        wall = time.monotonic() - wall
        judged = self.judged - judged
        for task in tasks:
            task.cancel()
        if side == "batched":
            self.prober.close()
        await asyncio.sleep(0.5)  # the last answers land outside every window
        return {"side": side, "cpu_s": cpu, "wall_s": wall, "checks": judged}


def start_fleet(n: int) -> list[Any]:
    spec = ServiceSpec.model_validate({"name": "bench", "class": FAULTY})
    actors = [ReplicaActor.create(spec, f"probe-bench:1.{i}") for i in range(n)]
    ray.get([a.handle._re_start.remote("bench", {}, 1, None) for a in actors])
    return actors


def stop_fleet(actors: list[ReplicaActor]) -> None:
    for actor in actors:
        actor.kill()
    for actor in actors:  # gone before the next size starts
        with contextlib.suppress(ray.exceptions.RayActorError):
            ray.get(actor.handle.pid.remote(), timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--watch-poll", type=float, default=10.0)
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    for n in args.services:
        actors = start_fleet(n)
        host_cls: Any = ray.remote(num_cpus=0)(ProbeHost)
        host = host_cls.remote([a.handle for a in actors], args.period, args.watch_poll)
        per: dict[str, list[float]] = {s: [] for s in (*SIDES, "idle")}
        for r in range(args.rounds):
            order = [*SIDES] if r % 2 == 0 else [*reversed(SIDES)]
            for side in ["idle", *order] if r == 0 else order:
                row = ray.get(host.measure.remote(side, args.warmup, args.window))
                row.update(services=n, round=r, order=order)
                ms = row["cpu_s"] / row["wall_s"] / n * 1e3
                row["cpu_ms_per_service_s"] = ms
                rows.append(row)
                per[side].append(ms)
                print(
                    f"n={n} round {r} {side:11s}: {ms:.3f} ms CPU per service per s"
                    f" ({row['cpu_s'] / row['wall_s'] * 100:.1f} % of a core,"
                    f" {row['checks'] / row['wall_s']:.1f} checks/s"
                    + (
                        f", {row['cpu_s'] / row['checks'] * 1e6:.0f} us per check)"
                        if row["checks"]
                        else ")"
                    ),
                    flush=True,
                )
        ours, peer = statistics.median(per["batched"]), statistics.median(per["per_replica"])
        idle = per["idle"][0]
        us = {  # CPU per check: the old loop's period stretches by each check's round trip
            side: statistics.median(
                r["cpu_s"] / r["checks"] * 1e6
                for r in rows
                if r["side"] == side and r["services"] == n
            )
            for side in SIDES
        }
        line = {
            "services": n,
            "batched_ms": ours,
            "per_replica_ms": peer,
            "idle_ms": idle,
            "ratio": ours / peer,
            "ratio_above_idle": (ours - idle) / (peer - idle),
            "batched_us_per_check": us["batched"],
            "per_replica_us_per_check": us["per_replica"],
            "ratio_per_check": us["batched"] / us["per_replica"],
        }
        summary.append(line)
        print(
            f"n={n}: batched {ours:.3f} vs per-replica {peer:.3f} ms CPU per service per s,"
            f" ratio {line['ratio']:.2f} (idle host {idle:.3f}; above idle"
            f" {line['ratio_above_idle']:.2f}); per check {us['batched']:.0f} vs"
            f" {us['per_replica']:.0f} us, ratio {line['ratio_per_check']:.2f}",
            flush=True,
        )
        ray.kill(host)
        stop_fleet(actors)
    write_result("probe_cost", {"args": vars(args), "rows": rows, "summary": summary})
    ray.shutdown()


if __name__ == "__main__":
    main()
