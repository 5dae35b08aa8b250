"""Health score: service states weighted by criticality, alerts by severity, anomaly rate."""

from __future__ import annotations

from typing import Any

import pytest

from ray_enterprise.observability.health import health_score
from ray_enterprise.registry.status import ServiceStatus, overall_status


def status_of(*services: tuple[str, str, str]) -> dict[str, Any]:
    rows = [
        ServiceStatus(name, state, state == "healthy", crit, (), 1, 0, 0, None, 0.0)
        for name, state, crit in services
    ]
    status = overall_status(rows, running=True)
    status["services"] = [r.to_json() for r in rows]
    return status


def test_all_healthy_and_quiet_is_100_and_healthy() -> None:
    report = health_score(status_of(("db", "healthy", "critical"), ("w", "healthy", "low")))
    assert (report.score, report.status, report.reasons) == (100.0, "healthy", ())


def test_a_failed_critical_service_costs_more_than_a_failed_low_one() -> None:
    db_down = health_score(status_of(("db", "failed", "critical"), ("w", "healthy", "low")))
    worker_down = health_score(status_of(("db", "healthy", "critical"), ("w", "failed", "low")))
    assert db_down.score < worker_down.score
    assert db_down.status == "critical"
    assert worker_down.status == "degraded"
    assert worker_down.reasons == ("w (low) is failed",)


def test_firing_alerts_subtract_capped_penalties_by_severity() -> None:
    healthy = status_of(("db", "healthy", "critical"))
    one_high = health_score(healthy, {"high": 1})
    many_low = health_score(healthy, {"low": 50})
    critical = health_score(healthy, {"critical": 2})
    assert one_high.score == 90.0 and "1 high alert firing" in one_high.reasons
    assert many_low.score == 96.0  # capped: noise cannot sink the score
    assert critical.score == 50.0 and critical.components["alerts_critical"] == -50.0


def test_anomaly_rate_above_the_noise_floor_costs_points() -> None:
    healthy = status_of(("db", "healthy", "critical"))
    assert health_score(healthy, anomaly_rate=0.005).score == 100.0
    report = health_score(healthy, anomaly_rate=0.25)
    assert report.score == pytest.approx(90.0) and report.status == "degraded"


def test_no_registry_is_a_caveat_and_no_services_is_not_a_fault() -> None:
    unknown = health_score(None)
    assert unknown.score == 100.0 and unknown.status == "healthy"
    assert unknown.reasons == ("service states unknown: no registry answered",)
    empty = health_score(
        {"status": "down", "score": 0.0, "reasons": ["no services"], "services": []}
    )
    assert empty.score == 100.0 and empty.status == "healthy"


def test_score_never_leaves_0_to_100() -> None:
    report = health_score(
        status_of(("db", "failed", "critical")), {"critical": 9, "high": 9}, anomaly_rate=1.0
    )
    assert report.score == 0.0 and report.to_json()["status"] == "critical"


def test_alerts_given_by_name_are_named_in_the_reason() -> None:
    healthy = status_of(("db", "healthy", "critical"))
    report = health_score(healthy, {"critical": ['ServiceFailed{service="db"}'], "low": []})
    assert report.components["alerts_critical"] == -25.0
    assert report.reasons == ('1 critical alert firing: ServiceFailed{service="db"}',)
    many = health_score(healthy, {"high": [f"A{i}" for i in range(5)]})
    assert many.reasons == ("5 high alerts firing: A0, A1, A2 and 2 more",)
