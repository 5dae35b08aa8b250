"""Schema migrations (Alembic) for every table of the durable store, SQLite and PostgreSQL.

:func:`upgrade` runs at every start, wherever a subsystem used to call ``create_all``: it brings
any database to the newest revision and does nothing on one that is there already. Revision
``0001`` is the schema ``create_all`` made before migrations, so a database from then is
stamped, not recreated. A change to a table is a new file in ``versions/`` (``alembic
revision`` with ``script_location`` set to this folder), written with ``op.batch_alter_table``
so that SQLite, which cannot alter most columns in place, gets its table copied.

Several processes start at once (the config, alert and security actors, the API), so an
upgrade holds a lock: PostgreSQL's advisory lock, a lock file beside a SQLite database.
"""

from __future__ import annotations

import fcntl
import functools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

HERE = Path(__file__).resolve().parent
#: Any fixed 64-bit number: PostgreSQL advisory locks are named by integers.
_PG_LOCK_KEY = 0x7261795F656E74  # "ray_ent"
_done: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_done_lock = threading.Lock()


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: sa.Engine) -> str | None:
    """The revision ``engine``'s database is at; ``None`` before any migration ran on it."""
    translate = engine.get_execution_options().get("schema_translate_map") or {}
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table_schema": translate.get(None)}
        )
        return context.get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate ``engine``'s database to ``revision``; once per engine and process at most."""
    if revision == "head" and engine in _done:
        return
    with _done_lock:
        # Almost every boot finds the database at the head: one query says so, where running
        # Alembic's environment to find nothing to do costs several times a create_all.
        if revision != "head" or current(engine) != head():
            with _exclusive(engine), engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    key = {"key": _PG_LOCK_KEY}
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), key)
                command.upgrade(_config(conn), revision)
        if revision == "head":
            _done.add(engine)


@contextmanager
def _exclusive(engine: sa.Engine) -> Iterator[None]:
    """Between processes on one SQLite file; PostgreSQL locks inside the transaction."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate-lock")
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["current", "head", "upgrade"]
