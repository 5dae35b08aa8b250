"""The sealed secrets of each config version (rollback restores real values, never masks) and
the registry's durable control state (what ``up --restore`` rebuilds a lost cluster from).

Both are new tables, so an upgrade only creates them; nothing existing changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

v2 = sa.MetaData()
sa.Table(
    "config_version_secrets",
    v2,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sealed", sa.Text, nullable=False),
)
sa.Table(
    "control_state",
    v2,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def upgrade() -> None:
    v2.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    v2.drop_all(op.get_bind(), checkfirst=True)
