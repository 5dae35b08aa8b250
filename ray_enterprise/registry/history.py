"""Deployment history in the durable store: every upgrade, rollback and scale, with its outcome.

The key-value store holds only the upgrade in progress; this table keeps what happened for
people (``ray-enterprise history NAME``) and the spec a manual rollback returns to. Every
finished upgrade or rollback also goes to the tamper-evident audit trail.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from ray_enterprise.storage import create_tables, make_engine, metadata

logger = logging.getLogger("ray_enterprise.registry")

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("service", sa.String(100), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),  # upgrade | rollback | scale
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("from_generation", sa.Integer, nullable=False),
    sa.Column("to_generation", sa.Integer, nullable=False),
    sa.Column("old_spec", sa.Text, nullable=False),
    sa.Column("new_spec", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # running | done | rolled_back
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
)


def new_deployment_id() -> str:
    return uuid.uuid4().hex[:16]


class DeploymentHistory:
    """Rows of the ``deployments`` table, plus the audit record of each finished one."""

    def __init__(
        self, engine: sa.Engine | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine or make_engine(create=False)
        self._clock = clock
        create_tables(self._engine)

    def begin(
        self,
        deployment_id: str,
        service: str,
        kind: str,
        strategy: str,
        from_generation: int,
        to_generation: int,
        old_spec: dict[str, Any],
        new_spec: dict[str, Any],
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                deployments.insert().values(
                    id=deployment_id,
                    service=service,
                    kind=kind,
                    strategy=strategy,
                    from_generation=from_generation,
                    to_generation=to_generation,
                    old_spec=json.dumps(old_spec, sort_keys=True),
                    new_spec=json.dumps(new_spec, sort_keys=True),
                    outcome="running",
                    reason="",
                    started_at=self._clock(),
                )
            )

    def finish(self, deployment_id: str, outcome: str, reason: str = "") -> dict[str, Any] | None:
        """Record the outcome once; a second finish (a registry restarted mid-way) is a no-op."""
        with self._engine.begin() as conn:
            conn.execute(
                deployments.update()
                .where(deployments.c.id == deployment_id, deployments.c.outcome == "running")
                .values(outcome=outcome, reason=reason[:2000], finished_at=self._clock())
            )
        return self.get(deployment_id)

    def get(self, deployment_id: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(deployments).where(deployments.c.id == deployment_id)
            ).first()
        return None if row is None else _view(row)

    def list(self, service: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        query = sa.select(deployments).order_by(deployments.c.started_at.desc()).limit(limit)
        if service is not None:
            query = query.where(deployments.c.service == service)
        with self._engine.connect() as conn:
            return [_view(r) for r in conn.execute(query).all()]

    def audit(self, action: str, service: str, outcome: str, details: dict[str, Any]) -> None:
        """Append to the audit trail; a broken trail is logged, never fatal to a deployment."""
        from ray_enterprise.security.audit import platform_audit_log

        try:
            platform_audit_log(self._engine).append(
                "registry", action, target=service, outcome=outcome, details=details
            )
        except Exception:
            logger.exception("audit record %s of %s not written", action, service)


def _view(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["old_spec"] = json.loads(data["old_spec"])
    data["new_spec"] = json.loads(data["new_spec"])
    return data
