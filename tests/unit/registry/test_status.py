from __future__ import annotations

from ray_enterprise.registry.status import ServiceStatus, overall_status


def svc(name: str, state: str, criticality: str = "medium") -> ServiceStatus:
    return ServiceStatus(
        name=name,
        state=state,
        healthy=state == "healthy",
        criticality=criticality,
        depends_on=(),
        generation=1,
        restarts=0,
        consecutive_failures=0,
        last_error=None,
        state_since=0.0,
    )


def test_all_healthy_is_healthy_with_full_score() -> None:
    result = overall_status([svc("a", "healthy"), svc("b", "healthy", "critical")], running=True)
    assert result["status"] == "healthy"
    assert result["score"] == 100.0


def test_a_failed_critical_service_means_down() -> None:
    result = overall_status([svc("db", "failed", "critical"), svc("x", "healthy")], running=True)
    assert result["status"] == "down"
    assert "db (critical) is failed" in result["reasons"]


def test_a_failed_low_service_only_degrades_and_costs_little() -> None:
    low = overall_status(
        [svc("db", "healthy", "critical"), svc("w", "failed", "low")], running=True
    )
    high = overall_status(
        [svc("db", "healthy", "critical"), svc("w", "failed", "high")], running=True
    )
    assert low["status"] == high["status"] == "degraded"
    assert low["score"] > high["score"]


def test_stopped_system_is_down() -> None:
    assert overall_status([svc("a", "stopped")], running=False)["status"] == "down"
