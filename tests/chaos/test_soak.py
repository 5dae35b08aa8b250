"""The whole system under faults, with its promises checked (the CI-sized soak).

Every kind of fault once, in a seeded random order, while two callers keep calling the demo's
api: SIGKILL of services and of each system actor, a node lost and re-added, invalid and valid
changes at the file, database and Vault sources, Vault stopped and restarted, the database
unreachable (PostgreSQL behind a proxy, when a DSN is given) and a metrics flood. The longer
run is ``python -m benchmarks.soak --minutes N``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ray.cluster_utils import Cluster

from tests.chaos.soak import Soak


def test_the_system_keeps_its_promises_under_faults(chaos_cluster: Cluster, tmp_path: Path) -> None:
    pg_dsn = os.environ.get("RAY_ENTERPRISE_TEST_PG_DSN")
    with Soak(chaos_cluster, tmp_path, seed=7, pg_dsn=pg_dsn, pause_s=(0.3, 1.0)) as soak:
        report = soak.run(duration_s=0.0, settle_s=60.0)
    print("\n" + report.table())
    kinds = {f.kind for f in report.faults}
    assert kinds >= {"service_kill", "system_actor_kill", "node_loss", "config_invalid"}
    assert kinds >= {"vault_outage", "metrics_flood"}
    assert report.ok, "\n" + report.table()
