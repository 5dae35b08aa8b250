"""Schema migrations on a real SQLite file and a real PostgreSQL (a schema of its own per test)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ray_enterprise import migrations
from ray_enterprise.alerts.history import metadata as alert_metadata
from ray_enterprise.registry.history import DeploymentHistory
from ray_enterprise.security.apikeys import ApiKeyStore
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.security.schema import security_metadata
from ray_enterprise.storage import create_tables, make_engine
from ray_enterprise.storage import metadata as storage_metadata
from tests.integration.helpers import postgres_schema_engine

# -- v0: the schema as create_all made it before migrations, copied here as it was -----------

v0 = sa.MetaData()
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
V0_TABLES = [
    sa.Table(
        "config_versions",
        v0,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    ),
    sa.Table(
        "config_entries",
        v0,
        sa.Column("key", sa.String(500), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    ),
    sa.Table(
        "deployments",
        v0,
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("strategy", sa.String(20), nullable=False),
        sa.Column("from_generation", sa.Integer, nullable=False),
        sa.Column("to_generation", sa.Integer, nullable=False),
        sa.Column("old_spec", sa.Text, nullable=False),
        sa.Column("new_spec", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, default=""),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    ),
    sa.Table(
        "alert_events",
        v0,
        sa.Column("row_id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(32), nullable=False, index=True),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False, index=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("alertname", sa.String(200), nullable=False),
        sa.Column("service", sa.String(200), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
    ),
    sa.Table(
        "alert_silences",
        v0,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False, index=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
    ),
    sa.Table(
        "security_api_keys",
        v0,
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(300), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("revoked_at", sa.Float, nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
        sa.Column("rotated_from", sa.String(32), nullable=True),
    ),
    sa.Table(
        "security_audit",
        v0,
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    ),
    sa.Table(
        "security_audit_head",
        v0,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    ),
]


def _v0_rows(table: sa.Table, n: int) -> list[dict[str, Any]]:
    """``n`` rows of plausible data for any v0 table, distinct per row."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for column in table.columns:
            if column.name == "row_id":
                continue
            kind = type(column.type)
            if isinstance(column.type, sa.JSON):
                row[column.name] = {"row": i, "labels": {"service": f"svc-{i}"}}
            elif kind in (sa.Integer, sa.BigInteger) or isinstance(column.type, sa.Integer):
                row[column.name] = 1000 * i + len(column.name)
            elif kind is sa.Float:
                row[column.name] = 1_767_225_600.25 + i
            else:
                row[column.name] = f"{column.name}-{i}-é"  # non-ASCII survives too
        rows.append(row)
    return rows


def _dump(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: [
                tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in r)
                for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))
            ]
            for t in V0_TABLES
        }


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        sqlite = make_engine(f"sqlite:///{tmp_path / 'state.db'}", create=False)
        yield sqlite
        sqlite.dispose()
    else:
        yield from postgres_schema_engine("migrations", "migration test")


def _inspect_tables(engine: sa.Engine) -> set[str]:
    schema = (engine.get_execution_options().get("schema_translate_map") or {}).get(None)
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names(schema=schema))


def test_a_database_made_by_the_v0_schema_is_stamped_and_keeps_every_row(
    engine: sa.Engine,
) -> None:
    v0.create_all(engine)
    with engine.begin() as conn:
        for table in V0_TABLES:
            conn.execute(table.insert(), _v0_rows(table, 3))
    before = _dump(engine)
    assert migrations.current(engine) is None

    create_tables(engine)  # what every subsystem runs at boot

    assert migrations.current(engine) == migrations.head()
    assert _dump(engine) == before
    assert all(len(rows) == 3 for rows in before.values())


def test_subsystems_booting_on_a_v0_database_read_what_it_held(engine: sa.Engine) -> None:
    v0.create_all(engine)
    old_audit = AuditLog(engine, create=False)
    old_audit.append("admin", "key.create", target="k1", details={"why": "before migrations"})
    old_keys = ApiKeyStore(engine, iterations=1000, audit=old_audit, create=False)
    issued = old_keys.create(["status:read"], name="ops")

    audit = AuditLog(engine)  # boots as it does in the actors: migrates, then reads
    keys = ApiKeyStore(engine, iterations=1000, audit=audit)

    assert migrations.current(engine) == migrations.head()
    assert keys.verify(issued.secret, required=["status:read"]).key_id == issued.key.key_id
    report = audit.verify()
    assert report.ok, report.problems
    assert report.checked >= 2


def test_an_empty_database_gets_every_table_the_subsystems_declare_as_declared(
    engine: sa.Engine,
) -> None:
    DeploymentHistory(engine)  # any subsystem's boot migrates the whole schema

    declared = sa.MetaData()
    for source in (storage_metadata, alert_metadata, security_metadata):
        for table in source.tables.values():
            table.to_metadata(declared)
    assert set(declared.tables) <= _inspect_tables(engine)
    schema = (engine.get_execution_options().get("schema_translate_map") or {}).get(None)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                # PostgreSQL: only this test's schema, not the others sharing the server.
                "include_schemas": schema is not None,
                "include_name": lambda name, kind, _parent: kind != "schema" or name == schema,
            },
        )
        diffs = compare_metadata(context, _in_schema(declared, schema))
    # A table changed without a new revision would show here (and in no other test).
    assert [d for d in diffs if not _is_version_table(d)] == []


def _in_schema(metadata: sa.MetaData, schema: str | None) -> sa.MetaData:
    if schema is None:
        return metadata
    # The default index names, which would otherwise take the schema into the column label.
    moved = sa.MetaData(
        schema=schema, naming_convention={"ix": "ix_%(table_name)s_%(column_0_name)s"}
    )
    for table in metadata.tables.values():
        table.to_metadata(moved, schema=schema)
    return moved


def _is_version_table(diff: Any) -> bool:
    return isinstance(diff, tuple) and getattr(diff[1], "name", None) == "alembic_version"


def test_migrating_again_as_a_restarted_process_would_changes_nothing(engine: sa.Engine) -> None:
    create_tables(engine)
    with engine.begin() as conn:
        conn.execute(V0_TABLES[0].insert(), _v0_rows(V0_TABLES[0], 2))
    before = _dump(engine)
    migrations._done.discard(engine)  # as a fresh process would
    create_tables(engine)
    assert _dump(engine) == before
    assert migrations.current(engine) == migrations.head()
