"""Registry scale, simulated: the pure supervisor and the registry's bookkeeping over a fleet of
1,000 / 10,000 / 100,000 services on a fake clock, incremental against full recomputation.

No Ray: a simulated cluster feeds the supervisor what the registry would observe (health
checks every ``--period`` s per service, spread over the period; crashes; slow starts; a
node lost now and then, and always one in the middle of the measured window, taking its
share of the fleet at once), and executes its actions
(a start answers its first check after a start delay). Each tick runs what the registry
actor's loop runs (supervisor tick, durable records, replica counts), and one status call
(what ``get_system_status`` does) is timed per tick.

Two sides in one run, the one that leads alternating per round:
- ``incremental``: the registry's own code (tick over marked records and due timers; records,
  replica counts and the status snapshot for touched services through :class:`RegistryBook`,
  the class the registry actor runs);
- ``full``: the code as it was (``Supervisor(full_scan=True)`` visits every record every
  tick, every record persisted and its replica count looked at per tick, and status
  recomputed over every service per call), the reference the unit tests hold the
  incremental side to. Both sides bring the fleet up the same way; the full side switches to
  full recomputation for the measured steady state (bringing 10,000 services up the old way
  would take most of an hour here, and the tests prove both paths reach the same states).

Inside the clock (process CPU time): everything the registry does per tick, observations
included; not the simulated cluster's own bookkeeping. Printed: CPU per tick and per
simulated second (the fraction of one core at ``--tick`` s per tick), CPU per service, and
the status call's p50/p99.

    python -m benchmarks.registry_scale --services 1000 10000 100000 --seconds 20 --rounds 2
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks._common import write_result
from ray_enterprise.registry.bookkeeping import RegistryBook
from ray_enterprise.registry.status import overall_status, service_status
from ray_enterprise.registry.supervision import (
    UP_STATES,
    KillService,
    StartService,
    Supervisor,
)
from ray_enterprise.spec import ServiceSpec


class SimClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def specs(n: int) -> list[ServiceSpec]:
    """A forest: one service in ten is a root, the others depend on one earlier service."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        deps = [f"s{rng.randrange(i)}"] if i and i % 10 else []
        crit = ("critical", "high", "medium", "low")[i % 4]
        out.append(
            ServiceSpec.model_validate(
                {"name": f"s{i}", "class": "pkg.mod:Svc", "depends_on": deps, "criticality": crit}
            )
        )
    return out


@dataclass
class Registry:
    """What the registry actor's loop does per tick, on either side, without Ray: the
    supervisor and the registry's own bookkeeping (:class:`RegistryBook`, the class the actor
    runs), with a dict for the durable store and replica counts for the cluster."""

    sup: Supervisor
    full: bool
    persisted: dict[str, dict[str, Any]] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    book: RegistryBook = field(init=False)

    def __post_init__(self) -> None:
        self.book = RegistryBook(self.persisted.__setitem__)

    def after_tick(self) -> None:
        if self.full:
            names = [r.spec.name for r in self.sup.records()]
        else:
            self.book.note(self.sup.take_touched())
            names = list(self.book.take_unreconciled())
        for name in names:  # replica counts: desired against actual, for up services
            rec = self.sup.record(name)
            if rec.state in UP_STATES and self.replicas.get(name, 0) < rec.spec.replicas:
                self.replicas[name] = rec.spec.replicas
        self.book.persist(self.sup, every=self.full)

    def status(self) -> dict[str, Any]:
        if self.full:
            services = [service_status(r) for r in self.sup.records()]
            result = overall_status(services, running=self.sup.running)
            result["services"] = [s.to_json() for s in services]
            return result
        self.book.refresh(self.sup, lambda name: service_status(self.sup.record(name)))
        return self.book.view(self.sup)


@dataclass
class Rates:
    crash_per_service_h: float  # crashes per service per hour
    node_loss_per_h: float  # nodes lost per hour, cluster-wide
    nodes: int
    slow_start_share: float  # share of starts that take 5-20 s instead of 0.5-2 s


def simulate(
    n: int, *, full: bool, seconds: float, tick_s: float, period_s: float, rates: Rates, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    clock = SimClock()
    # The fleet comes up on the incremental path on both sides (the unit tests prove both
    # paths reach the same states); the full side switches to full recomputation for the
    # measured steady state, which is all that is timed.
    sup = Supervisor(clock=clock)
    sup.register_all(specs(n))
    sup.running = True
    reg = Registry(sup, full=False)
    ticks_per_period = max(1, round(period_s / tick_s))
    node_of = {f"s{i}": rng.randrange(rates.nodes) for i in range(n)}
    live: dict[str, int] = {}  # service -> generation whose actor answers checks
    starting: list[tuple[float, str, int]] = []  # (ready at, service, generation)
    probe_slots: list[list[str]] = [[] for _ in range(ticks_per_period)]
    for i in range(n):
        probe_slots[i % ticks_per_period].append(f"s{i}")
    crash_p = rates.crash_per_service_h / 3600 * tick_s
    node_p = rates.node_loss_per_h / 3600 * tick_s
    cpu: list[float] = []
    status_s: list[float] = []
    crashes = lost_nodes = 0
    measuring = False
    forced_loss = False  # one node is lost mid-window on top of the random rate
    measured_s = 0.0
    tick = 0
    cpu_clock: Callable[[], float] = time.process_time

    def execute(actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, StartService):
                slow = rng.random() < rates.slow_start_share
                delay = rng.uniform(5.0, 20.0) if slow else rng.uniform(0.5, 2.0)
                heapq.heappush(starting, (clock.now + delay, action.name, action.generation))
                node_of[action.name] = rng.randrange(rates.nodes)
            elif isinstance(action, KillService):
                live.pop(action.name, None)

    deadline = float("inf")  # set when the fleet is up
    while True:
        # The cluster's own events, outside the clock.
        ready = []
        while starting and starting[0][0] <= clock.now:
            ready.append(heapq.heappop(starting))
        died: list[tuple[str, int, str]] = []
        mid_window = measuring and not forced_loss and clock.now >= deadline - seconds / 2
        if mid_window or (measuring and rng.random() < node_p):
            forced_loss = forced_loss or mid_window
            lost = rng.randrange(rates.nodes)
            died += [(s, g, "node lost") for s, g in live.items() if node_of[s] == lost]
            lost_nodes += 1
        if measuring and live:
            k = min(len(live), _poisson(rng, crash_p * len(live)))
            names = list(live) if k else []
            for name in rng.sample(names, k):
                died.append((name, live[name], "crashed"))
        crashes += len(died)
        probes = [(s, live[s]) for s in probe_slots[tick % ticks_per_period] if s in live]
        # What the registry does with it, inside the clock.
        began = cpu_clock()
        for _, name, gen in ready:
            sup.started(name, gen)
            sup.health_passed(name, gen)
        for name, gen, why in died:
            if live.get(name) == gen:
                del live[name]
            execute(sup.died(name, gen, why))
        for name, gen in probes:
            sup.health_passed(name, gen)
        execute(sup.tick())
        reg.after_tick()
        mid = cpu_clock()
        reg.status()
        ended = cpu_clock()
        for _, name, gen in ready:  # outside the clock: the simulated actor now answers
            if sup.record(name).generation == gen and sup.record(name).state in UP_STATES:
                live[name] = gen
        if measuring:
            cpu.append(ended - began)
            status_s.append(ended - mid)
            measured_s += tick_s
            if clock.now >= deadline:
                break
        elif len(live) == n and sup.settled():
            measuring = True
            deadline = clock.now + seconds
            reg.status()  # the incremental snapshot up to date before a side may leave it
            sup._full_scan = reg.full = full
        elif clock.now > 1_000.0 + 3_600:
            raise RuntimeError(f"{n} services did not come up within an hour simulated")
        clock.now += tick_s
        tick += 1
    per_tick = sum(cpu) / len(cpu)
    cpu.sort()
    status_s.sort()
    return {
        "side": "full" if full else "incremental",
        "services": n,
        "ticks": len(cpu),
        "crashes": crashes,
        "nodes_lost": lost_nodes,
        "cpu_per_tick_ms": per_tick * 1e3,
        "cpu_tick_p99_ms": cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))] * 1e3,
        "cpu_tick_max_ms": cpu[-1] * 1e3,
        "core_share": sum(cpu) / measured_s,
        "cpu_per_service_us": per_tick / n * 1e6,
        "status_p50_ms": status_s[len(status_s) // 2] * 1e3,
        "status_p99_ms": status_s[min(len(status_s) - 1, int(len(status_s) * 0.99))] * 1e3,
    }


def _poisson(rng: random.Random, lam: float) -> int:
    """Events in one tick at rate ``lam`` (small lam: one Bernoulli draw suffices mostly)."""
    count, p, target = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p < target:
            return count
        count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated steady state")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tick", type=float, default=0.05, help="the registry's tick_s")
    parser.add_argument("--period", type=float, default=1.0, help="health period_s")
    parser.add_argument("--crash-per-hour", type=float, default=0.1, help="per service")
    parser.add_argument("--node-loss-per-hour", type=float, default=6.0, help="cluster-wide")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--slow-share", type=float, default=0.05)
    parser.add_argument(
        "--full-max",
        type=int,
        default=10_000,
        help="largest fleet the full side runs at (it is slow by design)",
    )
    args = parser.parse_args()
    rates = Rates(args.crash_per_hour, args.node_loss_per_hour, args.nodes, args.slow_share)
    rows: list[dict[str, Any]] = []
    for n in args.services:
        for rnd in range(args.rounds):
            sides = [False, True] if rnd % 2 == 0 else [True, False]
            for full in sides:
                if full and n > args.full_max:
                    continue
                row = simulate(
                    n,
                    full=full,
                    seconds=args.seconds,
                    tick_s=args.tick,
                    period_s=args.period,
                    rates=rates,
                    seed=rnd,
                )
                row["round"] = rnd
                rows.append(row)
                print(
                    f"n={n:>6} round {rnd} {row['side']:>11}: {row['cpu_per_tick_ms']:8.3f} ms"
                    f" CPU/tick = {100 * row['core_share']:6.2f} % of a core (tick p99"
                    f" {row['cpu_tick_p99_ms']:.2f} ms, max {row['cpu_tick_max_ms']:.2f} ms),"
                    f" {row['cpu_per_service_us']:6.3f} us/service/tick; status p50"
                    f" {row['status_p50_ms']:8.3f} ms p99 {row['status_p99_ms']:8.3f} ms"
                    f" ({row['crashes']} crashes, {row['nodes_lost']} nodes lost,"
                    f" {row['ticks']} ticks)",
                    flush=True,
                )
        ours = [r for r in rows if r["services"] == n and r["side"] == "incremental"]
        full_rows = [r for r in rows if r["services"] == n and r["side"] == "full"]
        if ours and full_rows:
            a = sum(r["cpu_per_tick_ms"] for r in ours) / len(ours)
            b = sum(r["cpu_per_tick_ms"] for r in full_rows) / len(full_rows)
            sa = sum(r["status_p99_ms"] for r in ours) / len(ours)
            sb = sum(r["status_p99_ms"] for r in full_rows) / len(full_rows)
            print(
                f"n={n:>6}: CPU/tick incremental/full = {a / b:.3f}; status p99 ratio"
                f" {sa / sb:.4f}",
                flush=True,
            )
    write_result("registry_scale", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
