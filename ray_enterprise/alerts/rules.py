"""Metric rules: a statistic over a window of a series, a threshold, and a hold time.

The syntax reads like the sentence an operator would say::

    p95(response_time_ms{endpoint="/search"}[5m]) > 500 for 60s
    p95 of response_time_ms{endpoint="/search"} > 500 for 60 s keep_firing_for 5m

``[5m]`` is the window the statistic covers (default 1 minute). The timing is Prometheus':
``for`` is how long the condition must hold before the alert fires, so a single slow request
does not page anyone (meanwhile the series is *pending*: :meth:`RuleEngine.states` shows it);
``keep_firing_for`` keeps a firing alert firing that long after the condition cleared (or its
series vanished), so a flapping metric is one alert, not a page per flap. A pending series that
clears is forgotten at once. Each matching series is its own alert, as in Prometheus.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ray_enterprise.alerts.errors import AlertConfigError, RuleSyntaxError
from ray_enterprise.alerts.matchers import Matcher, read_matchers
from ray_enterprise.alerts.model import AlertSignal, Severity

SeriesKey = tuple[tuple[str, str], ...]
"""The labels of one series, sorted, so it can key a dict."""

_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_PLAIN_STATS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "avg": lambda v: float(np.mean(v)),
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
    "sum": lambda v: float(np.sum(v)),
    "count": lambda v: float(v.size),
    "last": lambda v: float(v[-1]),
    "stddev": lambda v: float(np.std(v)),
}
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_STAT = re.compile(r"p(\d{1,2}(?:\.\d+)?)|[a-z]+")
_METRIC = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.]*")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\b")
DEFAULT_WINDOW_MS = 60_000


@dataclass(frozen=True)
class MetricRule:
    """A parsed rule; ``text`` is kept so errors and notifications can quote it."""

    name: str
    text: str
    statistic: str
    metric: str
    matchers: tuple[Matcher, ...]
    window_ms: int
    comparator: str
    threshold: float
    hold_ms: int
    severity: Severity = Severity.HIGH
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def statistic_of(self, values: Sequence[float]) -> float | None:
        """The rule's statistic over ``values``; ``None`` when there is no data to judge."""
        if len(values) == 0:
            return None
        array = np.asarray(values, dtype=float)
        if self.statistic.startswith("p") and self.statistic not in _PLAIN_STATS:
            return float(np.percentile(array, float(self.statistic[1:])))
        return _PLAIN_STATS[self.statistic](array)

    def breached(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        return _COMPARATORS[self.comparator](value, self.threshold)


def parse_rule(
    name: str,
    text: str,
    *,
    severity: Severity | str = Severity.HIGH,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    for_ms: int | None = None,
    keep_firing_for_ms: int | None = None,
) -> MetricRule:
    """Parse ``text``; a :class:`RuleSyntaxError` names the rule and the failing position.

    ``for_ms`` and ``keep_firing_for_ms`` (the settings' ``for`` and ``keep_firing_for``) stand
    in for the clauses of the same name when the text has none; a rule cannot have both.
    """
    pos = _skip(text, 0)
    stat = _STAT.match(text, pos)
    if stat is None or not _known_stat(stat.group()):
        raise RuleSyntaxError(
            name, text, pos, "a statistic (mean avg min max sum count last stddev or pNN)"
        )
    statistic = stat.group()
    pos = _skip(text, stat.end())
    if text.startswith("(", pos):
        metric, matchers, window_ms, pos = _selector(name, text, _skip(text, pos + 1))
        pos = _skip(text, pos)
        if not text.startswith(")", pos):
            raise RuleSyntaxError(name, text, pos, "')'")
        pos += 1
    elif re.compile(r"of\b").match(text, pos):
        metric, matchers, window_ms, pos = _selector(name, text, _skip(text, pos + 2))
    else:
        raise RuleSyntaxError(name, text, pos, "'(' or 'of' after the statistic")
    pos = _skip(text, pos)
    comparator = next((c for c in _COMPARATORS if text.startswith(c, pos)), None)
    if comparator is None:
        raise RuleSyntaxError(name, text, pos, "a comparison (> >= < <= == !=)")
    pos = _skip(text, pos + len(comparator))
    number = _NUMBER.match(text, pos)
    if number is None:
        raise RuleSyntaxError(name, text, pos, "a number to compare with")
    pos = _skip(text, number.end())
    hold_ms: int | None = None
    if re.compile(r"for\b").match(text, pos):
        hold_ms, pos = _duration(name, text, _skip(text, pos + 3))
        pos = _skip(text, pos)
    keep_ms: int | None = None
    if re.compile(r"keep_firing_for\b").match(text, pos):
        keep_ms, pos = _duration(name, text, _skip(text, pos + len("keep_firing_for")))
        pos = _skip(text, pos)
    if pos != len(text):
        expected = "'for <duration>', " if hold_ms is None and keep_ms is None else ""
        if keep_ms is None:
            expected += "'keep_firing_for <duration>' or "
        raise RuleSyntaxError(name, text, pos, expected + "end of rule")
    for clause, in_text, given in (
        ("for", hold_ms, for_ms),
        ("keep_firing_for", keep_ms, keep_firing_for_ms),
    ):
        if in_text is not None and given is not None:
            raise AlertConfigError(
                f"rules.{name}.{clause}", "set in the rule text and as a setting: keep one"
            )
    return MetricRule(
        name=name,
        text=text,
        statistic=statistic,
        metric=metric,
        matchers=tuple(matchers),
        window_ms=window_ms,
        comparator=comparator,
        threshold=float(number.group()),
        hold_ms=hold_ms if hold_ms is not None else for_ms or 0,
        keep_firing_for_ms=keep_ms if keep_ms is not None else keep_firing_for_ms or 0,
        severity=Severity(severity),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
    )


def _known_stat(word: str) -> bool:
    if word in _PLAIN_STATS:
        return True
    return re.fullmatch(r"p(\d{1,2}(?:\.\d+)?)", word) is not None and 0 < float(word[1:]) < 100


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _selector(name: str, text: str, pos: int) -> tuple[str, list[Matcher], int, int]:
    metric = _METRIC.match(text, pos)
    if metric is None:
        raise RuleSyntaxError(name, text, pos, "a metric name")
    pos = metric.end()
    matchers: list[Matcher] = []
    if text.startswith("{", pos):
        matchers, pos = read_matchers(text, pos + 1, name, "}")
    window_ms = DEFAULT_WINDOW_MS
    if text.startswith("[", pos):
        window_ms, pos = _duration(name, text, _skip(text, pos + 1))
        pos = _skip(text, pos)
        if not text.startswith("]", pos):
            raise RuleSyntaxError(name, text, pos, "']' after the window")
        pos += 1
        if window_ms <= 0:
            raise RuleSyntaxError(name, text, pos - 1, "a window longer than zero")
    return metric.group(), matchers, window_ms, pos


def _duration(name: str, text: str, pos: int) -> tuple[int, int]:
    found = _DURATION.match(text, pos)
    if found is None:
        raise RuleSyntaxError(name, text, pos, "a duration such as 60s, 5m or 1h")
    unit = found.group(2) or "s"
    return int(float(found.group(1)) * _UNITS_MS[unit]), found.end()


@dataclass(frozen=True)
class MetricRuleResult:
    """A rule started or stopped firing for one series; an alert input like any other."""

    rule: MetricRule
    series: dict[str, str]
    value: float | None
    firing: bool
    active_since: int

    def to_signals(self) -> tuple[AlertSignal, ...]:
        labels = {**self.series, **self.rule.labels, "alertname": self.rule.name}
        labels.setdefault("metric", self.rule.metric)
        annotations = {
            "rule": self.rule.text,
            "value": "" if self.value is None else f"{self.value:g}",
            "summary": f"{self.rule.statistic} of {self.rule.metric} is "
            f"{'n/a' if self.value is None else f'{self.value:g}'} "
            f"({self.rule.comparator} {self.rule.threshold:g})",
            **self.rule.annotations,
        }
        return (
            AlertSignal(
                labels=labels,
                severity=self.rule.severity,
                firing=self.firing,
                annotations=annotations,
                source="metric_rule",
            ),
        )


class WindowSource(Protocol):
    """Where rules read their data: the series store answers this for the actor."""

    def window_values(
        self, metric: str, matchers: tuple[Matcher, ...], start_ms: int, end_ms: int
    ) -> Mapping[SeriesKey, Sequence[float]]:
        """Values of every series of ``metric`` matching ``matchers`` in [start, end]."""
        ...


@dataclass
class _HoldState:
    pending_since: int
    value: float | None = None
    firing: bool = False
    cleared_since: int | None = None  # firing, but kept firing since the condition cleared


@dataclass(frozen=True)
class RuleState:
    """Where one series of one rule stands, as Prometheus' alerts page shows it."""

    rule: str
    series: dict[str, str]
    state: str  # "pending" (holding, ``for`` not yet passed) or "firing"
    active_since: int
    value: float | None
    keep_firing_since: int | None  # firing only because of keep_firing_for, since then


class RuleEngine:
    """Evaluates rules each tick, keeps each series' timers, reports only transitions.

    Reporting transitions (not every evaluation) keeps the alert input stream small; the alert
    manager dedups by fingerprint anyway, so a repeated result would be harmless.
    """

    def __init__(self, rules: Sequence[MetricRule] = ()) -> None:
        self._rules: dict[str, MetricRule] = {}
        self._state: dict[tuple[str, SeriesKey], _HoldState] = {}
        for rule in rules:
            self.add(rule)

    @property
    def rules(self) -> tuple[MetricRule, ...]:
        return tuple(self._rules.values())

    def add(self, rule: MetricRule) -> None:
        self._rules[rule.name] = rule

    def remove(self, name: str) -> list[MetricRuleResult]:
        """Drop a rule; its firing series resolve rather than fire forever."""
        rule = self._rules.pop(name)
        out = []
        for key in [k for k in self._state if k[0] == name]:
            state = self._state.pop(key)
            if state.firing:
                out.append(MetricRuleResult(rule, dict(key[1]), None, False, state.pending_since))
        return out

    def evaluate(self, source: WindowSource, now: int) -> list[MetricRuleResult]:
        results: list[MetricRuleResult] = []
        for rule in self._rules.values():
            series = source.window_values(rule.metric, rule.matchers, now - rule.window_ms, now)
            results.extend(self.evaluate_rule(rule, series, now))
        return results

    def evaluate_rule(
        self, rule: MetricRule, series: Mapping[SeriesKey, Sequence[float]], now: int
    ) -> list[MetricRuleResult]:
        """Advance ``rule`` over the given window values; series missing from it count as ok."""
        results: list[MetricRuleResult] = []
        seen: set[SeriesKey] = set()
        for key, values in series.items():
            key = tuple(sorted(key))
            seen.add(key)
            value = rule.statistic_of(values)
            if not rule.breached(value):
                results.extend(self._cleared(rule, key, value, now))
                continue
            state = self._state.get((rule.name, key))
            if state is None:
                state = self._state[(rule.name, key)] = _HoldState(pending_since=now)
            state.value, state.cleared_since = value, None
            if not state.firing and now - state.pending_since >= rule.hold_ms:
                state.firing = True
                results.append(MetricRuleResult(rule, dict(key), value, True, state.pending_since))
        for _, key in [k for k in self._state if k[0] == rule.name and k[1] not in seen]:
            results.extend(self._cleared(rule, key, None, now))
        return results

    def _cleared(
        self, rule: MetricRule, key: SeriesKey, value: float | None, now: int
    ) -> list[MetricRuleResult]:
        """The condition does not hold (or the series is gone) at ``now``."""
        state = self._state.get((rule.name, key))
        if state is None:
            return []
        if state.firing and rule.keep_firing_for_ms > 0:
            if state.cleared_since is None:
                state.cleared_since = now
            if now - state.cleared_since < rule.keep_firing_for_ms:
                return []
        del self._state[(rule.name, key)]
        if not state.firing:
            return []
        return [MetricRuleResult(rule, dict(key), value, False, state.pending_since)]

    def pending(self) -> dict[tuple[str, SeriesKey], int]:
        """Series whose condition holds but whose hold time has not passed, and since when."""
        return {k: s.pending_since for k, s in self._state.items() if not s.firing}

    def states(self) -> list[RuleState]:
        """Every series that is pending or firing, by rule and then series."""
        return [
            RuleState(
                rule=name,
                series=dict(key),
                state="firing" if state.firing else "pending",
                active_since=state.pending_since,
                value=state.value,
                keep_firing_since=state.cleared_since,
            )
            for (name, key), state in sorted(self._state.items())
        ]
