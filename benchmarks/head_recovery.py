"""Head recovery (issue 22): how long the application takes to serve again after the head's GCS
restarts, and after the whole cluster was lost, each beside its anchor in the same run.

(a) GCS restart. A head on a real ``redis-server`` (Ray's GCS fault tolerance) runs a small
application through ``ray-enterprise up`` and a bare detached Ray actor. Each round SIGKILLs the
GCS server, waits ``--outage`` seconds, starts it again as it was (what KubeRay's restart of the
GCS amounts to), and from that restart times, in the same probe process and at the same time:

* ours: the registry reports every service healthy and a call through the ``ServiceHandle``
  the caller held before the outage returns;
* ray-nodes: ``ray.nodes()`` answers with every node alive (Ray's own reconnection);
* ray-actor: a bare detached actor is found by name (a GCS lookup) and answers a call.

The sides are polled from threads started in an order that rotates from round to round.

(b) Full restart. Every Ray process of a cluster running the application is SIGKILLed (no
Redis), a new head is started, and ``ray-enterprise up --restore`` rebuilds the application
from the durable store; beside it, a cold ``ray-enterprise up SPEC`` of the same spec on a new
head with an empty store. Both clocks run from the launch of ``up`` until the registry reports
every service healthy and a call through a ``ServiceHandle`` returns; the head's own start is
outside both. The side that goes first alternates from round to round.

(c) Head loss. The same application runs on a worker node (an ``app`` resource the head does
not have) beside a head on Redis; a detached bare actor is pinned to the head with
``max_restarts=-1``. Each round SIGKILLs every Ray process of the head and starts a head again
on the same address and Redis. A stopwatch actor on the worker node (it outlives the head)
times from the kill, in threads started in a rotating order:

* ours: the registry, restarted by Ray on the new head, reports every service healthy and a
  call through the ``ServiceHandle`` held before returns;
* ray-nodes: ``ray.nodes()`` shows the worker node alive beside a new head and the old head
  dead (Ray's own reconnection and failure detection);
* ray-actor: the bare actor, restarted by Ray on the new head, answers a call.

A probe process (this script with ``--probe``) joins each cluster before its clock starts, so
neither side pays for a driver's start. Everything runs on loopback with free ports; only the
processes this script starts are ever killed.

    RAY_TMPDIR=/tmp/rbench nice -n 10 .venv/bin/python -m benchmarks.head_recovery --rounds 3
    RAY_TMPDIR=/tmp/rbench nice -n 10 .venv/bin/python -m benchmarks.head_recovery --part head
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._common import median, write_result

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICES = ("database", "cache")
BARE = "bench-bare"
MEASURE_TIMEOUT_S = 240.0
POLL_S = 0.01
CALL_TIMEOUT_S = 2.0

APP = """
name: headbench
services:
  - name: database
    class: ray_enterprise.examples.store:KeyValueStore
    criticality: critical
    health: {period_s: 0.5, timeout_s: 2.0, failure_threshold: 3}
  - name: cache
    class: ray_enterprise.examples.cache:CacheService
    depends_on: [database]
    criticality: high
    health: {period_s: 0.5, timeout_s: 2.0, failure_threshold: 3}
"""


APP_OFF_HEAD = APP.replace(
    "failure_threshold: 3}\n", "failure_threshold: 3}\n    actor: {resources: {app: 0.01}}\n"
)
ON_WORKER = {"resources": {"app": 0.01}, "num_cpus": 0}
ON_HEAD = {"resources": {"node:__internal_head__": 0.001}, "num_cpus": 0}


# -- the probe: a driver joined to the cluster, measuring on command --------------------------


class Bare:
    """A plain detached actor: what Ray alone keeps across a GCS restart."""

    def ping(self) -> str:
        return "ok"


class Probe:
    """Runs in its own process, joined to one cluster; answers JSON commands on stdin."""

    def __init__(self, address: str) -> None:
        import ray

        from ray_enterprise.runtime import init_ray

        # A GCS just started on a loaded machine can miss the driver's connect timeout, and
        # a new head's GCS lists the lost head until it declares it dead (~30 s).
        for attempt in range(40):
            try:
                init_ray(address, log_to_driver=False)
                break
            except Exception:
                ray.shutdown()
                if attempt == 39:
                    raise
                time.sleep(2.0)
        self._registry: Any = None
        self._handle: Any = None

    def bare(self, on_head: bool = False) -> dict[str, Any]:
        import ray

        options: dict[str, Any] = {"name": BARE, "lifetime": "detached", "num_cpus": 0}
        if on_head:  # restarted by Ray on a new head, as the system actors are
            options.update(ON_HEAD, max_restarts=-1, max_task_retries=-1)
        actor: Any = ray.remote(Bare).options(**options).remote()
        return {"bare": ray.get(actor.ping.remote(), timeout=60)}

    def stopwatch(self) -> dict[str, Any]:
        """The stopwatch actor on the worker node, made once; it holds a ServiceHandle."""
        import ray

        actor: Any = ray.remote(Stopwatch).options(
            name=STOPWATCH, lifetime="detached", get_if_exists=True, max_concurrency=8,
            **ON_WORKER,
        ).remote()  # fmt: skip
        return {"ready": ray.get(actor.ready.remote(), timeout=120)}

    def start_watch(self, t0: float, sides: list[str]) -> dict[str, Any]:
        import ray

        actor = ray.get_actor(STOPWATCH)
        return {"started": ray.get(actor.start.remote(t0, sides), timeout=60)}

    def read_watch(self) -> dict[str, Any]:
        import ray

        actor = ray.get_actor(STOPWATCH)
        return dict(ray.get(actor.result.remote(), timeout=MEASURE_TIMEOUT_S + 60))

    def ours(self) -> bool:
        """Every service healthy by the registry, then a call through the handle returns."""
        import ray

        from ray_enterprise.runtime import registry_actor

        if self._registry is None:
            self._registry = registry_actor()  # NotConnectedError until `up` made it
        status = ray.get(self._registry.get_system_status.remote(), timeout=CALL_TIMEOUT_S)
        states = {s["name"]: s["state"] for s in status.get("services", [])}
        if set(states) != set(SERVICES) or status.get("status") != "healthy":
            return False
        if any(state != "healthy" for state in states.values()):
            return False
        if self._handle is None:
            self._handle = ray.get(
                self._registry.get_service.remote("cache", 0.0), timeout=CALL_TIMEOUT_S
            )
        ray.get(self._handle.get.remote("bench-key"), timeout=CALL_TIMEOUT_S)
        return True

    def ray_nodes(self) -> bool:
        import ray

        nodes = ray.nodes()
        return bool(nodes) and all(n.get("Alive") for n in nodes)

    def ray_actor(self) -> bool:
        import ray

        actor = ray.get_actor(BARE)
        return bool(ray.get(actor.ping.remote(), timeout=CALL_TIMEOUT_S) == "ok")

    def measure(self, t0: float, sides: list[str]) -> dict[str, Any]:
        """Seconds from wall time ``t0`` until each side first succeeds (``None``: not within
        the timeout), the sides polled from threads started in the order given."""
        done: dict[str, Any] = {side: None for side in sides}
        errors: dict[str, str] = {}

        def poll(side: str) -> None:
            check = getattr(self, side)
            while time.time() - t0 < MEASURE_TIMEOUT_S:
                try:
                    if check():
                        done[side] = time.time() - t0
                        return
                except Exception as exc:  # unreachable for now: poll again
                    errors[side] = type(exc).__name__
                time.sleep(POLL_S)

        threads = [threading.Thread(target=poll, args=(s,), daemon=True) for s in sides]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(MEASURE_TIMEOUT_S + 30)
        return {"seconds": done, "last_errors": errors}


STOPWATCH = "bench-stopwatch"
KILL_GRACE_S = 3.0  # the head's kill ends within this (a new head takes longer to start)


def _is_head(node: dict[str, Any]) -> bool:
    return "node:__internal_head__" in node["Resources"]


class Stopwatch(Probe):
    """A :class:`Probe` inside an actor on the worker node: it lives through the head's loss
    and times the recovery from the kill, where a driver (joined to the head's raylet) dies."""

    def __init__(self) -> None:  # already inside Ray: no driver to start
        self._registry: Any = None
        self._handle: Any = None
        self._old_heads: set[str] = set()
        self._answer: dict[str, Any] | None = None
        self._done = threading.Event()

    def ready(self) -> bool:
        """Held before the loss: the registry's handle and the ServiceHandle of the cache."""
        return self.ours()

    def start(self, t0: float, sides: list[str]) -> bool:
        """Time from ``t0``, when the bench kills the head; polling begins KILL_GRACE_S later,
        once the head is surely gone (the sides answer until then)."""
        import ray

        self._old_heads = {n["NodeID"] for n in ray.nodes() if n["Alive"] and _is_head(n)}
        self._answer = None
        self._done.clear()

        def run() -> None:
            time.sleep(max(0.0, t0 + KILL_GRACE_S - time.time()))
            self._answer = self.measure(t0, sides)
            self._done.set()

        threading.Thread(target=run, daemon=True).start()
        return True

    def ray_nodes(self) -> bool:
        import ray

        alive = [n for n in ray.nodes() if n["Alive"]]
        heads = {n["NodeID"] for n in alive if _is_head(n)}
        worker = any("app" in n["Resources"] for n in alive)
        return bool(heads) and not heads & self._old_heads and worker

    def result(self) -> dict[str, Any]:
        self._done.wait(MEASURE_TIMEOUT_S + 30)
        return self._answer or {"seconds": {}, "last_errors": {"stopwatch": "no answer"}}


def probe_main(address: str) -> None:
    probe = Probe(address)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "quit":
            break
        if command["do"] == "bare":
            answer = probe.bare(bool(command.get("on_head")))
        elif command["do"] == "stopwatch":
            answer = probe.stopwatch()
        elif command["do"] == "start_watch":
            answer = probe.start_watch(float(command["t0"]), list(command["sides"]))
        elif command["do"] == "read_watch":
            answer = probe.read_watch()
        else:
            answer = probe.measure(float(command["t0"]), list(command["sides"]))
        print(json.dumps(answer), flush=True)


class ProbeProcess:
    """The bench's side of a probe: start it, send commands, read answers."""

    def __init__(self, address: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.head_recovery", "--probe", address],
            env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self._read()  # joined

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the probe exited with {self.process.wait()}")
            if line.startswith("{"):  # Ray may print its own lines on stdout
                return dict(json.loads(line))

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.ask(do="quit")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the bench ---------------------------------------------------------------------------------


def bench_env(home: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        PATH=f"{BIN}:{os.environ['PATH']}",
        RAY_ENTERPRISE_HOME=str(home),
        PYTHONPATH=str(REPO),
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENTERPRISE_ANOMALY_SHARDS="0",
    )
    env.pop("RAY_ADDRESS", None)
    return env


def launch_up(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "ray-enterprise"), "up", *args, "--duration", "3600"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def end(process: subprocess.Popen[bytes] | None, *, kill: bool = False) -> None:
    if process is None or process.poll() is not None:
        return
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def seconds(answer: dict[str, Any], side: str, log: Path) -> float:
    value = answer["seconds"].get(side)
    if value is None:
        raise RuntimeError(f"{side} did not recover: {answer}; see {log}")
    return float(value)


def gcs_restart(rounds: int, outage: float, work: Path) -> dict[str, Any]:
    from ray_enterprise.testing import RayHead, RedisServer

    env = bench_env(work / "gcs-home")
    (work / "app.yaml").write_text(APP)
    log = work / "gcs-up.log"
    sides = ["ours", "ray_nodes", "ray_actor"]
    times: dict[str, list[float]] = {side: [] for side in sides}
    with RedisServer(str(work / "redis")) as redis:
        head = RayHead(num_cpus=2, env=env, redis_address=redis.address, include_dashboard=False)
        up: subprocess.Popen[bytes] | None = None
        probe: ProbeProcess | None = None
        try:
            head.start()
            up = launch_up(env, log, str(work / "app.yaml"), "--address", head.address)
            probe = ProbeProcess(head.address, env)
            probe.ask(do="bare")
            first = probe.ask(do="measure", t0=time.time(), sides=["ours"])
            seconds(first, "ours", log)  # the application runs: the rounds can begin
            for index in range(rounds):
                order = sides[index % 3 :] + sides[: index % 3]
                head.kill_gcs()
                time.sleep(outage)  # the outage itself: nothing to wait for but time
                head.restart_gcs()
                t0 = time.time()
                answer = probe.ask(do="measure", t0=t0, sides=order)
                row = {side: seconds(answer, side, log) for side in sides}
                for side in sides:
                    times[side].append(row[side])
                print(
                    f"  gcs round {index + 1}/{rounds} (order {', '.join(order)}): "
                    + "  ".join(f"{side} {row[side]:.2f} s" for side in sides),
                    flush=True,
                )
                if up.poll() is not None:
                    raise RuntimeError(f"`up` exited with {up.returncode}; see {log}")
                time.sleep(2.0)  # let the registry's checks settle before the next kill
        finally:
            if probe is not None:
                probe.close()
            end(up)
            head.stop()
    return {"outage_s": outage, "seconds": times}


def head_loss(rounds: int, work: Path) -> dict[str, Any]:
    from ray_enterprise.testing import RayHead, RayWorker, RedisServer

    env = bench_env(work / "head-home")
    (work / "app-off-head.yaml").write_text(APP_OFF_HEAD)
    log = work / "head-up.log"
    sides = ["ours", "ray_nodes", "ray_actor"]
    times: dict[str, list[float]] = {side: [] for side in sides}
    with RedisServer(str(work / "redis-head")) as redis:
        head = RayHead(num_cpus=1, env=env, redis_address=redis.address, include_dashboard=False)
        worker = RayWorker(
            head.address, num_cpus=1, env=env, resources={"app": 1}, gcs_reconnect_timeout_s=300
        )
        up: subprocess.Popen[bytes] | None = None
        probe: ProbeProcess | None = None
        try:
            head.start()
            worker.start()
            up = launch_up(env, log, str(work / "app-off-head.yaml"), "--address", head.address)
            probe = ProbeProcess(head.address, env)
            probe.ask(do="bare", on_head=True)
            seconds(probe.ask(do="measure", t0=time.time(), sides=["ours"]), "ours", log)
            probe.ask(do="stopwatch")
            for index in range(rounds):
                order = sides[index % 3 :] + sides[: index % 3]
                t0 = time.time() + 3.0  # when the head is killed
                probe.ask(do="start_watch", t0=t0, sides=order)
                probe.process.kill()  # a driver on the head: it goes with it, as `up` does
                probe.process.wait()
                probe = None
                end(up, kill=True)
                time.sleep(max(0.0, t0 - time.time()))
                head.kill()
                if time.time() > t0 + KILL_GRACE_S:
                    raise RuntimeError("the head's kill took longer than the stopwatch waits")
                head.start()
                probe = ProbeProcess(head.address, env)  # joins the new head; off the clock
                answer = probe.ask(do="read_watch")
                row = {side: seconds(answer, side, log) for side in sides}
                for side in sides:
                    times[side].append(row[side])
                print(
                    f"  head round {index + 1}/{rounds} (order {', '.join(order)}): "
                    + "  ".join(f"{side} {row[side]:.2f} s" for side in sides),
                    flush=True,
                )
                up = None
                time.sleep(2.0)
        finally:
            if probe is not None:
                probe.close()
            end(up)
            worker.stop()
            head.stop()
    return {"seconds": times}


def full_restart(rounds: int, work: Path) -> dict[str, Any]:
    from ray_enterprise.testing import RayHead

    spec = work / "app.yaml"
    spec.write_text(APP)
    times: dict[str, list[float]] = {"restore": [], "cold": []}
    for index in range(rounds):
        order = ["restore", "cold"] if index % 2 == 0 else ["cold", "restore"]
        row: dict[str, float] = {}
        for side in order:
            home = work / f"home-{side}-{index}"
            env = bench_env(home)
            log = work / f"{side}-{index}.log"
            if side == "restore":
                lost_cluster(env, spec, log)
            head = RayHead(num_cpus=2, env=env, include_dashboard=False)
            up: subprocess.Popen[bytes] | None = None
            probe: ProbeProcess | None = None
            try:
                head.start()
                probe = ProbeProcess(head.address, env)
                args = ["--restore"] if side == "restore" else [str(spec)]
                t0 = time.time()
                up = launch_up(env, log, *args, "--address", head.address)
                answer = probe.ask(do="measure", t0=t0, sides=["ours"])
                row[side] = seconds(answer, "ours", log)
            finally:
                if probe is not None:
                    probe.close()
                end(up)
                head.stop()
        for side in order:
            times[side].append(row[side])
        print(
            f"  full round {index + 1}/{rounds} (order {', '.join(order)}): "
            f"up --restore {row['restore']:.2f} s  cold up {row['cold']:.2f} s",
            flush=True,
        )
    return {"seconds": times}


def lost_cluster(env: dict[str, str], spec: Path, log: Path) -> None:
    """Run the application on a cluster until it is healthy, then lose every process at once
    (the `up` driver with it), leaving only the durable store in ``env``'s home."""
    from ray_enterprise.testing import RayHead

    head = RayHead(num_cpus=2, env=env, include_dashboard=False)
    up: subprocess.Popen[bytes] | None = None
    probe: ProbeProcess | None = None
    try:
        head.start()
        probe = ProbeProcess(head.address, env)
        up = launch_up(env, log, str(spec), "--address", head.address)
        seconds(probe.ask(do="measure", t0=time.time(), sides=["ours"]), "ours", log)
        head.kill()
        end(up, kill=True)
        up = None
        probe.process.kill()
        probe.process.wait()
        probe = None
    finally:
        if probe is not None:
            probe.close()
        end(up, kill=True)
        head.stop()


def report(name: str, ours: list[float], peer: list[float], peer_name: str) -> float:
    ratio = median(ours) / median(peer)
    print(
        f"{name}: median {median(ours):.2f} s (max {max(ours):.2f}) vs {peer_name} "
        f"{median(peer):.2f} s (max {max(peer):.2f}): ratio {ratio:.2f}"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each part")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the GCS stays down")
    parser.add_argument("--part", choices=["gcs", "full", "head", "both"], default="both")
    parser.add_argument("--probe", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe_main(args.probe)
        return
    if shutil.which("redis-server") is None and args.part != "full":
        raise SystemExit("redis-server is not installed (Debian: redis-server)")
    load = os.getloadavg()[0]
    result: dict[str, Any] = {"rounds": args.rounds, "load_before": load}
    with tempfile.TemporaryDirectory(prefix="head_recovery-") as tmp:
        work = Path(tmp)
        if args.part in ("gcs", "both"):
            print(f"(a) GCS restart, {args.outage:g} s outage, load {load:.1f}", flush=True)
            gcs = gcs_restart(args.rounds, args.outage, work)
            s = gcs["seconds"]
            gcs["ratio_ours_vs_ray_nodes"] = report(
                "ours", s["ours"], s["ray_nodes"], "ray.nodes()"
            )
            gcs["ratio_ours_vs_ray_actor"] = report("ours", s["ours"], s["ray_actor"], "bare actor")
            result["gcs_restart"] = gcs
            write_result("head_recovery", result)  # kept should the second part fail
        if args.part == "head":
            print(f"(c) head loss, load {os.getloadavg()[0]:.1f}", flush=True)
            lost = head_loss(args.rounds, work)
            s = lost["seconds"]
            lost["ratio_ours_vs_ray_nodes"] = report(
                "ours", s["ours"], s["ray_nodes"], "ray.nodes()"
            )
            lost["ratio_ours_vs_ray_actor"] = report(
                "ours", s["ours"], s["ray_actor"], "bare actor"
            )
            result["head_loss"] = lost
        if args.part in ("full", "both"):
            print(f"(b) full restart, load {os.getloadavg()[0]:.1f}", flush=True)
            full = full_restart(args.rounds, work)
            s = full["seconds"]
            full["ratio_restore_vs_cold"] = report(
                "up --restore", s["restore"], s["cold"], "cold up"
            )
            result["full_restart"] = full
    result["load_after"] = os.getloadavg()[0]
    path = write_result("head_recovery", result)
    print(f"load after {result['load_after']:.1f}; raw figures in {path}")


if __name__ == "__main__":
    main()
