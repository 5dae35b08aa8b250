"""Real databases for the security stores: a SQLite file, and PostgreSQL in a per-run schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise.storage import make_engine, normalize_url

PG_ENV = "RAY_ENTERPRISE_TEST_PG_DSN"


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, but CI is set: the PostgreSQL security tests must run")
    pytest.skip(f"{reason} (e.g. postgresql://postgres@127.0.0.1:5432/test)")


def postgres_engine() -> Iterator[sa.Engine]:
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        _skip_or_fail(f"{PG_ENV} is not set")
        return
    schema = f"security_{uuid.uuid4().hex[:10]}"
    base = sa.create_engine(normalize_url(dsn), connect_args={"connect_timeout": 3})
    try:
        with base.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        base.dispose()
        _skip_or_fail(f"PostgreSQL at {PG_ENV} is unreachable: {type(exc).__name__}")
        return
    try:
        yield base.execution_options(schema_translate_map={None: schema})
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)
        yield sqlite
        sqlite.dispose()
    else:
        yield from postgres_engine()
