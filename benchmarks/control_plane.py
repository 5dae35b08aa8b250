"""The idle control plane: what our system actors cost while the demo application runs and
nothing happens, beside what Ray Serve's control plane costs for six deployments (issue 25).

Two sides per round, the one that runs first alternating, each on a fresh local Ray torn down
before the other starts:

- ours: ``connect()`` boots the system actors and ``cluster/demo.yaml``'s six services start
  through the registry (health period 1 s, the spec's default); the processes measured are
  every named actor of ours that is not a service (registry, config, alerts, observability
  and its node collector, and whatever else the system started);
- serve: ``serve.run`` of six one-replica deployments with ``health_check_period_s`` 1 s (the
  same probe rate); measured: the controller, and the controller with the HTTP proxy.

Inside the window (after a settling wait): each process's CPU time over ``--window`` seconds
(share of one core) and its private memory (USS) at the end. The services and replicas
themselves are not counted on either side; the driver is idle on both.

    python -m benchmarks.control_plane --rounds 2 --window 30
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks._common import median, start_ray, write_result

DEMO = Path(__file__).resolve().parent.parent / "cluster" / "demo.yaml"


def _pid(handle: Any) -> int:
    import ray

    pid: int = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=60)
    return pid


def _measure(pids: dict[str, int], settle_s: float, window_s: float) -> dict[str, Any]:
    """CPU share of one core over the window and USS at its end, per named process."""
    time.sleep(settle_s)
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
    began = time.monotonic()
    time.sleep(window_s)
    elapsed = time.monotonic() - began
    out = {}
    for name, proc in procs.items():
        cpu = (sum(proc.cpu_times()[:2]) - before[name]) / elapsed
        out[name] = {"pid": proc.pid, "cpu": cpu, "uss_mb": proc.memory_full_info().uss / 2**20}
    return out


def ours(settle_s: float, window_s: float) -> dict[str, Any]:
    import ray

    import ray_enterprise
    from ray_enterprise import system_actors
    from ray_enterprise.runtime import shutdown_system
    from ray_enterprise.spec import load_app_spec

    start_ray(2)
    try:
        system = ray_enterprise.connect()
        system.registry.register_app_sync(load_app_spec(str(DEMO)))
        ray.get(system.registry.actor.start_all.remote(300), timeout=600)
        names = [
            n
            for n in ray.util.list_named_actors()
            if not n.startswith(system_actors.SERVICE_PREFIX)
        ]
        pids = {n: _pid(ray.get_actor(n, namespace=system_actors.NAMESPACE)) for n in names}
        return _measure(pids, settle_s, window_s)
    finally:
        try:
            system.registry.stop_all_sync()
            shutdown_system()
        finally:
            ray.shutdown()


def serve_side(settle_s: float, window_s: float) -> dict[str, Any]:
    import ray
    from ray import serve

    class Echo:
        def __call__(self, x: Any = None) -> Any:
            return x

    deployment: Any = serve.deployment(
        health_check_period_s=1.0, ray_actor_options={"num_cpus": 0}
    )(Echo)

    start_ray(2)
    try:
        for i in range(6):  # six applications of one deployment: the demo's six services
            serve.run(
                deployment.options(name=f"d{i}").bind(), name=f"app{i}", route_prefix=f"/a{i}"
            )
        pids = {}
        for entry in ray.util.list_named_actors(all_namespaces=True):
            name, ns = entry["name"], entry["namespace"]
            if name == "SERVE_CONTROLLER_ACTOR" or name.startswith("SERVE_PROXY_ACTOR"):
                key = "controller" if name == "SERVE_CONTROLLER_ACTOR" else "proxy"
                pids[key] = _pid(ray.get_actor(name, namespace=ns))
        return _measure(pids, settle_s, window_s)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def _total(side: dict[str, Any], names: list[str] | None = None) -> tuple[float, float]:
    rows = [v for k, v in side.items() if names is None or k in names]
    return sum(r["cpu"] for r in rows), sum(r["uss_mb"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=15.0, help="s before the window")
    parser.add_argument("--window", type=float, default=30.0, help="s of idle measured")
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        sides = [("ours", ours), ("serve", serve_side)]
        if r % 2:
            sides.reverse()
        row: dict[str, Any] = {"load": os.getloadavg()[0]}
        for label, fn in sides:
            row[label] = fn(args.settle, args.window)
            print(f"round {r + 1} {label}:", flush=True)
            for name, m in sorted(row[label].items()):
                print(
                    f"  {name[:40]:40s} cpu {100 * m['cpu']:5.2f} %  uss {m['uss_mb']:6.1f} MB",
                    flush=True,
                )
        rounds.append(row)
    ours_cpu = median([_total(r["ours"])[0] for r in rounds])
    ours_mb = median([_total(r["ours"])[1] for r in rounds])
    ctl_cpu = median([_total(r["serve"], ["controller"])[0] for r in rounds])
    ctl_mb = median([_total(r["serve"], ["controller"])[1] for r in rounds])
    all_cpu = median([_total(r["serve"])[0] for r in rounds])
    all_mb = median([_total(r["serve"])[1] for r in rounds])
    processes = median([float(len(r["ours"])) for r in rounds])
    print(
        f"ours: {processes:.0f} processes, cpu {100 * ours_cpu:.2f} % of a core, "
        f"uss {ours_mb:.0f} MB"
        f"\nserve controller: cpu {100 * ctl_cpu:.2f} %, uss {ctl_mb:.0f} MB; "
        f"with proxy: cpu {100 * all_cpu:.2f} %, uss {all_mb:.0f} MB"
        f"\nratio ours/controller: cpu {ours_cpu / ctl_cpu:.2f}, memory {ours_mb / ctl_mb:.2f}; "
        f"ours/(controller+proxy): cpu {ours_cpu / all_cpu:.2f}, memory {ours_mb / all_mb:.2f}",
        flush=True,
    )
    write_result("control_plane", {"rounds": rounds})


if __name__ == "__main__":
    main()
