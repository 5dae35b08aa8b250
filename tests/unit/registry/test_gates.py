"""The bake-period gate: green against blue. No Ray."""

from __future__ import annotations

from ray_enterprise import latency
from ray_enterprise.registry.gates import CallStats, GateSample, GateSettings, evaluate

SETTINGS = GateSettings(max_error_rate=0.05, max_health_failures=0, max_new_anomalies=0)


def sample(
    calls: int = 100, errors: int = 0, failed: int = 0, anomalies: int | None = 0
) -> GateSample:
    return GateSample(
        health_passed=10, health_failed=failed, calls=CallStats(calls, errors), anomalies=anomalies
    )


def test_a_green_that_behaves_like_blue_passes() -> None:
    verdict = evaluate(sample(), sample(errors=1), SETTINGS)
    assert verdict.passed and verdict.reasons == ()


def test_a_failed_health_check_fails_the_gate() -> None:
    verdict = evaluate(sample(), sample(failed=1), SETTINGS)
    assert not verdict.passed
    assert "health: green failed 1 checks" in verdict.reasons[0]


def test_an_error_rate_past_the_limit_and_above_blue_fails() -> None:
    verdict = evaluate(sample(errors=1), sample(errors=30), SETTINGS)
    assert not verdict.passed
    assert "error rate: green 30.0%" in verdict.reasons[0]


def test_green_is_not_blamed_for_errors_blue_has_too() -> None:
    assert evaluate(sample(errors=40), sample(errors=30), SETTINGS).passed


def test_too_few_calls_say_nothing_about_an_error_rate() -> None:
    assert evaluate(sample(), sample(calls=4, errors=4), SETTINGS).passed


def test_more_anomalies_than_blue_had_fail_and_unknown_counts_do_not() -> None:
    assert not evaluate(sample(anomalies=1), sample(anomalies=3), SETTINGS).passed
    assert evaluate(sample(anomalies=None), sample(anomalies=None), SETTINGS).passed


def test_reasons_accumulate() -> None:
    verdict = evaluate(sample(), sample(errors=50, failed=2, anomalies=1), SETTINGS)
    assert len(verdict.reasons) == 3


def test_call_stats_subtract_and_add() -> None:
    later, earlier = CallStats(10, 2, 1), CallStats(4, 1, 0)
    assert later - earlier == CallStats(6, 1, 1)
    assert CallStats.total([later, earlier]) == CallStats(14, 3, 1)
    assert CallStats().error_rate == 0.0


def timed(calls: int, seconds: float) -> CallStats:
    buckets = latency.empty()
    buckets[latency.bucket_of(seconds)] = calls
    return CallStats(calls, 0, 0, tuple(buckets))


def test_a_green_slower_than_the_limit_and_than_blue_fails_naming_its_p99() -> None:
    settings = GateSettings(max_latency_p99_ms=200.0)
    blue = GateSample(calls=timed(100, 0.010))
    green = GateSample(calls=timed(100, 0.500))
    verdict = evaluate(blue, green, settings)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("latency: green p99 ")
    p99 = float(verdict.reasons[0].split()[3])  # to a bucket's upper bound: 25 % at most
    assert 500 <= p99 <= 500 * latency.GROWTH
    assert "limit 200 ms" in verdict.reasons[0]


def test_green_is_not_blamed_for_slowness_blue_has_too_nor_judged_on_few_calls() -> None:
    settings = GateSettings(max_latency_p99_ms=200.0)
    assert evaluate(
        GateSample(calls=timed(100, 0.9)), GateSample(calls=timed(100, 0.5)), settings
    ).passed
    assert evaluate(
        GateSample(calls=timed(100, 0.01)), GateSample(calls=timed(3, 5.0)), settings
    ).passed


def test_a_health_score_that_falls_below_the_minimum_during_the_bake_fails() -> None:
    settings = GateSettings(min_health_score=70.0)
    verdict = evaluate(GateSample(health_score=95.0), GateSample(health_score=55.0), settings)
    assert not verdict.passed
    assert "health score: fell to 55.0" in verdict.reasons[0]
    # Already below before the upgrade: not green's doing. Unknown: not judged.
    assert evaluate(GateSample(health_score=60.0), GateSample(health_score=50.0), settings).passed
    assert evaluate(GateSample(health_score=None), GateSample(health_score=None), settings).passed


def test_latency_buckets_subtract_and_add_like_the_counts() -> None:
    before, after = timed(10, 0.01), timed(30, 0.01)
    assert (after - before).calls == 20
    assert (after - before).p99_ms == timed(20, 0.01).p99_ms
    assert CallStats.total([before, CallStats(5, 0, 0)]).latency == before.latency
    assert CallStats().p99_ms is None
