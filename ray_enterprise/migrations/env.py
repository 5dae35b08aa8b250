"""Alembic's entry point: migrate the connection :func:`ray_enterprise.migrations.upgrade` holds.

There is no alembic.ini and no URL here: the caller owns the engine (SQLite file, PostgreSQL,
or a test's engine whose tables live in a schema of their own through ``schema_translate_map``),
so the version table goes to the schema the tables go to.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
translate = connection.get_execution_options().get("schema_translate_map") or {}
context.configure(
    connection=connection,
    target_metadata=None,
    version_table_schema=translate.get(None),
)
with context.begin_transaction():
    context.run_migrations()
