"""The platform's own faults as alert inputs, through the real AlertManager with a fake clock."""

from __future__ import annotations

import subprocess
import sys

from ray_enterprise.alerts.client import RestartAlert
from ray_enterprise.alerts.faults import (
    DEFAULT_REFUSED_QUIET_MS,
    MetricsRefusedInput,
    NodeLostInput,
    SystemActorInput,
)
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import ChangeKind, Severity
from ray_enterprise.alerts.sources import AlertInput, HealthInput
from tests.support import FakeClock


def open_names(am: AlertManager) -> list[str]:
    return sorted(a.name for a in am.alerts())


def test_service_restarting_fires_on_restarting_and_only_the_end_of_the_restart_resolves() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(HealthInput("db", "restarting", Severity.CRITICAL, "actor died"))
    [alert] = am.alerts()
    assert alert.labels == {"alertname": "ServiceRestarting", "service": "db"}
    assert alert.severity is Severity.HIGH  # one level below the service's criticality
    for step in ("starting", "unhealthy"):
        am.ingest(HealthInput("db", step, Severity.CRITICAL))
        assert open_names(am) == ["ServiceRestarting"]
    am.ingest(HealthInput("db", "healthy", Severity.CRITICAL))
    assert am.alerts() == []


def test_given_up_restarts_trade_service_restarting_for_service_failed() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(HealthInput("db", "restarting"))
    am.ingest(HealthInput("db", "failed"))
    assert open_names(am) == ["ServiceFailed"]
    am.ingest(HealthInput("db", "stopped"))
    assert am.alerts() == []


def test_a_fire_and_resolve_within_one_millisecond_is_recorded_as_both() -> None:
    am = AlertManager(clock=FakeClock(0))  # the clock never moves
    am.ingest(SystemActorInput("config", restarted=True))
    am.ingest(SystemActorInput("config", restarted=False))
    kinds = [(c.kind, c.alert.name) for c in am.take_changes()]
    assert kinds == [
        (ChangeKind.FIRED, "SystemActorRestarted"),
        (ChangeKind.RESOLVED, "SystemActorRestarted"),
    ]


def test_system_actor_restarted_is_one_alert_per_actor() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(SystemActorInput("registry", restarted=True))
    am.ingest(SystemActorInput("collector:n1", restarted=True))
    assert sorted(a.service for a in am.alerts()) == ["collector:n1", "registry"]
    am.ingest(SystemActorInput("registry", restarted=False))
    assert [a.service for a in am.alerts()] == ["collector:n1"]


def test_node_lost_is_labelled_by_node_and_resolved_by_restored_capacity() -> None:
    am = AlertManager(clock=FakeClock(0))
    am.ingest(NodeLostInput("n2", lost=True, alive=2, needed=3))
    [alert] = am.alerts()
    assert alert.labels == {"alertname": "NodeLost", "service": "cluster", "node": "n2"}
    assert alert.severity is Severity.HIGH
    am.ingest(NodeLostInput("n2", lost=False, alive=3, needed=3))
    assert am.alerts() == []


def test_metrics_refused_stays_open_while_refusals_keep_coming_and_expires_when_quiet() -> None:
    clock = FakeClock(0)
    am = AlertManager(clock=clock)
    refused = MetricsRefusedInput("nan", 3, ("latency_ms",), "value is NaN", quiet_ms=2_000)
    am.ingest(refused)
    [alert] = am.alerts()
    assert alert.labels["reason"] == "nan" and alert.labels["alertname"] == "MetricsRefused"
    clock.now = 1_500
    am.ingest(refused)  # new refusals in the next period: the quiet period starts again
    am.tick(3_000)
    assert open_names(am) == ["MetricsRefused"]
    am.tick(3_500)
    assert am.alerts() == []


def test_metrics_refused_without_a_quiet_period_uses_the_default() -> None:
    [signal] = MetricsRefusedInput("cardinality", 10).to_signals()
    assert signal.expires_after_ms == DEFAULT_REFUSED_QUIET_MS


def test_restart_alert_fires_only_for_a_restarted_actor_and_resolves_once() -> None:
    sent: list[AlertInput] = []
    first_start = RestartAlert("registry", report=sent.append)
    first_start.recovered()
    assert sent == [] and not first_start.restarted

    ticks = iter([10.0, 10.25])
    again = RestartAlert(
        "anomaly-shard:0", recreated=True, report=sent.append, clock=lambda: next(ticks)
    )
    again.recovered()
    again.recovered()
    assert [(i.service, i.restarted) for i in sent] == [  # type: ignore[attr-defined]
        ("anomaly-shard:0", True),
        ("anomaly-shard:0", False),
    ]
    assert "0.250 s" in sent[1].detail  # type: ignore[attr-defined]


def test_asking_whether_restarted_outside_ray_starts_no_ray() -> None:
    """Reading Ray's runtime context outside an actor starts a Ray of its own (auto-init); a
    later ``ray.init(namespace=...)`` then joins that one, and named actors vanish from view.
    Run in a fresh interpreter: this test process may already hold a Ray session."""
    code = (
        "import ray\n"
        "from ray_enterprise.alerts.client import RestartAlert\n"
        "alert = RestartAlert('registry', report=print)\n"
        "alert.recovered()\n"
        "assert not alert.restarted\n"
        "assert not ray.is_initialized(), 'a Ray was started'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
