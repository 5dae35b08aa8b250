from __future__ import annotations

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
    tracker = RestartTracker(RestartSpec(backoff_initial_s=0.5, backoff_max_s=3.0, max_restarts=99))
    delays = []
    for t in range(6):
        tracker.record(float(t))
        delays.append(tracker.next_delay())
    assert delays == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_resets_after_a_sustained_healthy_period() -> None:
    tracker = RestartTracker(RestartSpec(backoff_initial_s=1.0, backoff_reset_s=60.0))
    tracker.record(0.0)
    tracker.record(1.0)
    tracker.record(1.5)
    assert tracker.next_delay() == 2.0
    tracker.note_healthy(healthy_since=2.0, now=30.0)
    assert tracker.next_delay() == 2.0
    tracker.note_healthy(healthy_since=2.0, now=62.0)
    assert tracker.next_delay() == 0.0
