from __future__ import annotations

import random

import pytest

from ray_enterprise.registry.restarts import RestartTracker
from ray_enterprise.spec import RestartSpec


def test_intensity_is_n_restarts_within_the_window() -> None:
    tracker = RestartTracker(RestartSpec(max_restarts=3, window_s=10))
    for t in (0.0, 1.0, 2.0):
        tracker.record(t)
        assert not tracker.exceeded(t)
    tracker.record(3.0)
    assert tracker.exceeded(3.0)


def test_restarts_older_than_the_window_are_forgotten() -> None:
    tracker = RestartTracker(RestartSpec(max_restarts=2, window_s=10))
    tracker.record(0.0)
    tracker.record(1.0)
    tracker.record(11.5)
    assert tracker.in_window(11.5) == 1
    assert not tracker.exceeded(11.5)


def test_backoff_doubles_up_to_the_cap() -> None:
    tracker = RestartTracker(
        RestartSpec(backoff_initial_s=0.5, backoff_max_s=3.0, max_restarts=99, jitter=0)
    )
    delays = []
    for t in range(6):
        tracker.record(float(t))
        delays.append(tracker.next_delay())
    assert delays == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_resets_after_a_sustained_healthy_period() -> None:
    tracker = RestartTracker(RestartSpec(backoff_initial_s=1.0, backoff_reset_s=60.0, jitter=0))
    tracker.record(0.0)
    tracker.record(1.0)
    tracker.record(1.5)
    assert tracker.next_delay() == 2.0
    tracker.note_healthy(healthy_since=2.0, now=30.0)
    assert tracker.next_delay() == 2.0
    tracker.note_healthy(healthy_since=2.0, now=62.0)
    assert tracker.next_delay() == 0.0


def test_each_backoff_is_lengthened_by_up_to_the_jitter_fraction() -> None:
    spec = RestartSpec(backoff_initial_s=1.0, backoff_max_s=4.0, max_restarts=99, jitter=0.25)
    tracker = RestartTracker(spec, rng=lambda: 1.0)  # the longest the jitter allows
    delays = []
    for t in range(5):
        tracker.record(float(t))
        delays.append(tracker.next_delay())
    assert delays == pytest.approx([0.0, 1.25, 2.5, 5.0, 5.0])


def test_jitter_is_on_by_default_so_a_fleet_restarted_together_spreads_out() -> None:
    assert RestartSpec().jitter > 0
    rng = random.Random(3)
    delays = set()
    for _ in range(100):
        tracker = RestartTracker(RestartSpec(backoff_initial_s=1.0), rng=rng.random)
        tracker.record(0.0)
        tracker.record(1.0)
        delay = tracker.next_delay()
        assert 1.0 <= delay <= 1.0 + RestartSpec().jitter
        delays.add(round(delay, 6))
    assert len(delays) > 90


def test_a_failed_start_lengthens_the_backoff_without_spending_the_crash_budget() -> None:
    tracker = RestartTracker(RestartSpec(max_restarts=1, backoff_initial_s=1.0, jitter=0))
    for _ in range(3):
        tracker.record_backoff()
    assert tracker.in_window(0.0) == 0
    assert not tracker.exceeded(0.0)
    assert tracker.next_delay() == 2.0


def test_a_jitter_outside_zero_to_one_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="jitter"):
        RestartSpec(jitter=1.5)
