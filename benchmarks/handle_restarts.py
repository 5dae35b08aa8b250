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
when it was sent after the kill (it never reached the dead process). Of those, *sent after the
death was known* are the ones sent once the first failure had come back to any caller of
that side: the handle could know of the death by then, so none of these may fail. The others
(sent in the gap between the kill and that first failure) Ray fails with the same
``ActorDiedError`` as the call that was running, so no caller can tell they never started.
For ours, the moment the registry's route table changed after the kill is printed too.
Recovery: from the SIGKILL to the first call answered by the new process. The window per
side closes ``--after`` s after that. Before the rounds, what reading the route table before
every call would cost: a key-value read beside a call's round trip through the handle.

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
from ray_enterprise import _kv
from ray_enterprise.registry.handle import ROUTES
from ray_enterprise.spec import ServiceSpec

CALL_TIMEOUT_S = 60.0
FAULTY = "ray_enterprise.examples.faulty:FaultyService"


class Load:
    """Caller threads calling without pause; every call's send time, outcome and pid."""

    def __init__(self, call: Callable[[int], int], callers: int) -> None:
        self._call = call
        # (sent, pid, error, came back), perf_counter times
        self.calls: list[tuple[float, int | None, str | None, float]] = []
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
                self.calls.append((sent, pid, error, time.perf_counter()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CALL_TIMEOUT_S + 10)


Side = tuple[Callable[[int], int], Callable[[], int] | None]  # (call, route table epoch)


def ours_side(rounds: int) -> Side:
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
    table_read_cost(handle)

    def call(i: int) -> int:
        return int(ray.get(handle.work.remote(i, 0.01), timeout=CALL_TIMEOUT_S)["pid"])

    def epoch() -> int:
        return int(_kv.get(ROUTES + "restart_victim")["epoch"])

    return call, epoch


def table_read_cost(handle: Any, n: int = 300) -> None:
    """A route-table read (one GCS key-value get) beside a call through the handle,
    interleaved, medians: what a read before every send would add to each call."""
    reads: list[float] = []
    calls: list[float] = []
    for i in range(n):
        t = time.perf_counter()
        _kv.get(ROUTES + handle.service)
        reads.append(time.perf_counter() - t)
        t = time.perf_counter()
        ray.get(handle.echo.remote(i))
        calls.append(time.perf_counter() - t)
    read, call = median(reads) * 1e6, median(calls) * 1e6
    print(f"route table read {read:.0f} us vs call {call:.0f} us: ratio {read / call:.2f}")


def serve_side() -> Side:
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

    return call, None


class TableWatch:
    """When the route table's epoch changed after the kill: the registry's word on the death,
    polled every 5 ms from the key-value store (a Serve handle has no such table)."""

    def __init__(self, epoch: Callable[[], int] | None) -> None:
        self.changed: float | None = None
        self._epoch = epoch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, killed: float) -> None:
        epoch = self._epoch
        if epoch is None:
            return
        before = epoch()

        def run() -> None:
            while not self._stop.is_set():
                if epoch() != before:
                    self.changed = time.perf_counter() - killed
                    return
                time.sleep(0.005)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def one_kill(
    call: Callable[[int], int], epoch: Callable[[], int] | None, callers: int, after_s: float
) -> dict[str, Any]:
    """SIGKILL the process answering ``call`` under load; what the callers saw."""
    old = call(0)
    load = Load(call, callers)
    time.sleep(1.0)  # the load running before the kill
    watch = TableWatch(epoch)
    killed = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    watch.start(killed)
    recovered: float | None = None
    deadline = killed + 120.0
    while time.perf_counter() < deadline:
        with load._lock:
            new = [s for s, pid, _, _ in load.calls if pid is not None and pid != old]
        if new:
            recovered = time.perf_counter() - killed
            break
        time.sleep(0.01)
    time.sleep(after_s)
    load.stop()
    watch.stop()
    table_changed = watch.changed
    failed = [(s, e, back) for s, pid, e, back in load.calls if e is not None]
    # The callers could know of the death once its first failure came back to one of them:
    # a call sent after that to the dead process is the handle's fault, one sent before it
    # (after the kill) is one Ray fails exactly like the call that was running.
    known = min((back for s, _, back in failed if back >= killed), default=None)
    late = [s for s, _, _ in failed if known is not None and s >= known]
    return {
        "calls": len(load.calls),
        "failed_in_flight": sum(1 for s, _, _ in failed if s < killed),
        "failed_not_started": sum(1 for s, _, _ in failed if s >= killed),
        "failed_sent_after_known": len(late),
        "death_known_ms": None if known is None else round((known - killed) * 1e3, 1),
        "table_changed_ms": None if table_changed is None else round(table_changed * 1e3, 1),
        "recovery_s": recovered,
        # How long after the kill each call that had not started was sent: a call sent before
        # anything could know of the death fails on Ray's side unless the caller re-sends it.
        "not_started_sent_after_ms": sorted(
            round((sent - killed) * 1e3, 1) for sent, _, _ in failed if sent >= killed
        ),
        "errors": sorted({e for _, e, _ in failed if e})[:5],
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
                row = one_kill(*sides[name], args.callers, args.after)
                results[name].append(row)
                rec = row["recovery_s"]
                print(
                    f"round {r + 1} {name:5s}: {row['calls']} calls, failed not started"
                    f" {row['failed_not_started']} (sent {row['not_started_sent_after_ms']} ms"
                    f" after the kill; {row['failed_sent_after_known']} after the death was"
                    f" known at {row['death_known_ms']} ms; table changed at"
                    f" {row['table_changed_ms']} ms), in flight {row['failed_in_flight']},"
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
            "failed_sent_after_known": sum(r["failed_sent_after_known"] for r in rows),
            "failed_in_flight": sum(r["failed_in_flight"] for r in rows),
            "calls": sum(r["calls"] for r in rows),
            "recovery_median_s": median(recs),
        }
        s = summary[name]
        print(
            f"{name:5s}: {s['failed_not_started']} failed not started"
            f" ({s['failed_sent_after_known']} sent after the death was known),"
            f" {s['failed_in_flight']}"
            f" in flight, of {s['calls']} calls over {len(rows)} kills; recovery median"
            f" {s['recovery_median_s']:.2f} s"
        )
    ratio = summary["ours"]["recovery_median_s"] / summary["serve"]["recovery_median_s"]
    print(f"recovery ours/serve = {ratio:.2f}")
    write_result("handle_restarts", {"args": vars(args), "rounds": results, "summary": summary})
    ray.shutdown()


if __name__ == "__main__":
    main()
