"""When the prober sends probes and watch calls, and which probe timed out: no Ray."""

from __future__ import annotations

from ray_enterprise.registry.probe_schedule import ProbeSchedule
from ray_enterprise.registry.replica_wrapper import Probe, check_passed, timed_out


def test_replicas_due_together_go_out_in_the_same_tick_and_one_probe_each() -> None:
    schedule = ProbeSchedule()
    for rid in ("a", "b", "c"):
        schedule.add(rid, now=10.0)
    assert schedule.probes_due(10.0) == ["a", "b", "c"]
    for rid in ("a", "b", "c"):
        schedule.sent(rid, 10.0, timeout_s=2.0)
    # Out already: nothing is sent again, however many ticks pass, until it is judged.
    assert schedule.probes_due(11.9) == []
    schedule.answered("a")
    assert schedule.probes_due(12.0) == []
    # Judged at 12.0 (the answer read a tick late): the period counts from the send.
    schedule.again("a", 3.0, now=12.0)
    assert schedule.probes_due(12.99) == []
    assert schedule.probes_due(13.0) == ["a"]


def test_a_probe_past_its_timeout_is_reported_once_and_an_answered_one_never() -> None:
    schedule = ProbeSchedule()
    schedule.add("slow", now=0.0)
    schedule.add("quick", now=0.0)
    schedule.sent("slow", 0.0, timeout_s=1.0)
    schedule.sent("quick", 0.0, timeout_s=1.0)
    schedule.answered("quick")
    assert schedule.expired(0.99) == []
    assert schedule.expired(1.0) == ["slow"]
    assert schedule.expired(5.0) == []  # counted as answered: not timed out a second time
    schedule.again("slow", 1.0, now=5.0)  # after a timeout: a period from the judgement
    assert schedule.probes_due(5.99) == []
    assert schedule.probes_due(6.0) == ["slow"]


def test_a_replica_added_before_its_start_is_watched_at_once_and_probed_only_later() -> None:
    schedule = ProbeSchedule()
    schedule.add("r", now=0.0, probe=False)
    assert schedule.watches_due(0.0) == ["r"] and schedule.probes_due(100.0) == []
    schedule.watch_sent("r")
    assert schedule.watches_due(100.0) == []  # one watch call out at a time
    schedule.watch_again("r", None)  # the service said it stopped: watching is over
    assert schedule.watches_due(1e9) == []
    schedule.again("r", 0.0, now=1.0)  # the first probe: from now
    assert schedule.probes_due(1.0) == ["r"]


def test_a_removed_replica_is_never_due_and_again_on_it_is_ignored() -> None:
    schedule = ProbeSchedule()
    schedule.add("gone", now=0.0)
    schedule.remove("gone")
    schedule.again("gone", 0.0, now=0.0)
    schedule.watch_again("gone", 0.0)
    assert "gone" not in schedule and schedule.probes_due(1.0) == []
    assert schedule.watches_due(1.0) == []


def test_again_while_a_probe_is_out_does_not_send_a_second() -> None:
    schedule = ProbeSchedule()
    schedule.add("r", now=0.0)
    schedule.sent("r", 0.0, timeout_s=5.0)
    schedule.again("r", 0.0, now=1.0)
    assert schedule.probes_due(1.0) == []


def test_answers_read_as_the_per_replica_loop_read_them() -> None:
    assert check_passed((True, "fine", True, "")).outcome is Probe.PASSED
    not_ready = check_passed((True, "", False, "warming"))
    assert (not_ready.outcome, not_ready.detail, not_ready.ok) == (
        Probe.NOT_READY,
        "not ready: warming",
        True,
    )
    assert check_passed((False, "disk full", False, "")).outcome is Probe.FAILED
    late = timed_out(2.0)
    assert (late.outcome, late.detail) == (Probe.TIMED_OUT, "health check timed out after 2 s")
