"""Registry tick CPU with issue 24's supervision rules on, beside the same fleet without them.

The hidden cost of one_for_all groups, jittered backoff, significant services under
auto_shutdown and the start budget is paid in the registry's reconcile tick, which walks every
service each 50 ms. This drives the pure :class:`Supervisor` (no Ray: the tick is pure) with N
services on a fake clock, the same crashes on both sides (one seeded schedule), and prints the
CPU per tick of each side and their ratio. Blocks alternate, the side that leads rotating.

    nice -n 10 .venv/bin/python -m benchmarks.supervision_tick --services 1000 --blocks 6
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from benchmarks._common import median, write_result
from ray_enterprise.registry.supervision import LIVE_STATES, StartService, Supervisor
from ray_enterprise.spec import AutoShutdown, ServiceSpec


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fleet(n: int, levels: int, *, features: bool) -> list[ServiceSpec]:
    """``levels`` layers; each service depends on one of the layer below. With ``features``:
    groups of 10 under one_for_all, jitter 0.2, every 10th service significant (its app under
    all_significant, so the rule is evaluated every tick and never fires), start budget 3."""
    per = max(1, n // levels)
    specs = []
    for i in range(n):
        level = min(i // per, levels - 1)
        deps = [f"s{(level - 1) * per + i % per}"] if level else []
        body: dict[str, Any] = {
            "name": f"s{i}",
            "class": "pkg.mod:Cls",
            "depends_on": deps,
            "restart": {"max_restarts": 10_000, "backoff_initial_s": 0.0},
        }
        if features:
            body["strategy"] = "one_for_all"
            body["group"] = f"g{level}-{(i % per) // 10}"
            body["significant"] = i % 10 == 0
            body["restart"].update({"jitter": 0.2, "max_start_attempts": 3})
        else:
            body["restart"]["jitter"] = 0.0
        specs.append(ServiceSpec.model_validate(body))
    return specs


def build(n: int, levels: int, *, features: bool) -> tuple[Supervisor, _Clock]:
    clock = _Clock()
    sup = Supervisor(clock=clock, rng=random.Random(1).random)
    sup.register_all(fleet(n, levels, features=features))
    if features:
        sup.auto_shutdown = AutoShutdown.ALL_SIGNIFICANT
    sup.running = True
    for _ in range(levels + 2):  # bring everything up before measuring
        answer(sup, sup.tick())
        clock.now += 0.05
    return sup, clock


def answer(sup: Supervisor, actions: list[Any]) -> int:
    """What the actor would observe next: each start returns and passes its first check.
    Returns the starts, so the output can say how much more work the groups asked for."""
    started = 0
    for action in actions:
        if isinstance(action, StartService):
            sup.started(action.name, action.generation)
            sup.health_passed(action.name, action.generation)
            started += 1
    return started


def run_block(
    sup: Supervisor, clock: _Clock, ticks: int, crashes: random.Random, rate: float
) -> tuple[float, int]:
    """CPU seconds per tick (crashes of the seeded schedule, the tick, the answers to it), and
    the services (re)started."""
    names = [r.spec.name for r in sup.records()]
    started = 0
    began = time.process_time()
    for _ in range(ticks):
        for _ in range(int(rate) + (crashes.random() < rate % 1)):
            name = names[crashes.randrange(len(names))]
            rec = sup.record(name)
            if rec.state in LIVE_STATES:
                sup.died(name, rec.generation, "benchmark crash")
        started += answer(sup, sup.tick())
        clock.now += 0.05
    return (time.process_time() - began) / ticks, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--ticks", type=int, default=200, help="ticks per block")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--crash-rate", type=float, default=0.5, help="crashes per tick")
    args = parser.parse_args()
    sides = {
        "off": build(args.services, args.levels, features=False),
        "on": build(args.services, args.levels, features=True),
    }
    per_tick: dict[str, list[float]] = {"off": [], "on": []}
    starts = {"off": 0, "on": 0}
    for block in range(args.blocks):
        order = ["off", "on"] if block % 2 == 0 else ["on", "off"]
        for side in order:
            sup, clock = sides[side]
            schedule = random.Random(block)  # the same crashes on both sides in this block
            cpu, started = run_block(sup, clock, args.ticks, schedule, args.crash_rate)
            per_tick[side].append(cpu)
            starts[side] += started
    off, on = median(per_tick["off"]), median(per_tick["on"])
    for side in ("off", "on"):
        blocks = ", ".join(f"{t * 1e3:.2f}" for t in per_tick[side])
        print(
            f"{side:>3}: median {median(per_tick[side]) * 1e3:.2f} ms CPU per tick ({blocks}); "
            f"{starts[side]} services restarted"
        )
    print(
        f"{args.services} services, {args.crash_rate:g} crashes per tick: features on / off "
        f"= {on / off:.2f}"
    )
    path = write_result(
        "supervision_tick",
        {"args": vars(args), "per_tick_s": per_tick, "starts": starts, "ratio_on_off": on / off},
    )
    print(f"raw figures: {path}")


if __name__ == "__main__":
    main()
