"""Metric rule syntax, its errors, and the rule engine's timing: ``for`` (pending) and
``keep_firing_for``, as Prometheus evaluates them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from ray_enterprise.alerts.errors import AlertConfigError, RuleSyntaxError
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.matchers import Matcher, MatchOp
from ray_enterprise.alerts.model import Severity
from ray_enterprise.alerts.rules import RuleEngine, SeriesKey, parse_rule
from tests.support import FakeClock

SEARCH: SeriesKey = (("endpoint", "/search"), ("service", "api"))


def test_parses_the_issue_example_in_both_spellings() -> None:
    a = parse_rule("slow", 'p95(response_time_ms{endpoint="/search"}[5m]) > 500 for 60s')
    b = parse_rule("slow", 'p95 of response_time_ms{endpoint="/search"} > 500 for 60 s')
    for rule in (a, b):
        assert rule.statistic == "p95"
        assert rule.metric == "response_time_ms"
        assert rule.matchers == (Matcher("endpoint", MatchOp.EQ, "/search"),)
        assert (rule.comparator, rule.threshold, rule.hold_ms) == (">", 500.0, 60_000)
    assert a.window_ms == 300_000 and b.window_ms == 60_000


def test_parses_every_comparator_regex_matchers_and_no_hold() -> None:
    rule = parse_rule("r", 'max(queue_depth{svc=~"a|b", zone!="x"}) >= 1e3')
    assert rule.comparator == ">=" and rule.threshold == 1000.0 and rule.hold_ms == 0
    assert [m.op for m in rule.matchers] == [MatchOp.RE, MatchOp.NE]
    assert parse_rule("r", "mean(x) <= -2.5 for 250ms").hold_ms == 250


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("p95(x) > 5 for", 14, "duration"),
        ("median(x) > 5", 0, "statistic"),
        ("p95(x{a=}) > 5", 8, "label value"),
        ("p95(x{a~'b'}) > 5", 7, "= != =~ !~"),
        ("p95(x[5m) > 5", 8, "']'"),
        ("p95(x) >> 5", 8, "number"),
        ("p95(x) 5", 7, "comparison"),
        ("p95 x > 5", 4, "'of'"),
        ("p95(x) > 5 for 1m extra", 18, "end of rule"),
        ('p95(x{a="b) > 5', 15, "closing"),
    ],
)
def test_syntax_errors_name_the_rule_and_the_position(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse_rule("latency-rule", text)
    assert info.value.rule == "latency-rule"
    assert info.value.position == position
    assert expected in info.value.expected
    assert "'latency-rule'" in str(info.value) and f"position {position}" in str(info.value)


def test_bad_regex_in_a_matcher_is_a_syntax_error() -> None:
    with pytest.raises(RuleSyntaxError, match="regular expression"):
        parse_rule("r", 'p95(x{a=~"(("}) > 1')


class Windows:
    """A stand-in for the series store: fixed values per series."""

    def __init__(self) -> None:
        self.values: dict[SeriesKey, list[float]] = {}
        self.asked: list[tuple[int, int]] = []

    def window_values(
        self, metric: str, matchers: tuple[Matcher, ...], start_ms: int, end_ms: int
    ) -> Mapping[SeriesKey, Sequence[float]]:
        self.asked.append((start_ms, end_ms))
        return {k: v for k, v in self.values.items() if all(m.matches(dict(k)) for m in matchers)}


def test_rule_fires_only_after_the_condition_holds_for_the_hold_time() -> None:
    rule = parse_rule(
        "slow-search", 'p95(response_time_ms{endpoint="/search"}) > 500 for 60s', severity="high"
    )
    engine, windows = RuleEngine([rule]), Windows()
    windows.values[SEARCH] = [100.0] * 90 + [900.0] * 10
    assert engine.evaluate(windows, 0) == []
    assert engine.evaluate(windows, 59_999) == []
    [fired] = engine.evaluate(windows, 60_000)
    assert fired.firing and fired.active_since == 0 and fired.value is not None
    assert fired.value > 500
    assert windows.asked[-1] == (0, 60_000)
    assert engine.evaluate(windows, 70_000) == []  # transitions only
    windows.values[SEARCH] = [100.0] * 100
    [resolved] = engine.evaluate(windows, 80_000)
    assert not resolved.firing


def test_a_dip_below_threshold_restarts_the_hold_timer() -> None:
    engine, windows = RuleEngine([parse_rule("r", "mean(x) > 10 for 30s")]), Windows()
    windows.values[(("service", "api"),)] = [20.0]
    engine.evaluate(windows, 0)
    windows.values[(("service", "api"),)] = [5.0]
    engine.evaluate(windows, 20_000)
    windows.values[(("service", "api"),)] = [20.0]
    assert engine.evaluate(windows, 25_000) == []
    assert engine.evaluate(windows, 54_999) == []
    assert len(engine.evaluate(windows, 55_000)) == 1


def test_rule_results_feed_the_alert_manager_and_a_vanished_series_resolves() -> None:
    rule = parse_rule("slow", "max(latency) > 1 for 0s", severity=Severity.CRITICAL)
    engine, windows = RuleEngine([rule]), Windows()
    am = AlertManager(clock=lambda: 0)
    windows.values[SEARCH] = [5.0]
    for result in engine.evaluate(windows, 0):
        am.ingest(result)
    [alert] = am.alerts()
    assert alert.labels == {
        "alertname": "slow",
        "endpoint": "/search",
        "service": "api",
        "metric": "latency",
    }
    assert alert.severity is Severity.CRITICAL and alert.annotations["value"] == "5"
    windows.values.clear()
    for result in engine.evaluate(windows, 1000):
        am.ingest(result)
    assert am.alerts() == []


def test_a_series_is_pending_until_for_passes_and_a_clear_while_pending_forgets_it() -> None:
    clock = FakeClock(0)
    engine, windows = RuleEngine([parse_rule("r", "mean(x) > 10 for 30s")]), Windows()
    windows.values[(("service", "api"),)] = [20.0]
    assert engine.evaluate(windows, clock()) == []
    [pending] = engine.states()
    assert (pending.rule, pending.state, pending.active_since, pending.value) == (
        "r",
        "pending",
        0,
        20.0,
    )
    windows.values[(("service", "api"),)] = [5.0]
    assert engine.evaluate(windows, clock.advance(10_000)) == []  # never fired: no resolve
    assert engine.states() == []
    windows.values[(("service", "api"),)] = [20.0]
    engine.evaluate(windows, clock.advance(1))
    [fired] = engine.evaluate(windows, clock.advance(30_000))
    assert fired.firing and [s.state for s in engine.states()] == ["firing"]


def test_keep_firing_for_holds_a_cleared_alert_and_a_return_resets_it() -> None:
    clock = FakeClock(0)
    rule = parse_rule("r", "mean(x) > 10 keep_firing_for 2m")
    assert (rule.hold_ms, rule.keep_firing_for_ms) == (0, 120_000)
    engine, windows, api = RuleEngine([rule]), Windows(), (("service", "api"),)
    windows.values[api] = [20.0]
    [fired] = engine.evaluate(windows, clock())
    windows.values[api] = [5.0]
    assert engine.evaluate(windows, clock.advance(60_000)) == []
    [kept] = engine.states()
    assert kept.state == "firing" and kept.keep_firing_since == 60_000
    windows.values[api] = [20.0]  # back within keep_firing_for: same alert, timer reset
    assert engine.evaluate(windows, clock.advance(60_000)) == []
    assert engine.states()[0].keep_firing_since is None
    windows.values.clear()  # a vanished series keeps firing too
    assert engine.evaluate(windows, clock.advance(15_000)) == []
    assert engine.evaluate(windows, clock.advance(119_999)) == []
    [resolved] = engine.evaluate(windows, clock.advance(1))
    assert not resolved.firing and resolved.active_since == fired.active_since
    assert engine.states() == []


def test_for_and_keep_firing_for_come_from_settings_or_text_but_not_both() -> None:
    from ray_enterprise.alerts.settings import AlertSettings

    raw = {"name": "r", "expr": "max(x) > 1", "for": "30s", "keep_firing_for": "2m"}
    settings = AlertSettings.parse({"rules": [raw]})
    [rule] = settings.metric_rules()
    assert (rule.hold_ms, rule.keep_firing_for_ms) == (30_000, 120_000)
    assert settings.model_dump(mode="json")["rules"][0]["for"] == "30s"
    assert AlertSettings.parse(settings.model_dump(mode="json")) == settings
    with pytest.raises(AlertConfigError) as info:
        AlertSettings.parse({"rules": [{**raw, "expr": "max(x) > 1 for 5s"}]})
    assert info.value.path == "rules.r.for"
    with pytest.raises(AlertConfigError) as info:
        AlertSettings.parse({"rules": [{**raw, "keep_firing_for": "later"}]})
    assert info.value.path == "rules.r.keep_firing_for"
    with pytest.raises(RuleSyntaxError, match="'keep_firing_for <duration>' or end of rule"):
        parse_rule("r", "max(x) > 1 for 5s keep 1m")
