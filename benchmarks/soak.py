"""The chaos soak, for as long as you like, with a report.

On a 3-node ray.cluster_utils.Cluster running the demo application with config sources
(file, database, Vault, environment), metrics, anomaly shards and alerts, the soak first
injects every kind of fault once, then random ones until ``--minutes`` have passed, while two
callers keep calling the demo's api. The invariants are checked at the end and printed as a
table (tests/chaos/soak.py has the engine; tests/chaos/test_soak.py is the CI-sized run).

Side by side with each service SIGKILL, a plain Ray actor with ``max_restarts=-1`` on the same
cluster is SIGKILLed too and timed until it answers again: the floor that Ray's own restart
sets, against which the registry's recovery (restart under policy, health check, dependents
told) is the ratio printed.

    python -m benchmarks.soak --minutes 10 [--seed 1] [--out benchmarks/results/soak.md]

PostgreSQL is the database when ``RAY_ENTERPRISE_TEST_PG_DSN`` is set (its outages are then
part of the soak), else SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ray

from benchmarks._common import RESULTS, median, write_result
from ray_enterprise.testing import local_cluster
from tests.chaos.soak import Fault, Soak


@ray.remote(max_restarts=-1, num_cpus=0)
class Bare:
    def pid(self) -> int:
        return os.getpid()


class TimedSoak(Soak):
    """The soak, plus a bare restartable actor killed beside every service."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bare_recoveries: list[float] = []
        self._bare: Any = None

    def kill_service(self) -> Fault:
        if self._bare is None:
            self._bare = Bare.remote()  # type: ignore[attr-defined]
        pid = ray.get(self._bare.pid.remote(), timeout=60)
        result: list[float] = []

        def bare() -> None:
            began = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            while True:
                try:
                    if ray.get(self._bare.pid.remote(), timeout=5) != pid:
                        result.append(time.monotonic() - began)
                        return
                except Exception:
                    time.sleep(0.01)
                if time.monotonic() - began > 120:
                    return

        thread = threading.Thread(target=bare)
        thread.start()
        try:
            return super().kill_service()
        finally:
            thread.join()
            self.bare_recoveries += result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--callers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "soak.md")
    args = parser.parse_args()

    pg_dsn = os.environ.get("RAY_ENTERPRISE_TEST_PG_DSN")
    with (
        local_cluster(nodes=3) as cluster,
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        TimedSoak(cluster, Path(tmp), seed=args.seed, pg_dsn=pg_dsn, callers=args.callers) as soak,
    ):
        report = soak.run(duration_s=args.minutes * 60.0)
        bare = soak.bare_recoveries

    ours = [f.recovery_s for f in report.faults if f.kind == "service_kill" and f.recovery_s]
    summary = report.summary()
    summary["service_kill_recovery_median_s"] = round(median(ours), 2) if ours else None
    summary["bare_ray_restart_median_s"] = round(median(bare), 2) if bare else None
    if ours and bare:
        summary["service_recovery_ratio"] = round(median(ours) / median(bare), 2)
    text = (
        report.table()
        + "\n\n"
        + "\n".join(
            f"{k}: {summary[k]}"
            for k in ("service_kill_recovery_median_s", "bare_ray_restart_median_s")
        )
    )
    if "service_recovery_ratio" in summary:
        text += f"\nratio (ours / bare Ray restart): {summary['service_recovery_ratio']}"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("```\n" + text + "\n```\n", encoding="utf-8")
    write_result(
        "soak",
        {
            "args": {"minutes": args.minutes, "seed": args.seed, "callers": args.callers},
            "summary": summary,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in report.checks],
            "faults": [
                {"kind": f.kind, "target": f.target, "recovery_s": f.recovery_s, "error": f.error}
                for f in report.faults
            ],
            "memory_mb": report.memory,
        },
    )
    print(json.dumps(summary))
    raise SystemExit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
