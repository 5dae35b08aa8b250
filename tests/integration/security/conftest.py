"""Real databases for the security stores: a SQLite file, and PostgreSQL in a per-run schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise.storage import make_engine
from tests.integration.helpers import postgres_schema_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)
        yield sqlite
        sqlite.dispose()
    else:
        yield from postgres_schema_engine("security", "security tests")
