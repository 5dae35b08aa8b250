"""Durable alert history: every state change, trend queries, retention, and restore.

Each :class:`AlertChange` becomes one row holding the alert as it was after the change, so the
table answers both "what happened to alert X" and, by taking the newest row per alert, "what is
open right now" — which is how a restarted alert actor gets its state back. The caller owns the
:class:`sqlalchemy.Engine` (SQLite file by default, PostgreSQL by URL); the UTC day is stored
as text on write so trend queries group the same way on every database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ray_enterprise.alerts.manager import wall_clock_ms
from ray_enterprise.alerts.matchers import Silence
from ray_enterprise.alerts.model import Alert, AlertChange, AlertStatus, ChangeKind
from ray_enterprise.storage import create_tables

metadata = sa.MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a long history.
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

alert_events = sa.Table(
    "alert_events",
    metadata,
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

alert_silences = sa.Table(
    "alert_silences",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("matchers", sa.JSON(), nullable=False),
    sa.Column("starts_at", sa.BigInteger(), nullable=False),
    sa.Column("ends_at", sa.BigInteger(), nullable=False, index=True),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
)


def utc_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class TrendRow:
    """Alerts that fired on one UTC day for one service at one severity."""

    day: str
    service: str | None
    severity: str
    count: int


class AlertHistory:
    """Writes and reads the alert tables on a caller-supplied engine."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._engine = engine
        self._clock = clock

    def create_tables(self) -> None:
        """Migrate the database to the newest schema; safe to call at every start."""
        create_tables(self._engine)

    # -- writing ------------------------------------------------------------------------------

    def record(self, changes: Sequence[AlertChange]) -> int:
        """Append changes in one transaction (one round trip per batch, not per change)."""
        if not changes:
            return 0
        rows = [_row(change) for change in changes]
        with self._engine.begin() as conn:
            conn.execute(alert_events.insert(), rows)
        return len(rows)

    def save_silence(self, silence: Silence) -> None:
        """Insert or replace a silence (expiring one early saves it with a new ``ends_at``)."""
        data = silence.to_dict()
        with self._engine.begin() as conn:
            conn.execute(alert_silences.delete().where(alert_silences.c.id == silence.id))
            conn.execute(alert_silences.insert().values(**data))

    # -- reading ------------------------------------------------------------------------------

    def events(
        self, alert_id: str | None = None, *, since_ms: int | None = None, limit: int = 1000
    ) -> list[AlertChange]:
        """The newest ``limit`` changes, of one alert or of all, in the order they happened."""
        query = sa.select(alert_events).order_by(alert_events.c.row_id.desc()).limit(limit)
        if alert_id is not None:
            query = query.where(alert_events.c.alert_id == alert_id)
        if since_ms is not None:
            query = query.where(alert_events.c.at_ms >= since_ms)
        with self._engine.connect() as conn:
            return [_change(row) for row in conn.execute(query).mappings()][::-1]

    def open_alerts(self) -> list[Alert]:
        """The newest snapshot of every alert still firing: what a restarted manager restores."""
        newest = (
            sa.select(sa.func.max(alert_events.c.row_id).label("row_id"))
            .group_by(alert_events.c.alert_id)
            .subquery()
        )
        query = (
            sa.select(alert_events.c.snapshot)
            .join(newest, newest.c.row_id == alert_events.c.row_id)
            .where(alert_events.c.status == AlertStatus.FIRING.value)
            .order_by(alert_events.c.row_id)
        )
        with self._engine.connect() as conn:
            return [Alert.from_dict(row.snapshot) for row in conn.execute(query)]

    def active_silences(self, now_ms: int | None = None) -> list[Silence]:
        now = self._clock() if now_ms is None else now_ms
        query = sa.select(alert_silences).where(alert_silences.c.ends_at > now)
        with self._engine.connect() as conn:
            return [Silence.from_dict(dict(row)) for row in conn.execute(query).mappings()]

    def counts_by_day(
        self, since_ms: int | None = None, until_ms: int | None = None
    ) -> list[TrendRow]:
        """How many alerts fired per UTC day, service and severity — the trend chart."""
        c = alert_events.c
        query = (
            sa.select(c.day, c.service, c.severity, sa.func.count().label("n"))
            .where(c.kind == ChangeKind.FIRED.value)
            .group_by(c.day, c.service, c.severity)
            .order_by(c.day, c.service, c.severity)
        )
        if since_ms is not None:
            query = query.where(c.at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(c.at_ms < until_ms)
        with self._engine.connect() as conn:
            return [TrendRow(r.day, r.service, r.severity, int(r.n)) for r in conn.execute(query)]

    def mean_time_to_acknowledge(
        self, *, service: str | None = None, since_ms: int | None = None
    ) -> float | None:
        """Mean ms from firing to the first acknowledgement; ``None`` when nothing was acked."""
        return self._mean_time_to(ChangeKind.ACKNOWLEDGED, service, since_ms)

    def mean_time_to_resolve(
        self, *, service: str | None = None, since_ms: int | None = None
    ) -> float | None:
        """Mean ms from firing to resolution; ``None`` when nothing resolved."""
        return self._mean_time_to(ChangeKind.RESOLVED, service, since_ms)

    def _mean_time_to(
        self, kind: ChangeKind, service: str | None, since_ms: int | None
    ) -> float | None:
        c = alert_events.c
        per_alert = (
            sa.select((sa.func.min(c.at_ms) - sa.func.min(c.starts_at)).label("took"))
            .where(c.kind == kind.value)
            .group_by(c.alert_id)
        )
        if service is not None:
            per_alert = per_alert.where(c.service == service)
        if since_ms is not None:
            per_alert = per_alert.where(c.starts_at >= since_ms)
        took = per_alert.subquery()
        with self._engine.connect() as conn:
            mean = conn.execute(sa.select(sa.func.avg(took.c.took))).scalar()
        return None if mean is None else float(mean)

    # -- retention ----------------------------------------------------------------------------

    def delete_before(self, cutoff_ms: int) -> int:
        """Drop alerts that resolved before ``cutoff_ms`` (all their rows) and silences that
        ended before it; returns the number of event rows deleted.

        Alerts still open are kept whatever their age: a restart must be able to restore them.
        """
        c = alert_events.c
        resolved_long_ago = (
            sa.select(c.alert_id)
            .where(c.kind == ChangeKind.RESOLVED.value, c.at_ms < cutoff_ms)
            .scalar_subquery()
        )
        with self._engine.begin() as conn:
            deleted = conn.execute(alert_events.delete().where(c.alert_id.in_(resolved_long_ago)))
            conn.execute(alert_silences.delete().where(alert_silences.c.ends_at < cutoff_ms))
        return int(deleted.rowcount or 0)


def _row(change: AlertChange) -> dict[str, Any]:
    alert = change.alert
    return {
        "alert_id": alert.id,
        "fingerprint": alert.fingerprint,
        "kind": change.kind.value,
        "at_ms": change.at,
        "day": utc_day(change.at),
        "alertname": alert.name,
        "service": alert.service,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "starts_at": alert.starts_at,
        "actor": change.actor,
        "reason": change.reason,
        "snapshot": alert.to_dict(),
    }


def _change(row: sa.RowMapping) -> AlertChange:
    return AlertChange(
        kind=ChangeKind(row["kind"]),
        at=int(row["at_ms"]),
        alert=Alert.from_dict(row["snapshot"]),
        actor=row["actor"],
        reason=row["reason"],
    )
