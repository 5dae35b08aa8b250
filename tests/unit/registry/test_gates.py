"""The bake-period gate: green against blue. No Ray."""

from __future__ import annotations

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
