"""Recovery: SIGKILL of a service's process -> a call through the caller's handle succeeds again,
ours beside three real peers in the same run.

Sides, one process each, all idle apart from this benchmark:

* ours: a registered ``FaultyService`` (1 s health period), called through the routing
  ``ServiceHandle`` that ``get_service()`` returned before the kill;
* bare: a plain Ray actor class with ``max_restarts=-1``, called through its actor handle
  (Ray restarts it; nothing else watches it);
* serve-default: a Ray Serve deployment of one replica with Serve's default settings (health
  check every 10 s), called through its ``DeploymentHandle``;
* serve-1s: the same with ``health_check_period_s=1``.

Each round kills every side once, one after another, the order rotating from round to round.
The clock starts at the SIGKILL and stops when a call through the same handle the caller held
before returns the pid of a new process: detection, restart, the caller finding the new
process (our route cache, Serve's router) are all inside it. Failed calls are retried at once
(5 ms apart). A pause before each kill lets backoffs reset, so every round times a first
restart.

    python -m benchmarks.recovery --rounds 5
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from ray_enterprise.spec import ServiceSpec

CALL_TIMEOUT_S = 30.0


class BareVictim:
    """A plain actor: what Ray alone does with ``max_restarts=-1``."""

    def pid(self) -> int:
        return os.getpid()


class ServeVictim:
    def pid(self) -> int:
        return os.getpid()


def ours_side(rounds: int) -> tuple[Callable[[], int], Callable[[], None]]:
    import ray_enterprise

    system = ray_enterprise.connect()
    registry = system.registry
    spec = ServiceSpec.model_validate(
        {
            "name": "victim",
            "class": "ray_enterprise.examples.faulty:FaultyService",
            # Ordinary settings: a 1 s health period, and enough intensity for every round.
            "restart": {"max_restarts": rounds + 5, "window_s": 3600, "backoff_reset_s": 1},
        }
    )
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=300)
    handle = registry.get_service_sync("victim")

    def call() -> int:
        return int(ray.get(handle.pid.remote(), timeout=CALL_TIMEOUT_S))

    return call, ray_enterprise.shutdown_system


def bare_side() -> tuple[Callable[[], int], Callable[[], None]]:
    actor: Any = ray.remote(max_restarts=-1)(BareVictim).options(num_cpus=0).remote()

    def call() -> int:
        return int(ray.get(actor.pid.remote(), timeout=CALL_TIMEOUT_S))

    return call, lambda: ray.kill(actor, no_restart=True)


def serve_side(name: str, period_s: float | None) -> Callable[[], int]:
    from ray import serve

    options: dict[str, Any] = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 0}}
    if period_s is not None:
        options["health_check_period_s"] = period_s
    app = serve.deployment(name=name, **options)(ServeVictim).bind()
    handle = serve.run(app, name=name, route_prefix=f"/{name}")

    def call() -> int:
        return int(handle.pid.remote().result(timeout_s=CALL_TIMEOUT_S))

    return call


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recover(call: Callable[[], int], timeout_s: float = 120.0) -> float:
    """Kill the process that answers ``call``; seconds until ``call`` answers from another."""
    old = call()
    killed = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    deadline = killed + timeout_s
    while time.perf_counter() < deadline:
        try:
            if call() != old:
                return time.perf_counter() - killed
        except Exception:
            pass  # the dead process, or no live one yet: what a caller would retry
        time.sleep(0.005)
    raise TimeoutError(f"no call succeeded within {timeout_s} s of the kill")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pause", type=float, default=2.0, help="s before each kill")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    ours_call, ours_down = ours_side(args.rounds)
    bare_call, bare_down = bare_side()
    sides: dict[str, Callable[[], int]] = {
        "ours": ours_call,
        "bare max_restarts=-1": bare_call,
        "serve default": serve_side("serve_default", None),
        "serve 1 s health": serve_side("serve_1s", 1.0),
    }
    for call in sides.values():
        call()  # every side up and answering before the first kill
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    try:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                time.sleep(args.pause)
                times[name].append(recover(sides[name]))
            print(
                f"round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in order),
                flush=True,
            )
    finally:
        serve.shutdown()
        bare_down()
        ours_down()
    ours = median(times["ours"])
    print("median SIGKILL -> a call through the handle answers from the new process:")
    for name, values in times.items():
        ratio = ours / median(values)
        print(
            f"  {name:22s} {median(values):6.2f} s (max {max(values):.2f} s)"
            f"   ours/{name} = {ratio:.2f}"
        )
    write_result(
        "recovery",
        {
            "rounds_s": times,
            "median_s": {name: median(values) for name, values in times.items()},
            "ratio_ours_to": {name: ours / median(values) for name, values in times.items()},
        },
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
