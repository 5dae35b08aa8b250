"""The bake-period gate: does the new version behave at least as well as the old? Pure, no Ray.

During the bake period the registry samples both versions the same way (health checks passed
and failed, calls, errors and call times counted inside each replica, anomaly alerts on the
service, the system health score) and
:func:`evaluate` compares them. The comparison is relative where it can be: a green whose error
rate merely matches a blue that already errs is not rolled back for blue's sins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ray_enterprise import latency


@dataclass(frozen=True)
class CallStats:
    """Calls and errors counted by one replica since it started, ``inflight`` right now, and
    how long the calls took (bucket counts of :mod:`ray_enterprise.latency`)."""

    calls: int = 0
    errors: int = 0
    inflight: int = 0
    latency: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallStats:
        return cls(
            int(data["calls"]),
            int(data["errors"]),
            int(data.get("inflight", 0)),
            tuple(int(n) for n in data.get("latency", ())),
        )

    def __sub__(self, earlier: CallStats) -> CallStats:
        return CallStats(
            self.calls - earlier.calls,
            self.errors - earlier.errors,
            self.inflight,
            _combine(self.latency, earlier.latency, -1),
        )

    @staticmethod
    def total(stats: Iterable[CallStats]) -> CallStats:
        calls = errors = inflight = 0
        buckets: tuple[int, ...] = ()
        for s in stats:
            calls, errors, inflight = calls + s.calls, errors + s.errors, inflight + s.inflight
            buckets = _combine(buckets, s.latency, 1)
        return CallStats(calls, errors, inflight, buckets)

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def p99_ms(self) -> float | None:
        """The 99th percentile call time in ms (to the bucket's upper bound); ``None`` when no
        call was timed."""
        seconds = latency.quantile_s(self.latency, 0.99)
        return None if seconds is None else seconds * 1000.0


def _combine(a: tuple[int, ...], b: tuple[int, ...], sign: int) -> tuple[int, ...]:
    # A replica that did not answer adds no buckets: treat missing ones as zeros.
    if not b:
        return a
    if not a:
        a = (0,) * len(b)
    return tuple(x + sign * y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class GateSample:
    """What one version did during the bake period."""

    health_passed: int = 0
    health_failed: int = 0
    calls: CallStats = field(default_factory=CallStats)
    anomalies: int | None = None  # new anomaly alerts; None when no alert manager runs
    # The lowest system health score seen (green: during the bake; blue: just before it);
    # None when no observability actor runs.
    health_score: float | None = None


@dataclass(frozen=True)
class GateSettings:
    """From the ``deployment`` config section (``rollback`` thresholds)."""

    max_error_rate: float = 0.05
    max_health_failures: int = 0
    max_new_anomalies: int = 0
    min_calls: int = 10  # fewer calls than this say nothing about an error rate or a p99
    max_latency_p99_ms: float = 1000.0
    min_health_score: float = 70.0


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def evaluate(blue: GateSample, green: GateSample, settings: GateSettings) -> GateVerdict:
    """Pass unless green failed a check, erred or slowed past the limit and beyond blue, took
    the system's health score below the minimum it was above before, or raised more anomalies
    than blue did in the same time."""
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
    green_p99, blue_p99 = green.calls.p99_ms, blue.calls.p99_ms
    # Relative like the error rate: a green as slow as a blue that is already slow stays.
    if (
        green.calls.calls >= settings.min_calls
        and green_p99 is not None
        and green_p99 > settings.max_latency_p99_ms
        and (blue_p99 is None or green_p99 > blue_p99)
    ):
        blue_text = f"{blue_p99:.0f} ms" if blue_p99 is not None else "not measured"
        reasons.append(
            f"latency: green p99 {green_p99:.0f} ms over {green.calls.calls} calls, blue "
            f"{blue_text}; limit {settings.max_latency_p99_ms:.0f} ms"
        )
    if green.health_score is not None and blue.health_score is not None:
        low = settings.min_health_score
        if green.health_score < low <= blue.health_score:
            reasons.append(
                f"health score: fell to {green.health_score:.1f} during the bake period "
                f"(minimum {low:.1f}; it was {blue.health_score:.1f} before)"
            )
    if green.anomalies is not None and blue.anomalies is not None:
        extra = green.anomalies - blue.anomalies
        if extra > settings.max_new_anomalies:
            reasons.append(
                f"anomalies: {green.anomalies} anomaly alerts during the bake period against "
                f"{blue.anomalies} before it (allowed {settings.max_new_anomalies} more)"
            )
    return GateVerdict(not reasons, tuple(reasons))
