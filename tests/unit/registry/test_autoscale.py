"""The autoscaling decision, with time passed in. No Ray."""

from __future__ import annotations

from ray_enterprise.registry.autoscale import Autoscaler


def scaler() -> Autoscaler:
    return Autoscaler(min_replicas=1, max_replicas=4, target_inflight=2.0, downscale_delay_s=10)


def test_the_count_follows_the_queue_within_the_bounds() -> None:
    s = scaler()
    assert [s.wanted(x) for x in (0, 1, 2, 3, 8, 100)] == [1, 1, 1, 2, 4, 4]


def test_up_at_once() -> None:
    assert scaler().decide(current=1, inflight=7, now=0.0) == 4


def test_down_only_after_the_load_stayed_low_for_the_delay() -> None:
    s = scaler()
    assert s.decide(current=4, inflight=0, now=0.0) == 4
    assert s.decide(current=4, inflight=0, now=9.9) == 4
    assert s.decide(current=4, inflight=0, now=10.0) == 1


def test_a_burst_in_between_restarts_the_wait() -> None:
    s = scaler()
    s.decide(current=4, inflight=0, now=0.0)
    assert s.decide(current=4, inflight=8, now=5.0) == 4
    assert s.decide(current=4, inflight=0, now=12.0) == 4  # low again only since 12
    assert s.decide(current=4, inflight=0, now=22.0) == 1
