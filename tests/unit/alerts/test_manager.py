"""The alert state machine driven by a fake millisecond clock: no sleeps, no Ray."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ray_enterprise.alerts.errors import AlertNotFoundError, SilenceNotFoundError
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import (
    AlertSignal,
    AlertStatus,
    ChangeKind,
    Notification,
    NotificationKind,
    Severity,
)
from ray_enterprise.alerts.routing import AlertPolicy, policy_from_config
from ray_enterprise.alerts.sources import AnomalyInput, HealthInput
from tests.support import FakeClock

S = 1000
M = 60 * S


def signal(
    name: str = "HighLatency",
    service: str = "api",
    severity: Severity = Severity.HIGH,
    firing: bool = True,
    **labels: str,
) -> AlertSignal:
    return AlertSignal(
        labels={"alertname": name, "service": service, **labels},
        severity=severity,
        firing=firing,
        annotations={"summary": f"{name} on {service}"},
    )


def manager(clock: FakeClock, **route: object) -> AlertManager:
    config = {"handlers": ["log"], "group_wait": "30s", "group_interval": "5m", **route}
    return AlertManager(policy_from_config({"route": config}), clock=clock)


def names(notification: Notification) -> list[tuple[str, str]]:
    return [(a.name, a.status.value) for a in notification.alerts]


def test_duplicate_signals_make_one_alert_and_one_fired_change() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock)
    for _ in range(3):
        am.ingest(signal())
        clock.advance(S)
    [alert] = am.alerts()
    assert alert.occurrences == 3
    assert [c.kind for c in am.take_changes()] == [ChangeKind.FIRED]


def test_group_waits_group_wait_then_batches_later_alerts_to_group_interval() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_by=["service"])
    start = clock.now
    am.ingest(signal("A"))
    assert am.tick(start + 30 * S - 1) == []
    [first] = am.tick(start + 30 * S)
    assert names(first) == [("A", "firing")]
    assert first.handlers == ("log",) and first.group_labels == {"service": "api"}
    clock.now = start + 31 * S
    am.ingest(signal("B"))
    assert am.tick(start + 30 * S + 5 * M - 1) == []
    [second] = am.tick(start + 30 * S + 5 * M)
    assert sorted(names(second)) == [("A", "firing"), ("B", "firing")]
    assert am.next_due() == start + 30 * S + 10 * M


def test_unchanged_group_repeats_after_repeat_interval_unless_acknowledged() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_interval="1m", repeat_interval="10m")
    t0 = clock.now
    [alert] = am.ingest(signal())
    assert len(am.tick(t0)) == 1
    quiet = [am.tick(t0 + k * M) for k in range(1, 10)]
    assert all(n == [] for n in quiet)
    assert len(am.tick(t0 + 10 * M)) == 1
    clock.now = t0 + 11 * M
    am.acknowledge(alert.id, by="ana", reason="looking")
    assert all(am.tick(t0 + k * M) == [] for k in range(20, 40))


def test_resolve_sends_a_notice_only_for_alerts_that_were_notified() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="10s", group_interval="1m")
    t0 = clock.now
    am.ingest(signal("Told"))
    am.tick(t0 + 10 * S)
    am.ingest(signal("Untold", service="web"))
    clock.now = t0 + 20 * S
    am.ingest(signal("Told", firing=False))
    am.ingest(signal("Untold", service="web", firing=False))
    notices = am.tick(t0 + 70 * S)
    assert [names(n) for n in notices] == [[("Told", "resolved")]]
    assert notices[0].status is AlertStatus.RESOLVED
    assert notices[0].alerts[0].ends_at == t0 + 20 * S
    assert am.alerts() == [] and am.next_due() is None


def test_point_events_expire_into_a_resolve() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s")
    am.ingest(AnomalyInput("api", "latency", 900.0, 0.99, 0.9, expires_after_ms=5 * M))
    am.tick()
    clock.advance(5 * M)
    [notice] = am.tick()
    assert names(notice) == [("AnomalyDetected", "resolved")]


def test_critical_alert_inhibits_lower_alerts_of_the_same_service_only() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_by=["alertname", "service"], group_interval="1m")
    [latency] = am.ingest(signal("HighLatency", "api", Severity.HIGH))
    am.ingest(signal("HighLatency", "web", Severity.HIGH))
    am.ingest(HealthInput("api", "FAILED", criticality=Severity.CRITICAL, reason="crashed"))
    sent = am.tick()
    sent_names = sorted((n.alerts[0].name, n.alerts[0].service) for n in sent)
    assert sent_names == [("HighLatency", "web"), ("ServiceFailed", "api")]
    assert am.get(latency.id).inhibited_by == (am.alerts()[0].id,)
    assert ChangeKind.INHIBITED in [c.kind for c in am.take_changes()]
    clock.advance(10 * S)
    am.ingest(HealthInput("api", "RUNNING", criticality=Severity.CRITICAL))
    clock.advance(50 * S)
    sent = am.tick()
    assert sorted(names(n)[0] for n in sent) == [
        ("HighLatency", "firing"),
        ("ServiceFailed", "resolved"),
    ]
    assert not am.get(latency.id).suppressed


def test_silence_mutes_matching_alerts_until_it_expires() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_interval="1m", group_by=["alertname", "service"])
    t0 = clock.now
    silence = am.silence('service="api", alertname=~"High.*"', 10 * M, "ana", "deploy")
    am.ingest(signal("HighLatency", "api"))
    am.ingest(signal("HighErrors", "web"))
    am.ingest(signal("LowDisk", "api"))
    first = am.tick(t0)
    assert sorted(names(n)[0][0] for n in first) == ["HighErrors", "LowDisk"]
    assert all(am.tick(t0 + k * M) == [] for k in range(1, 10))
    [after] = am.tick(t0 + 10 * M)
    assert names(after) == [("HighLatency", "firing")]
    assert am.silences() == [] and silence.ends_at == t0 + 10 * M


def test_negative_matchers_and_early_expiry_of_a_silence() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_interval="1m")
    silence = am.silence('service!="db", severity!~"critical"', 60 * M, "ana")
    am.ingest(signal("A", "api", Severity.HIGH))
    am.ingest(signal("B", "pay", Severity.CRITICAL))
    am.ingest(signal("C", "db", Severity.LOW))
    assert sorted(n.alerts[0].name for n in am.tick()) == ["B", "C"]
    clock.advance(M)
    am.expire_silence(silence.id)
    assert [n.alerts[0].name for n in am.tick()] == ["A"]
    with pytest.raises(SilenceNotFoundError):
        am.expire_silence(silence.id)


ESCALATING = {
    "group_wait": "0s",
    "group_interval": "1m",
    "repeat_interval": "24h",
    "escalation": [
        {"after": "5m", "handlers": ["secondary"], "raise_severity": True},
        {"after": "10m", "handlers": ["manager"]},
    ],
}


def escalations(notifications: list[Notification]) -> list[tuple[tuple[str, ...], str]]:
    return [
        (n.handlers, n.alerts[0].severity.value)
        for n in notifications
        if n.kind is NotificationKind.ESCALATION
    ]


def test_escalation_steps_fire_in_order_and_raise_severity() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, **ESCALATING)
    t0 = clock.now
    am.ingest(signal(severity=Severity.MEDIUM))
    assert [n.kind for n in am.tick(t0)] == [NotificationKind.GROUP]
    assert escalations(am.tick(t0 + 5 * M - 1)) == []
    assert escalations(am.tick(t0 + 5 * M)) == [(("secondary",), "high")]
    assert escalations(am.tick(t0 + 15 * M - 1)) == []
    assert escalations(am.tick(t0 + 15 * M)) == [(("manager",), "high")]
    assert escalations(am.tick(t0 + 60 * M)) == []
    assert am.alerts()[0].escalation_step == 2


def test_acknowledge_stops_escalation_and_unacknowledge_resumes_it_from_now() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, **ESCALATING)
    t0 = clock.now
    [alert] = am.ingest(signal())
    am.tick(t0)
    clock.now = t0 + 4 * M
    acked = am.acknowledge(alert.id, by="ana", reason="on it")
    assert (acked.acknowledged_by, acked.ack_reason, acked.acknowledged_at) == (
        "ana",
        "on it",
        t0 + 4 * M,
    )
    assert escalations(am.tick(t0 + 30 * M)) == []
    clock.now = t0 + 30 * M
    am.unacknowledge(alert.fingerprint, by="ana", reason="handing over")
    assert escalations(am.tick(t0 + 35 * M - 1)) == []
    assert escalations(am.tick(t0 + 35 * M)) == [(("secondary",), "critical")]
    kinds = [(c.kind, c.actor, c.reason) for c in am.take_changes()]
    assert (ChangeKind.ACKNOWLEDGED, "ana", "on it") in kinds
    assert (ChangeKind.UNACKNOWLEDGED, "ana", "handing over") in kinds
    am.unacknowledge(alert.id, by="bo")  # not acknowledged: nothing to hand back
    assert am.take_changes() == []


def test_acknowledging_an_unknown_id_names_the_open_alerts() -> None:
    am = manager(FakeClock(1_700_000_000_000))
    [alert] = am.ingest(signal())
    with pytest.raises(AlertNotFoundError, match=alert.id):
        am.acknowledge("nope", by="ana")


def test_routing_tree_sends_to_matching_child_and_continues_when_asked() -> None:
    config = {
        "route": {
            "handlers": ["log"],
            "group_wait": "0s",
            "routes": [
                {"match": 'service="db"', "handlers": ["dba"], "continue": True},
                {
                    "match": ['severity=~"critical|high"'],
                    "handlers": ["pager"],
                    "routes": [{"match": {"team": "search"}, "handlers": ["search-pager"]}],
                },
            ],
        }
    }
    am = AlertManager(policy_from_config(config), clock=FakeClock(1_700_000_000_000))
    am.ingest(signal("A", "db", Severity.HIGH))
    am.ingest(signal("B", "web", Severity.LOW))
    am.ingest(signal("C", "search", Severity.CRITICAL, team="search"))
    am.ingest(signal("D", "db", Severity.LOW))
    routed = sorted((n.alerts[0].name, n.handlers) for n in am.tick())
    assert routed == [
        ("A", ("dba",)),
        ("A", ("pager",)),
        ("B", ("log",)),
        ("C", ("search-pager",)),
        ("D", ("dba",)),
    ]


def test_restore_from_history_does_not_page_again_for_notified_alerts() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_interval="1m")
    am.ingest(signal("A"))
    am.tick()
    snapshot = am.alerts()
    restarted = manager(clock, group_wait="0s", group_interval="1m")
    restarted.restore(snapshot)
    assert restarted.next_due() == clock.now + M  # told already: next look is an interval away
    assert restarted.tick() == []
    restarted.ingest(signal("A", firing=False))
    clock.advance(M)
    assert [names(n) for n in restarted.tick()] == [[("A", "resolved")]]


def test_refire_after_resolve_is_a_new_alert_with_a_new_id() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = AlertManager(AlertPolicy(), clock=clock)
    [first] = am.ingest(signal())
    am.ingest(signal(firing=False))
    clock.advance(S)
    [second] = am.ingest(signal())
    assert first.fingerprint == second.fingerprint and first.id != second.id


def test_an_alert_silenced_after_paging_still_sends_its_resolve_notice() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock, group_wait="0s", group_interval="1m")
    t0 = clock.now
    am.ingest(signal("A"))
    assert len(am.tick(t0)) == 1
    am.silence('alertname="A"', 60 * M, "ana", "known issue")
    assert am.tick(t0 + M) == []
    clock.now = t0 + 90 * S
    am.ingest(signal("A", firing=False))
    [notice] = am.tick(t0 + 2 * M)
    assert names(notice) == [("A", "resolved")]


def test_an_escalation_that_raises_to_critical_inhibits_the_services_other_alerts() -> None:
    clock = FakeClock(1_700_000_000_000)
    config = {**ESCALATING, "group_by": ["alertname", "service"]}
    am = manager(clock, **config)
    t0 = clock.now
    [page] = am.ingest(signal("Down", severity=Severity.HIGH))
    [other] = am.ingest(signal("Slow", severity=Severity.MEDIUM))
    am.tick(t0)
    am.acknowledge(other.id, by="ana")
    assert not am.get(other.id).suppressed
    am.tick(t0 + 5 * M)
    assert am.get(page.id).severity is Severity.CRITICAL
    assert am.get(other.id).inhibited_by == (page.id,)


def test_a_signal_delivered_late_is_dated_when_its_source_saw_it_begin() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock)
    seen = clock.now - 40 * S  # a collector held it while the head was away
    am.ingest(replace(signal(), starts_at=seen))
    [alert] = am.alerts()
    assert alert.starts_at == seen and alert.updated_at == clock.now
    am.ingest(replace(signal(name="Later"), starts_at=clock.now + M))  # never in the future
    assert {a.name: a.starts_at for a in am.alerts()}["Later"] == clock.now


def test_a_late_signal_of_an_episode_already_resolved_is_not_a_new_alert() -> None:
    clock = FakeClock(1_700_000_000_000)
    am = manager(clock)
    began = clock.now
    am.ingest(replace(signal(), starts_at=began))  # the central actor tells the outage
    clock.advance(10 * S)
    am.ingest(signal(firing=False))
    clock.advance(S)  # a collector tells the same outage once an alert actor answers it
    am.ingest(replace(signal(), starts_at=began + S))
    am.ingest(signal(firing=False))
    assert am.alerts() == []
    assert [c.kind for c in am.take_changes()] == [ChangeKind.FIRED, ChangeKind.RESOLVED]
    am.ingest(replace(signal(), starts_at=clock.now))  # a new outage after it is a new alert
    assert len(am.alerts()) == 1
