"""Where alerts go: a routing tree by labels, escalation and quiet hours per route, inhibition.

The tree works like Alertmanager's: the root takes every alert; an alert descends into the first
child whose matchers it satisfies and stops there unless that child says ``continue``; a node
none of whose children match handles the alert itself. Children inherit the timing and grouping
they do not set, except ``mute_time_intervals`` and ``active_time_intervals``, which (as in
Alertmanager) belong to the node that names them and cannot be set on the root. Config is a
plain mapping (from YAML or the config section) turned into frozen dataclasses once, with
errors that name the path of the bad field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ray_enterprise.alerts.errors import AlertConfigError, RuleSyntaxError
from ray_enterprise.alerts.escalation import (
    EscalationPolicy,
    EscalationStep,
    policies_from_config,
)
from ray_enterprise.alerts.matchers import (
    Matcher,
    MatchOp,
    matches_all,
    parse_matchers,
)
from ray_enterprise.alerts.model import Alert
from ray_enterprise.alerts.timeintervals import TimeIntervalSet, time_intervals_from_config

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(value: str | float, path: str = "duration") -> int:
    """``"30s"``, ``"5m"``, ``"1h"``, ``"250ms"``; a bare number means seconds."""
    if isinstance(value, bool):
        raise AlertConfigError(path, f"expected a duration such as 30s or 5m, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise AlertConfigError(path, f"a duration cannot be negative, got {value!r}")
        return int(value * 1000)
    found = _DURATION.match(str(value))
    if found is None:
        raise AlertConfigError(path, f"expected a duration such as 30s or 5m, got {value!r}")
    return int(float(found.group(1)) * _UNITS_MS[found.group(2) or "s"])


@dataclass(frozen=True)
class Route:
    """One node of the routing tree; ``path`` (``"root/1/0"``) names it in group keys."""

    handlers: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ("alertname", "service")
    group_wait_ms: int = 30_000
    group_interval_ms: int = 5 * 60_000
    repeat_interval_ms: int = 4 * 3_600_000
    continue_: bool = False
    send_resolved: bool = True
    escalation: tuple[EscalationStep, ...] = ()
    escalation_policy: EscalationPolicy | None = None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    children: tuple[Route, ...] = ()
    path: str = "root"

    @functools.cached_property
    def _escalation(self) -> EscalationPolicy | None:
        if self.escalation_policy is not None:
            return self.escalation_policy
        return EscalationPolicy.from_steps(self.escalation) if self.escalation else None

    def escalation_for(self) -> EscalationPolicy | None:
        """The policy this route escalates by: a named one, or its ``escalation`` steps
        (made once per route: the manager asks on every tick)."""
        return self._escalation

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """Routes that handle an alert with ``labels`` (several when ``continue`` is set)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.children:
            matched = child.match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def group_key(self, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """Alerts with the same values of ``group_by`` share one notification stream."""
        values = {k: labels.get(k, "") for k in self.group_by}
        key = self.path + "{" + ",".join(f"{k}={values[k]!r}" for k in self.group_by) + "}"
        return key, values


@dataclass(frozen=True)
class InhibitRule:
    """While a source alert fires, targets with the same ``equal`` labels are held back.

    The default says the issue's rule: a critical alert on a service holds back that service's
    lower alerts (the page about the outage is enough; its symptoms are noise).
    """

    source: tuple[Matcher, ...] = (Matcher("severity", MatchOp.EQ, "critical"),)
    target: tuple[Matcher, ...] = (Matcher("severity", MatchOp.RE, "high|medium|low"),)
    equal: tuple[str, ...] = ("service",)


DEFAULT_INHIBIT_RULES = (InhibitRule(),)


def inhibition_index(
    rules: Iterable[InhibitRule], alerts: Iterable[Alert]
) -> Callable[[Alert], set[str]]:
    """Index the firing sources once per tick; returns ``target -> ids of its inhibitors``.

    Indexing by the ``equal`` label values keeps a tick linear in the number of alerts.
    """
    alerts = list(alerts)
    indexes = []
    for rule in rules:
        index: dict[tuple[str, ...], set[str]] = {}
        for alert in alerts:
            labels = alert.match_labels()
            if alert.firing and matches_all(rule.source, labels):
                values = tuple(labels.get(k, "") for k in rule.equal)
                if all(values):  # a missing label would make unrelated alerts "equal"
                    index.setdefault(values, set()).add(alert.id)
        indexes.append((rule, index))

    def sources(target: Alert) -> set[str]:
        labels = target.match_labels()
        found: set[str] = set()
        for rule, index in indexes:
            if matches_all(rule.target, labels):
                found |= index.get(tuple(labels.get(k, "") for k in rule.equal), set())
        found.discard(target.id)
        return found

    return sources


@dataclass(frozen=True)
class AlertPolicy:
    """Everything the manager needs from config: the routing tree and the inhibition rules."""

    route: Route = field(default_factory=lambda: Route(handlers=("log",)))
    inhibit_rules: tuple[InhibitRule, ...] = DEFAULT_INHIBIT_RULES
    time_intervals: Mapping[str, TimeIntervalSet] = field(default_factory=dict)

    def handler_names(self) -> set[str]:
        names: set[str] = set()
        for route in self.route.walk():
            names.update(route.handlers)
            policy = route.escalation_for()
            if policy is not None:
                names.update(policy.handler_names())
        return names

    def muted(self, route: Route, now: int) -> bool:
        """Whether ``route`` keeps quiet at ``now``: inside one of its mute intervals, or
        outside all of its active ones (a mute wins where both hold, as in Alertmanager)."""
        if any(self.time_intervals[n].contains(now) for n in route.mute_time_intervals):
            return True
        active = route.active_time_intervals
        return bool(active) and not any(self.time_intervals[n].contains(now) for n in active)


_ROUTE_KEYS = {
    "handlers",
    "match",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "continue",
    "send_resolved",
    "escalation",
    "escalation_policy",
    "mute_time_intervals",
    "active_time_intervals",
    "routes",
}


def policy_from_config(config: Mapping[str, Any]) -> AlertPolicy:
    """Build the policy from ``{"route": {...}, "inhibit_rules": [...], "time_intervals": [...],
    "escalation_policies": {...}}``.

    Route keys: ``handlers``, ``match`` (a list of matcher strings or one string such as
    ``'service="api", severity=~"high|critical"'``), ``group_by``, ``group_wait``,
    ``group_interval``, ``repeat_interval``, ``continue``, ``send_resolved``, ``escalation``
    (a list of ``{after, handlers, raise_severity}``), ``escalation_policy`` (a name from
    ``escalation_policies``), ``mute_time_intervals`` and ``active_time_intervals`` (names from
    ``time_intervals``) and ``routes`` (children).
    """
    intervals = time_intervals_from_config(config.get("time_intervals"))
    named = policies_from_config(config.get("escalation_policies"))
    raw_route = config.get("route", {"handlers": ["log"]})
    for key in ("mute_time_intervals", "active_time_intervals"):
        if isinstance(raw_route, Mapping) and raw_route.get(key):
            raise AlertConfigError(f"route.{key}", "the root route cannot have time intervals")
    route = _route(raw_route, "route", None, "root", _Names(intervals, named))
    rules = config.get("inhibit_rules")
    if rules is None:
        return AlertPolicy(route=route, time_intervals=intervals)
    if not isinstance(rules, list):
        raise AlertConfigError("inhibit_rules", "expected a list")
    inhibit = []
    for i, rule in enumerate(rules):
        path = f"inhibit_rules[{i}]"
        if not isinstance(rule, Mapping):
            raise AlertConfigError(path, "expected a mapping with source, target and equal")
        inhibit.append(
            InhibitRule(
                source=_matchers(rule.get("source", []), f"{path}.source"),
                target=_matchers(rule.get("target", []), f"{path}.target"),
                equal=tuple(str_list(rule.get("equal", []), f"{path}.equal")),
            )
        )
    return AlertPolicy(route=route, inhibit_rules=tuple(inhibit), time_intervals=intervals)


@dataclass(frozen=True)
class _Names:
    """What routes may refer to by name."""

    intervals: Mapping[str, TimeIntervalSet]
    policies: Mapping[str, EscalationPolicy]


def _route(raw: Any, path: str, parent: Route | None, node: str, names: _Names) -> Route:
    if not isinstance(raw, Mapping):
        raise AlertConfigError(path, "expected a mapping")
    unknown = set(raw) - _ROUTE_KEYS
    if unknown:
        raise AlertConfigError(
            path, f"unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_ROUTE_KEYS))}"
        )
    base = parent or Route(handlers=())
    handlers = tuple(str_list(raw["handlers"], f"{path}.handlers")) if "handlers" in raw else None
    if handlers is None:
        if parent is None:
            raise AlertConfigError(f"{path}.handlers", "the root route needs handlers")
        handlers = parent.handlers

    def duration(key: str, default: int) -> int:
        return parse_duration_ms(raw[key], f"{path}.{key}") if key in raw else default

    escalation = base.escalation if parent is not None else ()
    escalation_policy = base.escalation_policy if parent is not None else None
    if "escalation" in raw and "escalation_policy" in raw:
        raise AlertConfigError(path, "set either escalation (steps) or escalation_policy, not both")
    if "escalation" in raw:
        escalation = _escalation(raw["escalation"], f"{path}.escalation")
        escalation_policy = None
    if "escalation_policy" in raw:
        chosen = raw["escalation_policy"]
        if chosen not in names.policies:
            raise AlertConfigError(
                f"{path}.escalation_policy",
                f"no escalation policy named {chosen!r}; defined: {sorted(names.policies)}",
            )
        escalation, escalation_policy = (), names.policies[chosen]

    def interval_names(key: str) -> tuple[str, ...]:
        found = tuple(str_list(raw.get(key, []), f"{path}.{key}"))
        unknown = [n for n in found if n not in names.intervals]
        if unknown:
            raise AlertConfigError(
                f"{path}.{key}",
                f"no time interval named {unknown}; defined: {sorted(names.intervals)}",
            )
        return found

    route = Route(
        handlers=handlers,
        matchers=_matchers(raw.get("match", []), f"{path}.match"),
        group_by=tuple(str_list(raw["group_by"], f"{path}.group_by"))
        if "group_by" in raw
        else base.group_by,
        group_wait_ms=duration("group_wait", base.group_wait_ms),
        group_interval_ms=duration("group_interval", base.group_interval_ms),
        repeat_interval_ms=duration("repeat_interval", base.repeat_interval_ms),
        continue_=bool(raw.get("continue", False)),
        send_resolved=bool(raw.get("send_resolved", base.send_resolved)),
        escalation=escalation,
        escalation_policy=escalation_policy,
        mute_time_intervals=interval_names("mute_time_intervals"),
        active_time_intervals=interval_names("active_time_intervals"),
        path=node,
    )
    if route.group_interval_ms <= 0:
        raise AlertConfigError(f"{path}.group_interval", "must be longer than zero")
    children_raw = raw.get("routes", [])
    if not isinstance(children_raw, list):
        raise AlertConfigError(f"{path}.routes", "expected a list of routes")
    children = tuple(
        _route(child, f"{path}.routes[{i}]", route, f"{node}/{i}", names)
        for i, child in enumerate(children_raw)
    )
    return replace(route, children=children)


def _escalation(raw: Any, path: str) -> tuple[EscalationStep, ...]:
    if not isinstance(raw, list):
        raise AlertConfigError(path, "expected a list of steps with after and handlers")
    steps = []
    for i, step in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(step, Mapping) or "after" not in step or "handlers" not in step:
            raise AlertConfigError(where, "a step needs 'after' (a duration) and 'handlers'")
        steps.append(
            EscalationStep(
                after_ms=parse_duration_ms(step["after"], f"{where}.after"),
                handlers=tuple(str_list(step["handlers"], f"{where}.handlers")),
                raise_severity=bool(step.get("raise_severity", False)),
            )
        )
    return tuple(steps)


def _matchers(raw: Any, path: str) -> tuple[Matcher, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping):  # {"service": "api"} is shorthand for service="api"
        return tuple(Matcher(str(k), MatchOp.EQ, str(v)) for k, v in raw.items())
    out: list[Matcher] = []
    for item in str_list(raw, path):
        try:
            out.extend(parse_matchers(item))
        except RuleSyntaxError as exc:
            raise AlertConfigError(path, str(exc)) from exc
    return tuple(out)


def str_list(raw: Any, path: str) -> Sequence[str]:
    """A list of strings (one string is a list of one); errors name ``path``."""
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise AlertConfigError(path, f"expected a list of strings, got {raw!r}")
    return raw
