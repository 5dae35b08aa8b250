from __future__ import annotations

from ray_enterprise.config.burst import BurstWindow
from tests.support import FakeClock


def window(clock: FakeClock) -> BurstWindow:
    return BurstWindow(0.02, 0.5, clock=clock)


def test_nothing_pending_holds_nothing() -> None:
    w = window(FakeClock(100.0))
    assert not w.pending and w.not_before() == float("-inf")


def test_lone_change_after_quiet_is_due_at_once() -> None:
    clock = FakeClock(100.0)
    w = window(clock)
    w.mark()
    assert w.pending and w.not_before() == clock.now


def test_change_right_after_an_apply_waits_for_a_pause() -> None:
    clock = FakeClock(100.0)
    w = window(clock)
    w.mark()
    w.taken()
    clock.now += 0.005
    w.mark()
    assert w.not_before() == clock.now + 0.02
    clock.now += 0.01
    w.mark()  # the burst goes on: the pause is counted from the latest change
    assert w.not_before() == clock.now + 0.02


def test_endless_burst_is_applied_once_the_oldest_change_is_wait_max_old() -> None:
    clock = FakeClock(100.0)
    w = window(clock)
    w.taken()
    clock.now += 0.001
    first = clock.now
    for _ in range(100):
        w.mark()
        clock.now += 0.01
    assert w.not_before() == first + 0.5


def test_change_a_window_after_the_last_apply_leads_again() -> None:
    clock = FakeClock(100.0)
    w = window(clock)
    w.mark()
    w.taken()
    clock.now += 0.025
    w.mark()
    assert w.not_before() == clock.now
    w.taken()
    assert not w.pending
