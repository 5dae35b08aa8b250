"""Baseline: the schema as ``create_all`` made it before migrations, table for table.

Databases made before migrations already hold these tables, so each one is created only where
it is missing: such a database is stamped at this revision, never recreated. The tables are
copied here, not imported from the subsystems, because a migration describes the schema as it
was at its revision while the subsystems' tables move on.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

v0 = sa.MetaData()
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a long history.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

sa.Table(
    "config_versions",
    v0,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("diff", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)
sa.Table(
    "config_entries",
    v0,
    sa.Column("key", sa.String(500), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
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
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
)
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
)
sa.Table(
    "alert_silences",
    v0,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.JSON(), nullable=False),
    sa.Column("starts_at", sa.BigInteger(), nullable=False),
    sa.Column("ends_at", sa.BigInteger(), nullable=False, index=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
)
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
)
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
)
sa.Table(
    "security_audit_head",
    v0,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


def upgrade() -> None:
    v0.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    v0.drop_all(op.get_bind(), checkfirst=True)
