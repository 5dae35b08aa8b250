"""Every part of the system as an alert input: one ``to_signals()`` vocabulary."""

from __future__ import annotations

from dataclasses import dataclass

from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import ChangeKind, Severity
from ray_enterprise.alerts.routing import policy_from_config
from ray_enterprise.alerts.sources import (
    AnomalyInput,
    ConfigRejectedInput,
    ConfigSourceInput,
    HealthInput,
    SecurityInput,
)
from tests.support import FakeClock


@dataclass(frozen=True)
class DetectorEvent:
    """Shaped like the anomaly shards' event: the adapter reads attributes, not a type."""

    series: str
    timestamp: float
    value: float
    score: float
    confidence: float
    detector: str


def test_health_failed_fires_at_criticality_degraded_one_lower_and_running_resolves() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(HealthInput("db", "DEGRADED", criticality=Severity.CRITICAL, reason="slow disk"))
    [degraded] = am.alerts()
    assert (degraded.name, degraded.severity) == ("ServiceDegraded", Severity.HIGH)
    am.ingest(HealthInput("db", "FAILED", criticality=Severity.CRITICAL))
    [failed] = am.alerts()
    assert (failed.name, failed.severity, failed.source) == (
        "ServiceFailed",
        Severity.CRITICAL,
        "health",
    )
    am.ingest(HealthInput("db", "RUNNING", criticality=Severity.CRITICAL))
    assert am.alerts() == []


def test_config_inputs_fire_and_resolve() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(ConfigRejectedInput(version=7, reason="cache.ttl must be > 0", source="file"))
    am.ingest(ConfigSourceInput("vault", failing=True, reason="403"))
    assert sorted(a.name for a in am.alerts()) == ["ConfigRejected", "ConfigSourceFailing"]
    am.ingest(ConfigRejectedInput(version=8, reason="", applied=True))
    am.ingest(ConfigSourceInput("vault", failing=False))
    assert am.alerts() == []


def test_security_and_anomaly_events_carry_their_facts_and_expire() -> None:
    clock = FakeClock(0)
    am = AlertManager(clock=clock)
    am.ingest(SecurityInput("key_refused", "revoked key used 20 times", expires_after_ms=1000))
    event = DetectorEvent("api.latency", 1.0, 950.0, 0.97, 0.8, "hst")
    am.ingest(AnomalyInput.from_event(event, service="api", severity=Severity.HIGH))
    anomaly = next(a for a in am.alerts() if a.name == "AnomalyDetected")
    assert anomaly.labels == {
        "alertname": "AnomalyDetected",
        "service": "api",
        "series": "api.latency",
        "detector": "hst",
    }
    assert anomaly.annotations["score"] == "0.970"
    clock.now = 1000
    am.tick()
    assert [a.name for a in am.alerts()] == ["AnomalyDetected"]


def test_a_more_severe_duplicate_raises_severity_and_a_milder_one_does_not_lower_it() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(SecurityInput("flood", "x", severity=Severity.MEDIUM))
    am.ingest(SecurityInput("flood", "x", severity=Severity.CRITICAL))
    am.ingest(SecurityInput("flood", "x", severity=Severity.LOW))
    [alert] = am.alerts()
    assert alert.severity is Severity.CRITICAL and alert.occurrences == 3
    kinds = [c.kind for c in am.take_changes()]
    assert kinds == [ChangeKind.FIRED, ChangeKind.SEVERITY_CHANGED]


def test_a_silence_that_starts_later_mutes_only_from_its_start() -> None:
    clock = FakeClock(0)
    am = AlertManager(
        policy_from_config({"route": {"handlers": ["log"], "group_wait": 0}}), clock=clock
    )
    am.silence('service="api"', 60_000, "ana", starts_at=10_000)
    [alert] = am.ingest(HealthInput("api", "FAILED"))
    assert len(am.tick(0)) == 1 and not am.get(alert.id).suppressed
    am.tick(10_000)
    assert am.get(alert.id).silenced_by != ()
    am.tick(70_000)
    assert not am.get(alert.id).suppressed


def test_new_policy_regroups_open_alerts_without_repaging() -> None:
    clock = FakeClock(0)
    am = AlertManager(
        policy_from_config({"route": {"handlers": ["log"], "group_wait": 0}}), clock=clock
    )
    am.ingest(HealthInput("api", "FAILED"))
    assert [n.handlers for n in am.tick()] == [("log",)]
    am.set_policy(policy_from_config({"route": {"handlers": ["pager"], "group_wait": 0}}))
    assert am.tick() == []
    am.ingest(HealthInput("api", "RUNNING"))
    clock.now = 5 * 60_000
    assert [(n.handlers, n.status.value) for n in am.tick()] == [(("pager",), "resolved")]
