"""Jittered backoff of the alert handlers' retries (Akka's randomFactor), with a fixed random
source so the figures are exact."""

from __future__ import annotations

import random

import pytest

from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.handlers import WebhookHandler, handlers_from_config
from ray_enterprise.backoff import DEFAULT_JITTER, Backoff, backoff_delay


def test_delays_double_to_the_cap_and_jitter_stretches_each_by_up_to_its_fraction() -> None:
    plain = [backoff_delay(n, 0.5, 3.0, jitter=0) for n in range(1, 6)]
    assert plain == [0.5, 1.0, 2.0, 3.0, 3.0]
    stretched = [backoff_delay(n, 0.5, 3.0, 0.2, rng=lambda: 1.0) for n in (1, 4)]
    assert stretched == pytest.approx([0.6, 3.6])
    assert backoff_delay(2, 0.5, 3.0, 0.2, rng=lambda: 0.5) == pytest.approx(1.1)


def test_jitter_is_on_by_default_and_spreads_a_fleet_of_retries() -> None:
    assert DEFAULT_JITTER > 0
    rng = random.Random(7)
    delays = [backoff_delay(3, 0.5, 10.0, rng=rng.random) for _ in range(200)]
    assert all(2.0 <= d <= 2.0 * (1 + DEFAULT_JITTER) for d in delays)
    assert len({round(d, 6) for d in delays}) > 150  # not in lockstep


def test_a_jitter_outside_zero_to_one_is_refused_with_its_field() -> None:
    with pytest.raises(ValueError, match="fraction from 0 to 1"):
        backoff_delay(1, 0.5, 1.0, jitter=1.5)
    with pytest.raises(AlertConfigError) as info:
        handlers_from_config({"hook": {"type": "webhook", "url": "http://x", "jitter": 2}})
    assert info.value.path == "handlers.hook.jitter"
    with pytest.raises(AlertConfigError) as info:
        WebhookHandler("hook", "http://x", jitter=-0.1)
    assert info.value.path == "handlers.hook.jitter"
    [handler] = handlers_from_config(
        {"hook": {"type": "alertmanager", "url": "http://x", "jitter": 0}}
    )
    assert handler.name == "hook"


def test_a_retry_loop_doubles_jittered_to_the_cap_and_starts_over_after_a_success() -> None:
    loop = Backoff(0.5, 2.0, jitter=0.2, rng=lambda: 0.5)
    assert [loop.next() for _ in range(4)] == pytest.approx([0.55, 1.1, 2.2, 2.2])
    loop.reset()
    assert loop.next() == pytest.approx(0.55)


def test_a_retry_loop_refuses_a_jitter_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"fraction from 0 to 1, got 1\.5"):
        Backoff(0.5, 2.0, jitter=1.5)
