"""Alert history on a real SQLite file and on a real PostgreSQL (per-run schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ray_enterprise.alerts.history import (
    AlertHistory,
    TrendRow,
    alert_events,
    utc_day,
)
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import AlertSignal, ChangeKind, Severity
from ray_enterprise.alerts.routing import policy_from_config
from tests.integration.helpers import postgres_schema_engine
from tests.support import FakeClock

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        sqlite = sa.create_engine(f"sqlite:///{tmp_path / 'history.db'}")
        yield sqlite
        sqlite.dispose()
    else:
        yield from postgres_schema_engine("alert_history", "history test")


def fire(am: AlertManager, name: str, service: str, severity: Severity) -> str:
    [alert] = am.ingest(AlertSignal({"alertname": name, "service": service}, severity))
    return alert.id


def resolve(am: AlertManager, name: str, service: str) -> None:
    am.ingest(AlertSignal({"alertname": name, "service": service}, Severity.LOW, firing=False))


def test_history_restores_open_alerts_and_silences_after_a_restart(engine: sa.Engine) -> None:
    clock = FakeClock(T0)
    history = AlertHistory(engine, clock=clock)
    history.create_tables()
    history.create_tables()  # idempotent at every start
    policy = policy_from_config({"route": {"handlers": ["log"], "group_wait": 0}})
    am = AlertManager(policy, clock=clock)
    open_id = fire(am, "HighLatency", "api", Severity.HIGH)
    fire(am, "DiskFull", "db", Severity.MEDIUM)
    am.tick()
    clock.now += 60_000
    am.acknowledge(open_id, by="ana", reason="on it")
    resolve(am, "DiskFull", "db")
    silence = am.silence('service="web"', 3_600_000, "ana", "deploy")
    history.save_silence(silence)
    assert history.record(am.take_changes()) > 0

    restarted = AlertManager(policy, clock=clock)
    restarted.restore(history.open_alerts(), history.active_silences())
    [alert] = restarted.alerts()
    assert (alert.id, alert.acknowledged_by, alert.ack_reason) == (open_id, "ana", "on it")
    assert alert.notified_at == T0
    assert [s.id for s in restarted.silences()] == [silence.id]
    assert restarted.tick() == []  # already told before the restart: no second page
    kinds = [c.kind for c in history.events(open_id)]
    assert kinds == [ChangeKind.FIRED, ChangeKind.NOTIFIED, ChangeKind.ACKNOWLEDGED]
    assert [c.kind for c in history.events(open_id, limit=2)] == kinds[1:]
    [ack] = [c for c in history.events(open_id) if c.kind is ChangeKind.ACKNOWLEDGED]
    assert (ack.actor, ack.reason, ack.at) == ("ana", "on it", T0 + 60_000)


def test_trends_count_per_day_service_severity_and_mean_times(engine: sa.Engine) -> None:
    clock = FakeClock(T0)
    history = AlertHistory(engine, clock=clock)
    history.create_tables()
    am = AlertManager(clock=clock)
    a = fire(am, "A", "api", Severity.HIGH)
    b = fire(am, "B", "api", Severity.HIGH)
    fire(am, "C", "db", Severity.CRITICAL)
    clock.now += 120_000
    am.acknowledge(a, by="ana")
    clock.now += 60_000
    am.acknowledge(b, by="bo")
    resolve(am, "A", "api")
    clock.now = T0 + DAY + 5_000
    fire(am, "D", "api", Severity.LOW)
    clock.now += 10_000
    resolve(am, "D", "api")
    history.record(am.take_changes())

    assert history.counts_by_day() == [
        TrendRow(utc_day(T0), "api", "high", 2),
        TrendRow(utc_day(T0), "db", "critical", 1),
        TrendRow(utc_day(T0 + DAY), "api", "low", 1),
    ]
    assert history.counts_by_day(since_ms=T0 + DAY) == [TrendRow("2026-01-02", "api", "low", 1)]
    assert history.mean_time_to_acknowledge() == pytest.approx(150_000)
    assert history.mean_time_to_acknowledge(service="db") is None
    assert history.mean_time_to_resolve() == pytest.approx((180_000 + 10_000) / 2)
    assert history.mean_time_to_resolve(since_ms=T0 + DAY) == pytest.approx(10_000)


def test_retention_drops_old_resolved_alerts_but_keeps_open_ones(engine: sa.Engine) -> None:
    clock = FakeClock(T0)
    history = AlertHistory(engine, clock=clock)
    history.create_tables()
    am = AlertManager(clock=clock)
    old_open = fire(am, "StillBroken", "api", Severity.HIGH)
    old_done = fire(am, "Flap", "api", Severity.LOW)
    resolve(am, "Flap", "api")
    history.save_silence(am.silence('service="api"', 1000, "ana"))
    clock.now = T0 + 40 * DAY
    recent = fire(am, "Recent", "db", Severity.LOW)
    resolve(am, "Recent", "db")
    history.record(am.take_changes())

    assert history.delete_before(T0 + 30 * DAY) == 2
    remaining = {c.alert.id for c in history.events()}
    assert remaining == {old_open, recent} and old_done not in remaining
    assert history.active_silences(T0) == []
    assert [a.id for a in history.open_alerts()] == [old_open]


def test_a_burst_of_ten_thousand_changes_is_written_without_loss(engine: sa.Engine) -> None:
    clock = FakeClock(T0)
    history = AlertHistory(engine, clock=clock)
    history.create_tables()
    am = AlertManager(clock=clock)
    signals = (
        AlertSignal({"alertname": "Burst", "service": f"s{i % 50}", "n": str(i)}, Severity.LOW)
        for i in range(10_000)
    )
    assert am.ingest_many(signals) == 10_000
    changes = am.take_changes()
    assert history.record(changes) == 10_000
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(alert_events)).scalar()
    assert stored == 10_000
    assert len(history.open_alerts()) == 10_000
