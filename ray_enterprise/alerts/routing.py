"""Where alerts go: a routing tree by labels, escalation per route, and inhibition rules.

The tree works like Alertmanager's: the root takes every alert; an alert descends into the first
child whose matchers it satisfies and stops there unless that child says ``continue``; a node
none of whose children match handles the alert itself. Children inherit the timing and grouping
they do not set. Config is a plain mapping (from YAML or the config section) turned into frozen
dataclasses once, with errors that name the path of the bad field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ray_enterprise.alerts.errors import AlertConfigError, RuleSyntaxError
from ray_enterprise.alerts.matchers import (
    Matcher,
    MatchOp,
    matches_all,
    parse_matchers,
)
from ray_enterprise.alerts.model import Alert

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
class EscalationStep:
    """If the alert is still not acknowledged ``after_ms`` past the previous step (or past the
    first notification), tell ``handlers`` and optionally raise the severity one level."""

    after_ms: int
    handlers: tuple[str, ...]
    raise_severity: bool = False


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
    children: tuple[Route, ...] = ()
    path: str = "root"

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

    def handler_names(self) -> set[str]:
        names: set[str] = set()
        for route in self.route.walk():
            names.update(route.handlers)
            for step in route.escalation:
                names.update(step.handlers)
        return names


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
    "routes",
}


def policy_from_config(config: Mapping[str, Any]) -> AlertPolicy:
    """Build the policy from ``{"route": {...}, "inhibit_rules": [...]}``.

    Route keys: ``handlers``, ``match`` (a list of matcher strings or one string such as
    ``'service="api", severity=~"high|critical"'``), ``group_by``, ``group_wait``,
    ``group_interval``, ``repeat_interval``, ``continue``, ``send_resolved``, ``escalation``
    (a list of ``{after, handlers, raise_severity}``) and ``routes`` (children).
    """
    route = _route(config.get("route", {"handlers": ["log"]}), "route", None, "root")
    rules = config.get("inhibit_rules")
    if rules is None:
        return AlertPolicy(route=route)
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
                equal=tuple(_str_list(rule.get("equal", []), f"{path}.equal")),
            )
        )
    return AlertPolicy(route=route, inhibit_rules=tuple(inhibit))


def _route(raw: Any, path: str, parent: Route | None, node: str) -> Route:
    if not isinstance(raw, Mapping):
        raise AlertConfigError(path, "expected a mapping")
    unknown = set(raw) - _ROUTE_KEYS
    if unknown:
        raise AlertConfigError(
            path, f"unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_ROUTE_KEYS))}"
        )
    base = parent or Route(handlers=())
    handlers = tuple(_str_list(raw["handlers"], f"{path}.handlers")) if "handlers" in raw else None
    if handlers is None:
        if parent is None:
            raise AlertConfigError(f"{path}.handlers", "the root route needs handlers")
        handlers = parent.handlers

    def duration(key: str, default: int) -> int:
        return parse_duration_ms(raw[key], f"{path}.{key}") if key in raw else default

    escalation = base.escalation if parent is not None else ()
    if "escalation" in raw:
        escalation = _escalation(raw["escalation"], f"{path}.escalation")
    route = Route(
        handlers=handlers,
        matchers=_matchers(raw.get("match", []), f"{path}.match"),
        group_by=tuple(_str_list(raw["group_by"], f"{path}.group_by"))
        if "group_by" in raw
        else base.group_by,
        group_wait_ms=duration("group_wait", base.group_wait_ms),
        group_interval_ms=duration("group_interval", base.group_interval_ms),
        repeat_interval_ms=duration("repeat_interval", base.repeat_interval_ms),
        continue_=bool(raw.get("continue", False)),
        send_resolved=bool(raw.get("send_resolved", base.send_resolved)),
        escalation=escalation,
        path=node,
    )
    if route.group_interval_ms <= 0:
        raise AlertConfigError(f"{path}.group_interval", "must be longer than zero")
    children_raw = raw.get("routes", [])
    if not isinstance(children_raw, list):
        raise AlertConfigError(f"{path}.routes", "expected a list of routes")
    children = tuple(
        _route(child, f"{path}.routes[{i}]", route, f"{node}/{i}")
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
                handlers=tuple(_str_list(step["handlers"], f"{where}.handlers")),
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
    for item in _str_list(raw, path):
        try:
            out.extend(parse_matchers(item))
        except RuleSyntaxError as exc:
            raise AlertConfigError(path, str(exc)) from exc
    return tuple(out)


def _str_list(raw: Any, path: str) -> Sequence[str]:
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise AlertConfigError(path, f"expected a list of strings, got {raw!r}")
    return raw
