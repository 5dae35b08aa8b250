"""The durable store: one SQLAlchemy URL, one MetaData, the tables every subsystem keeps.

A SQLite file by default so a laptop needs nothing installed; PostgreSQL for clusters by giving
its URL (``RAY_ENTERPRISE_DB_URL``). The tables are declared by the subsystems that use them;
the schema itself is made and changed by the migrations in :mod:`ray_enterprise.migrations`,
which :func:`create_tables` runs, so that a column added later reaches existing databases.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

DB_URL_ENV = "RAY_ENTERPRISE_DB_URL"
HOME_ENV = "RAY_ENTERPRISE_HOME"

metadata = MetaData()

#: Every applied configuration version, gap-free from 1; documents and diffs are redacted.
config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("source", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("diff", Text, nullable=False),
    Column("document", Text, nullable=False),
)

#: Each config version's real document, encrypted under a key kept outside the database
#: (``ray_enterprise.config.sealing``): what a rollback runs, never shown.
config_version_secrets = Table(
    "config_version_secrets",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("sealed", Text, nullable=False),
)

#: What should run (specs, generations, the desired state), mirrored from the registry's GCS
#: keys so that ``ray-enterprise up --restore`` can rebuild a lost cluster's application.
control_state = Table(
    "control_state",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: The database config source: dotted keys with JSON values; ``version`` rises on every write.
config_entries = Table(
    "config_entries",
    metadata,
    Column("key", String(500), primary_key=True),
    Column("value", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where local state lives: ``$RAY_ENTERPRISE_HOME`` or ``~/.ray_enterprise``."""
    env = os.environ if environ is None else environ
    return Path(env.get(HOME_ENV) or Path.home() / ".ray_enterprise")


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """``$RAY_ENTERPRISE_DB_URL``, else a SQLite file ``state.db`` under :func:`home_dir`."""
    env = os.environ if environ is None else environ
    return env.get(DB_URL_ENV) or f"sqlite:///{home_dir(env) / 'state.db'}"


def normalize_url(url: str | URL) -> URL:
    """Pick the installed driver: plain ``postgresql://`` means psycopg 3, not psycopg2."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL | None = None, *, create: bool = True) -> Engine:
    """An engine for ``url`` (default :func:`default_db_url`), with the tables created.

    SQLite gets a busy timeout and WAL so that a poller and a writer in other processes do not
    fail each other with "database is locked". ``create=False`` defers creating the tables (and
    so any connection) to the caller.
    """
    parsed = normalize_url(url or default_db_url())
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # No pool: each use opens the file afresh, so a poller sees a replaced or broken file
        # at once instead of reading an old inode through a cached connection.
        engine = create_engine(parsed, connect_args={"timeout": 5.0}, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 3})
    if create:
        create_tables(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_tables(engine: Engine) -> None:
    """Bring the database to the newest schema revision: every table, created or migrated."""
    from ray_enterprise.migrations import upgrade  # alembic loads only where a database is used

    upgrade(engine)


def is_postgres(engine_or_url: Engine | str | URL) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "postgresql"
