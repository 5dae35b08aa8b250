"""Memory of one anomaly shard (default detector, capacity 10,000) on a local Ray.

The shard is fed the way the observability actor feeds it (one ``ingest`` call per flush, one
point per series), and its process's resident memory is read from /proc after each phase:
1,000 series, then 10,000, then 20 checkpoints, a restart from the checkpoint and a flood of
new series. Beside each figure: the numpy state the shard holds (what it must keep) and the
checkpoint's size, so the growth can be told from the state.

    python -m benchmarks.anomaly_memory --frames 700
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from benchmarks._common import start_ray, write_result

MB = 2**20


def status(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since start) of a process on this machine, in MB."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(rest.split()[0]) / 1024
    return fields


def state_bytes(shard: Any) -> int:
    """The bytes of every numpy array the shard's monitor and detectors hold."""

    def walk(obj: Any, seen: set[int]) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            return obj.nbytes
        if isinstance(obj, (list, tuple)):
            return sum(walk(v, seen) for v in obj)
        if hasattr(obj, "__dict__"):
            return sum(walk(v, seen) for v in vars(obj).values())
        return 0

    import ray

    return int(ray.get(shard.__ray_call__.remote(lambda self: walk(self.monitor, set()))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=700, help="frames per phase")
    parser.add_argument("--checkpoints", type=int, default=20)
    parser.add_argument("--flood", type=int, default=1500, help="new series in the flood")
    args = parser.parse_args()

    import ray

    from ray_enterprise.anomaly.shard import (
        AnomalyShardActor,
        clear_checkpoints,
    )

    start_ray(num_cpus=1)
    clear_checkpoints()
    rng = np.random.default_rng(0)
    names = [f'bench_latency{{service="svc{i % 6}",user="{i}"}}' for i in range(10_000)]
    rows: list[dict[str, Any]] = []
    shard_class = ray.remote(AnomalyShardActor).options(num_cpus=0)
    # checkpoint_s is long: this run calls checkpoint() itself, to count them.
    shard = shard_class.remote(0, checkpoint_s=3600.0)
    pid = ray.get(shard.__ray_call__.remote(lambda self: os.getpid()))
    clock = [0.0]

    def feed(series: list[str], frames: int) -> None:
        for _ in range(frames):
            clock[0] += 1.0
            values = (100.0 + rng.normal(0.0, 1.0, len(series))).tolist()
            points = [(n, clock[0], v) for n, v in zip(series, values, strict=True)]
            ray.get(shard.ingest.remote(points))

    def record(phase: str, **extra: Any) -> None:
        row = {"phase": phase, **status(pid), "state_mb": state_bytes(shard) / MB, **extra}
        rows.append(row)
        more = "".join(f", {k} {v:.1f}" for k, v in extra.items())
        print(
            f"{phase:34s} RSS {row['VmRSS']:7.1f} MB (peak {row['VmHWM']:7.1f}), "
            f"numpy state {row['state_mb']:6.1f} MB{more}",
            flush=True,
        )

    began = time.perf_counter()
    record("empty shard")
    feed(names[:1000], args.frames)
    record("1,000 series")
    feed(names, args.frames)
    record("10,000 series")
    sizes = [ray.get(shard.checkpoint.remote()) for _ in range(args.checkpoints)]
    record(f"after {args.checkpoints} checkpoints", checkpoint_mb=max(sizes) / MB)
    ray.kill(shard, no_restart=True)
    time.sleep(1.0)
    shard = shard_class.remote(0, checkpoint_s=3600.0)
    pid = ray.get(shard.__ray_call__.remote(lambda self: os.getpid()))
    record("restarted from checkpoint")
    feed([f"flood_total{{user='{i}'}}" for i in range(args.flood)] + names, 3)
    record(f"flood of {args.flood:,} new series")
    print(f"({time.perf_counter() - began:.0f} s)")
    ray.kill(shard, no_restart=True)
    clear_checkpoints()
    ray.shutdown()
    write_result("anomaly_memory", {"frames": args.frames, "phases": rows})


if __name__ == "__main__":
    main()
