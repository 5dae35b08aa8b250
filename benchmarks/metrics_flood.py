"""Memory of the central metrics store under a flood of invented metric names, on a local Ray.

An unnamed :class:`ObservabilityActor` (the central actor's class, with its default limits) is
offered ``--series`` distinct names, one point each, in batches as a collector sends them; its
process's resident memory is read from /proc before and after, beside the global series limit
and what it counted as refused. The peer is a bare prometheus-client registry fed the same
names in a separate process, which has no limit: what an unbounded store pays for the same
flood. The names go in as values of one label of one ``Gauge`` family (``flood{name=...}``),
the same number of series: registering a million ``Gauge`` objects is quadratic in
prometheus-client (each registration compares against every name; 50,000 took 393 s here).

    nice -n 10 .venv/bin/python -m benchmarks.metrics_flood --series 1000000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import numpy as np

from benchmarks._common import start_ray, write_result

MB = 2**20

_PEER = """
import sys
from prometheus_client import CollectorRegistry, Gauge

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

n = int(sys.argv[1])
registry = CollectorRegistry()
before = rss_mb()
family = Gauge("flood", "", ["name"], registry=registry)
for i in range(n):
    family.labels(name=f"flood_{i}").set(1.0)
print(before, rss_mb())
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peer(series: int) -> tuple[float, float, float]:
    """RSS before and after a bare prometheus-client registry took ``series`` gauges, and s."""
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PEER, str(series)],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    ).stdout.split()
    return float(out[0]), float(out[1]), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1_000_000, help="distinct names offered")
    parser.add_argument("--batch", type=int, default=10_000, help="series per ingest call")
    parser.add_argument("--no-peer", action="store_true", help="skip the prometheus-client run")
    args = parser.parse_args()

    import ray

    from ray_enterprise.observability.central import ObservabilityActor
    from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
    from ray_enterprise.observability.series import DEFAULT_SERIES_LIMIT

    start_ray(num_cpus=1)
    actor = (
        ray.remote(ObservabilityActor)
        .options(num_cpus=0)
        .remote(prometheus_host="127.0.0.1", health_period_s=3600.0, checkpoint_s=3600.0)
    )
    pid = int(ray.get(actor.pid.remote()))
    before = rss_mb(pid)
    one = np.array([1.0])
    began = time.perf_counter()
    for start in range(0, args.series, args.batch):
        names = range(start, min(start + args.batch, args.series))
        batch = MetricBatch(
            ts_ms=int(time.time() * 1000),
            series=[SeriesPoints(f"flood_{i}", MetricType.GAUGE, (), one) for i in names],
        )
        ray.get(actor.ingest.remote(batch))
    took = time.perf_counter() - began
    after = rss_mb(pid)
    summary = ray.get(actor.summary.remote())
    refusals = ray.get(actor.refusals.remote())
    refused = sum(refusals["counts"].values())
    ray.kill(actor, no_restart=True)
    ray.shutdown()
    row: dict[str, Any] = {
        "offered": args.series,
        "series_limit": DEFAULT_SERIES_LIMIT,
        "held": summary["series"],
        "refused_points": refused,
        "refusal_keys": len(refusals["counts"]),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "ingest_s": round(took, 1),
    }
    print(
        f"central actor: {args.series:,} series offered, {summary['series']:,} held "
        f"(limit {DEFAULT_SERIES_LIMIT:,}), {refused:,} points refused and counted under "
        f"{len(refusals['counts']):,} keys; RSS {before:.0f} -> {after:.0f} MB "
        f"(+{after - before:.0f} MB) in {took:.0f} s",
        flush=True,
    )
    if not args.no_peer:
        p_before, p_after, p_took = peer(args.series)
        row.update(
            peer_rss_before_mb=round(p_before, 1),
            peer_rss_after_mb=round(p_after, 1),
            peer_s=round(p_took, 1),
            ratio_growth=round((after - before) / max(p_after - p_before, 1e-9), 4),
        )
        print(
            f"prometheus-client registry, same names, no limit: RSS {p_before:.0f} -> "
            f"{p_after:.0f} MB (+{p_after - p_before:.0f} MB) in {p_took:.0f} s; "
            f"growth ratio ours/peer {row['ratio_growth']:.3f}",
            flush=True,
        )
    write_result("metrics_flood", row)


if __name__ == "__main__":
    main()
