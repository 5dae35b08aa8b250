"""Escalation: who is told next when nobody acknowledges an alert, and when.

PagerDuty's escalation policy: ordered *levels*, each a set of handlers and a *delay* (how long
that level has to acknowledge before the next level is told); after the last level the policy
starts again from the first, ``num_loops`` more times, then stops. An acknowledgement stops it;
with ``ack_timeout`` an alert still acknowledged but not resolved that long later is handed back
(PagerDuty's acknowledgement timeout): it is unacknowledged, its current level is told again and
escalation goes on from there. Level 1 is told when the alert is first notified::

    escalation_policies:
      payments:
        levels:
          - {handlers: [oncall], delay: 5m}
          - {handlers: [lead], delay: 10m, raise_severity: true}
        num_loops: 1
        ack_timeout: 30m

The older per-route ``escalation: [{after, handlers}]`` list is the same machine with a first
level that tells nobody (the route's own notification is level 1's page):
:meth:`EscalationPolicy.from_steps` turns one into the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.model import Alert

MAX_LOOPS = 9  # PagerDuty's own limit: a policy that loops forever pages forever


@dataclass(frozen=True)
class EscalationStep:
    """If the alert is still not acknowledged ``after_ms`` past the previous step (or past the
    first notification), tell ``handlers`` and optionally raise the severity one level."""

    after_ms: int
    handlers: tuple[str, ...]
    raise_severity: bool = False


@dataclass(frozen=True)
class EscalationLevel:
    handlers: tuple[str, ...]
    delay_ms: int  # time this level has to acknowledge before the next one is told
    raise_severity: bool = False


@dataclass(frozen=True)
class EscalationPolicy:
    """Levels walked in order ``num_loops + 1`` times; step ``k`` is level ``k % len(levels)``."""

    levels: tuple[EscalationLevel, ...]
    num_loops: int = 0
    ack_timeout_ms: int | None = None
    name: str = ""

    @property
    def steps(self) -> int:
        """How many levels an unacknowledged alert reaches in all, the first included."""
        return len(self.levels) * (self.num_loops + 1)

    def level(self, step: int) -> EscalationLevel:
        return self.levels[step % len(self.levels)]

    def due_after(self, step: int, at: int) -> int | None:
        """When step ``step + 1`` is due if step ``step`` was reached ``at``; None past the end."""
        return at + self.level(step).delay_ms if step + 1 < self.steps else None

    def handler_names(self) -> set[str]:
        return {name for level in self.levels for name in level.handlers}

    @classmethod
    def from_steps(cls, steps: Sequence[EscalationStep]) -> EscalationPolicy:
        delays = [s.after_ms for s in steps] + [0]
        first = EscalationLevel((), delays[0])
        rest = tuple(
            EscalationLevel(s.handlers, delays[i + 1], s.raise_severity)
            for i, s in enumerate(steps)
        )
        return cls(levels=(first, *rest))


def escalate(alert: Alert, policy: EscalationPolicy, now: int) -> Alert | None:
    """The alert one level further at ``now``, or None when nothing is due for it."""
    due = alert.escalation_due_at
    if due is None or due > now or alert.acknowledged or alert.suppressed:
        return None
    following = alert.escalation_step + 1
    if following >= policy.steps:
        return None
    level = policy.level(following)
    return replace(
        alert,
        severity=alert.severity.raised() if level.raise_severity else alert.severity,
        escalation_step=following,
        escalation_due_at=policy.due_after(following, now),
        updated_at=now,
    )


def hand_back(alert: Alert, policy: EscalationPolicy, now: int) -> Alert | None:
    """The alert unacknowledged when its acknowledgement timed out at ``now``, else None.

    Escalation goes on from its current level, timed from now, once someone was ever told.
    """
    if alert.acknowledged_at is None or policy.ack_timeout_ms is None:
        return None
    if alert.acknowledged_at + policy.ack_timeout_ms > now:
        return None
    told = alert.notified_at is not None
    return replace(
        alert,
        acknowledged_by=None,
        ack_reason=None,
        acknowledged_at=None,
        escalation_due_at=policy.due_after(alert.escalation_step, now) if told else None,
        updated_at=now,
    )


def policies_from_config(
    raw: Any, path: str = "escalation_policies"
) -> dict[str, EscalationPolicy]:
    """Parse ``{name: {levels: [{handlers, delay, raise_severity}], num_loops, ack_timeout}}``."""
    # routing builds on this module; its parsing helpers are borrowed at call time
    from ray_enterprise.alerts.routing import parse_duration_ms, str_list

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise AlertConfigError(path, "expected a mapping of policy name -> {levels, ...}")
    out = {}
    for name, policy in raw.items():
        where = f"{path}.{name}"
        if not isinstance(policy, Mapping):
            raise AlertConfigError(where, "expected a mapping with levels")
        unknown = set(policy) - {"levels", "num_loops", "ack_timeout"}
        if unknown:
            raise AlertConfigError(where, f"unknown keys {sorted(unknown)}")
        levels_raw = policy.get("levels")
        if not isinstance(levels_raw, list) or not levels_raw:
            raise AlertConfigError(f"{where}.levels", "expected a non-empty list of levels")
        levels = []
        for i, level in enumerate(levels_raw):
            at = f"{where}.levels[{i}]"
            if not isinstance(level, Mapping) or "handlers" not in level or "delay" not in level:
                raise AlertConfigError(at, "a level needs 'handlers' and 'delay' (a duration)")
            delay = parse_duration_ms(level["delay"], f"{at}.delay")
            if delay <= 0 and (i + 1 < len(levels_raw) or policy.get("num_loops", 0)):
                raise AlertConfigError(f"{at}.delay", "must be longer than zero")
            handlers = tuple(str_list(level["handlers"], f"{at}.handlers"))
            levels.append(EscalationLevel(handlers, delay, bool(level.get("raise_severity"))))
        loops = policy.get("num_loops", 0)
        if not isinstance(loops, int) or isinstance(loops, bool) or not 0 <= loops <= MAX_LOOPS:
            raise AlertConfigError(f"{where}.num_loops", f"expected 0..{MAX_LOOPS}, got {loops!r}")
        timeout = None
        if policy.get("ack_timeout") is not None:
            timeout = parse_duration_ms(policy["ack_timeout"], f"{where}.ack_timeout")
            if timeout <= 0:
                raise AlertConfigError(f"{where}.ack_timeout", "must be longer than zero")
        out[str(name)] = EscalationPolicy(tuple(levels), loops, timeout, str(name))
    return out
