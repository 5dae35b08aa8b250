"""ControlPlaneUnreachable: fired once GCS reads failed for a while, resolved by the first
read that succeeds, never for one slow answer."""

from __future__ import annotations

from ray_enterprise.observability.fault_watch import ControlPlaneWatch


def test_one_failed_read_is_not_an_outage() -> None:
    watch = ControlPlaneWatch(after_s=3.0)
    assert watch.observe(False, now=0.0) == []
    assert watch.observe(True, now=1.0) == []
    assert not watch.firing


def test_fires_once_after_the_hold_and_resolves_with_the_outage_length() -> None:
    watch = ControlPlaneWatch(after_s=3.0)
    fired = [i for t in (0.0, 1.0, 2.0, 3.0, 4.0, 5.0) for i in watch.observe(False, now=t)]
    assert len(fired) == 1 and not fired[0].reachable and fired[0].down_s == 3.0
    (signal,) = fired[0].to_signals()
    assert signal.labels["alertname"] == "ControlPlaneUnreachable" and signal.firing
    assert signal.severity.value == "critical"
    (resolved,) = watch.observe(True, now=9.5)
    assert resolved.reachable and resolved.down_s == 9.5
    assert not resolved.to_signals()[0].firing
    assert watch.observe(True, now=10.0) == []  # nothing more to resolve


def test_a_second_outage_fires_again() -> None:
    watch = ControlPlaneWatch(after_s=1.0)
    for t in (0.0, 1.0):
        watch.observe(False, now=t)
    watch.observe(True, now=2.0)
    assert watch.observe(False, now=10.0) == []
    assert [i.reachable for i in watch.observe(False, now=11.0)] == [False]


def test_the_alert_is_dated_when_the_failing_reads_began() -> None:
    watch = ControlPlaneWatch(after_s=3.0)
    watch.observe(False, now=1_700_000_000.0)
    (fired,) = watch.observe(False, now=1_700_000_004.0)
    assert fired.since == 1_700_000_000.0
    assert fired.to_signals()[0].starts_at == 1_700_000_000_000
