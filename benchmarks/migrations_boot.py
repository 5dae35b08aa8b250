"""Boot cost of the schema: ``create_tables`` (Alembic to the newest revision) vs the
``MetaData.create_all`` of the same tables it replaced, on a SQLite file, per process start.

Every part that opens the database runs it once per engine at boot, so the figure that matters
is the check on a database already at the newest revision (the common case), with a new engine
each time as a new process would have; a fresh database is timed too. Blocks interleave so that
noise on a shared machine falls on both sides.

    python -m benchmarks.migrations_boot --boots 30 --blocks 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from benchmarks._common import median, write_result
from ray_enterprise import migrations
from ray_enterprise.alerts.history import metadata as alert_metadata
from ray_enterprise.registry.history import deployments  # noqa: F401  (declares its table)
from ray_enterprise.security.apikeys import api_keys  # noqa: F401
from ray_enterprise.security.audit import audit_records  # noqa: F401
from ray_enterprise.security.schema import security_metadata
from ray_enterprise.storage import create_tables, make_engine
from ray_enterprise.storage import metadata as storage_metadata


def create_all(engine: sa.Engine) -> None:
    for metadata in (storage_metadata, alert_metadata, security_metadata):
        metadata.create_all(engine)


def boot(setup: Callable[[sa.Engine], None], url: str) -> float:
    engine = make_engine(url, create=False)  # a new engine, as a new process has
    began = time.perf_counter()
    setup(engine)
    took = time.perf_counter() - began
    engine.dispose()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=30)
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alembic_url = f"sqlite:///{Path(tmp) / 'alembic.db'}"
        plain_url = f"sqlite:///{Path(tmp) / 'plain.db'}"
        fresh = {
            "alembic": boot(create_tables, alembic_url),
            "create_all": boot(create_all, plain_url),
        }
        warm: dict[str, list[float]] = {"alembic": [], "create_all": []}
        for _ in range(args.blocks):
            warm["alembic"] += [boot(create_tables, alembic_url) for _ in range(args.boots)]
            warm["create_all"] += [boot(create_all, plain_url) for _ in range(args.boots)]
        assert migrations.current(make_engine(alembic_url, create=False)) == migrations.head()
    at_head = {side: median(times) * 1000 for side, times in warm.items()}
    ratio = at_head["alembic"] / at_head["create_all"]
    print(
        f"boot on a database at the newest revision: alembic {at_head['alembic']:.1f} ms vs "
        f"create_all {at_head['create_all']:.1f} ms, ratio {ratio:.2f} "
        f"(median of {args.boots * args.blocks} each)"
    )
    print(
        f"fresh database: alembic {fresh['alembic'] * 1000:.1f} ms vs "
        f"create_all {fresh['create_all'] * 1000:.1f} ms (first run in this process)"
    )
    path = write_result(
        "migrations_boot",
        {
            "at_head_ms": at_head,
            "ratio": ratio,
            "fresh_ms": {k: v * 1000 for k, v in fresh.items()},
            "boots": args.boots * args.blocks,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
