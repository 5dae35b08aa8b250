"""The bake-period gate: does the new version behave at least as well as the old? Pure, no Ray.

During the bake period the registry samples both versions the same way (health checks passed
and failed, calls and errors counted inside each replica, anomaly alerts on the service) and
:func:`evaluate` compares them. The comparison is relative where it can be: a green whose error
rate merely matches a blue that already errs is not rolled back for blue's sins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallStats:
    """Calls and errors counted by one replica since it started; ``inflight`` right now."""

    calls: int = 0
    errors: int = 0
    inflight: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallStats:
        return cls(int(data["calls"]), int(data["errors"]), int(data.get("inflight", 0)))

    def __sub__(self, earlier: CallStats) -> CallStats:
        return CallStats(self.calls - earlier.calls, self.errors - earlier.errors, self.inflight)

    @staticmethod
    def total(stats: Iterable[CallStats]) -> CallStats:
        calls = errors = inflight = 0
        for s in stats:
            calls, errors, inflight = calls + s.calls, errors + s.errors, inflight + s.inflight
        return CallStats(calls, errors, inflight)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class GateSample:
    """What one version did during the bake period."""

    health_passed: int = 0
    health_failed: int = 0
    calls: CallStats = field(default_factory=CallStats)
    anomalies: int | None = None  # new anomaly alerts; None when no alert manager runs


@dataclass(frozen=True)
class GateSettings:
    """From the ``deployment`` config section (``rollback`` thresholds)."""

    max_error_rate: float = 0.05
    max_health_failures: int = 0
    max_new_anomalies: int = 0
    min_calls: int = 10  # fewer calls than this say nothing about an error rate


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def evaluate(blue: GateSample, green: GateSample, settings: GateSettings) -> GateVerdict:
    """Pass unless green failed a check, erred past the limit and above blue, or raised more
    anomalies than blue did in the same time."""
    reasons: list[str] = []
    if green.health_failed > settings.max_health_failures:
        reasons.append(
            f"health: green failed {green.health_failed} checks during the bake period "
            f"(allowed {settings.max_health_failures}; blue failed {blue.health_failed})"
        )
    if green.calls.calls >= settings.min_calls:
        rate, blue_rate = green.calls.error_rate, blue.calls.error_rate
        if rate > settings.max_error_rate and rate > blue_rate:
            reasons.append(
                f"error rate: green {rate:.1%} of {green.calls.calls} calls, blue "
                f"{blue_rate:.1%} of {blue.calls.calls}; limit {settings.max_error_rate:.1%}"
            )
    if green.anomalies is not None and blue.anomalies is not None:
        extra = green.anomalies - blue.anomalies
        if extra > settings.max_new_anomalies:
            reasons.append(
                f"anomalies: {green.anomalies} anomaly alerts during the bake period against "
                f"{blue.anomalies} before it (allowed {settings.max_new_anomalies} more)"
            )
    return GateVerdict(not reasons, tuple(reasons))
