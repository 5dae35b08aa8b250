"""Callers through a restart: failed calls while a single-replica service recovers from SIGKILL,
ours beside a Ray Serve handle to a deployment of the same class, same load, same Ray.

Sides (each one process, ``num_cpus=0``):

* ours: ``FaultyService`` registered with its defaults (1 s health period, the default
  ``call_wait_s``), called through the ``ServiceHandle`` that ``get_service()`` returned;
* serve: the same ``FaultyService`` class as a one-replica Serve deployment (health check every
  1 s, so that detection is not what differs), called through its ``DeploymentHandle``; its
  constructor does what our ``start()`` hook does, which Serve does not call.

Load: ``--callers`` threads per side, each with one call in flight at a time, calling
``work(i, 0.01)`` (10 ms of work) without pause. Each round SIGKILLs each side's replica
once, the side that goes first alternating. A failed call is counted *in flight* when it was
sent before the kill (it may have been running: at-most-once says it fails), *not started*
when it was sent after the kill (it never reached the dead process, so it must not fail).
Recovery: from the SIGKILL to the first call answered by the new process. The window per
side closes ``--after`` s after that.

    python -m benchmarks.handle_restarts --rounds 4 --callers 4
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import ray

from benchmarks._common import median, start_ray, write_result
from benchmarks.recovery import free_port
from ray_enterprise.spec import ServiceSpec

CALL_TIMEOUT_S = 60.0
FAULTY = "ray_enterprise.examples.faulty:FaultyService"


class Load:
    """Caller threads calling without pause; every call's send time, outcome and pid."""

    def __init__(self, call: Callable[[int], int], callers: int) -> None:
        self._call = call
        self.calls: list[tuple[float, int | None, str | None]] = []  # (sent, pid, error)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(callers)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            sent = time.perf_counter()
            pid: int | None = None
            error: str | None = None
            try:
                pid = self._call(i)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            with self._lock:
                self.calls.append((sent, pid, error))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_S + 10)


def ours_side(rounds: int) -> Callable[[int], int]:
    import ray_enterprise

    registry = ray_enterprise.connect().registry
    spec = ServiceSpec.model_validate(
        {
            "name": "restart_victim",
            "class": FAULTY,
            # Enough intensity for every round; every kill is a first restart (no backoff).
            "restart": {"max_restarts": rounds + 5, "window_s": 3600, "backoff_reset_s": 1},
        }
    )
    registry.register_app_sync([spec])
    registry.start_all_sync(timeout_s=300)
    handle = registry.get_service_sync("restart_victim", wait_s=60)

    def call(i: int) -> int:
        return int(ray.get(handle.work.remote(i, 0.01), timeout=CALL_TIMEOUT_S)["pid"])

    return call


def serve_side() -> Callable[[int], int]:
    from ray import serve

    from ray_enterprise.examples.faulty import FaultyService

    class ServeFaulty(FaultyService):
        """FaultyService as Serve runs it: Serve calls no ``start()`` hook, so the constructor
        does what ``start()`` does before the first health check (Serve calls
        ``check_health`` itself)."""

        def __init__(self) -> None:
            self._events: list[tuple[str, Any, float]] = []
            self._healthy = True

    app = serve.deployment(
        name="restart_victim_serve",
        num_replicas=1,
        health_check_period_s=1.0,
        ray_actor_options={"num_cpus": 0},
    )(ServeFaulty).bind()
    handle = serve.run(app, name="restart_victim_serve", route_prefix="/restart_victim_serve")

    def call(i: int) -> int:
        return int(handle.work.remote(i, 0.01).result(timeout_s=CALL_TIMEOUT_S)["pid"])

    return call


def one_kill(call: Callable[[int], int], callers: int, after_s: float) -> dict[str, Any]:
    """SIGKILL the process answering ``call`` under load; what the callers saw."""
    old = call(0)
    load = Load(call, callers)
    time.sleep(1.0)  # the load running before the kill
    killed = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    recovered: float | None = None
    deadline = killed + 120.0
    while time.perf_counter() < deadline:
        with load._lock:
            new = [s for s, pid, _ in load.calls if pid is not None and pid != old]
        if new:
            recovered = time.perf_counter() - killed
            break
        time.sleep(0.01)
    time.sleep(after_s)
    load.stop()
    failed = [(s, e) for s, pid, e in load.calls if e is not None]
    return {
        "calls": len(load.calls),
        "failed_in_flight": sum(1 for s, _ in failed if s < killed),
        "failed_not_started": sum(1 for s, _ in failed if s >= killed),
        "recovery_s": recovered,
        # How long after the kill each call that had not started was sent: a call sent before
        # anything could know of the death fails on Ray's side unless the caller re-sends it.
        "not_started_sent_after_ms": sorted(
            round((sent - killed) * 1e3, 1) for sent, _ in failed if sent >= killed
        ),
        "errors": sorted({e for _, e in failed if e})[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--after", type=float, default=2.0, help="s of load after recovery")
    parser.add_argument("--pause", type=float, default=3.0, help="s between kills")
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args()
    start_ray(args.num_cpus)
    from ray import serve

    import ray_enterprise

    serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
    sides = {"ours": ours_side(args.rounds), "serve": serve_side()}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    names = list(sides)
    try:
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                time.sleep(args.pause)
                row = one_kill(sides[name], args.callers, args.after)
                results[name].append(row)
                rec = row["recovery_s"]
                print(
                    f"round {r + 1} {name:5s}: {row['calls']} calls, failed not started"
                    f" {row['failed_not_started']} (sent {row['not_started_sent_after_ms']} ms"
                    f" after the kill), in flight {row['failed_in_flight']},"
                    f" recovery {'-' if rec is None else f'{rec:.2f} s'}"
                    + (f"; {row['errors'][0]}" if row["errors"] else ""),
                    flush=True,
                )
    finally:
        serve.shutdown()
        ray_enterprise.shutdown_system()
    summary = {}
    for name, rows in results.items():
        recs = [r["recovery_s"] for r in rows if r["recovery_s"] is not None]
        summary[name] = {
            "failed_not_started": sum(r["failed_not_started"] for r in rows),
            "failed_in_flight": sum(r["failed_in_flight"] for r in rows),
            "calls": sum(r["calls"] for r in rows),
            "recovery_median_s": median(recs),
        }
        s = summary[name]
        print(
            f"{name:5s}: {s['failed_not_started']} failed not started, {s['failed_in_flight']}"
            f" in flight, of {s['calls']} calls over {len(rows)} kills; recovery median"
            f" {s['recovery_median_s']:.2f} s"
        )
    ratio = summary["ours"]["recovery_median_s"] / summary["serve"]["recovery_median_s"]
    print(f"recovery ours/serve = {ratio:.2f}")
    write_result("handle_restarts", {"args": vars(args), "rounds": results, "summary": summary})
    ray.shutdown()


if __name__ == "__main__":
    main()
