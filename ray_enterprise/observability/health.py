"""The system health score: one number 0-100 and the reasons it is not 100.

Three inputs, each optional so the score works before the alert and anomaly actors exist:
the registry's system status (its score already weighs each service by criticality), the
firing alerts by severity, and the share of recent points flagged anomalous. Services set the
base; alerts and anomalies subtract capped penalties, so one noisy low-severity alert cannot
make a healthy system look down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Points one firing alert costs, by severity, and the most alerts of a severity may cost.
ALERT_PENALTY: Mapping[str, tuple[float, float]] = {
    "critical": (25.0, 60.0),
    "high": (10.0, 30.0),
    "medium": (4.0, 12.0),
    "low": (1.0, 4.0),
}
#: An anomaly rate of 1.0 (every recent point anomalous) costs this many points.
ANOMALY_PENALTY = 40.0
#: Rates below this are the detectors' normal false-positive noise and cost nothing.
ANOMALY_NOISE_FLOOR = 0.01
#: A reason names at most this many alerts of one severity; the rest are counted.
_NAMED = 3


@dataclass(frozen=True)
class HealthReport:
    """The score, its verdict, the reasons and each component's contribution."""

    score: float
    status: str  # healthy | degraded | critical
    reasons: tuple[str, ...]
    components: dict[str, float] = field(default_factory=dict)
    timestamp: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


def health_score(
    system_status: Mapping[str, Any] | None,
    firing_alerts: Mapping[str, int | Sequence[str]] | None = None,
    anomaly_rate: float | None = None,
    *,
    timestamp: float = 0.0,
) -> HealthReport:
    """Combine the inputs; ``None`` means that input is not available (it costs nothing).

    ``firing_alerts`` maps a severity to a count, or to the firing alerts' names (what the
    alert actor reports), which the reason then lists so an operator sees which alert it is.
    """
    reasons: list[str] = []
    components: dict[str, float] = {}
    services = list((system_status or {}).get("services", []))
    if system_status is None:
        base = 100.0
        reasons.append("service states unknown: no registry answered")
    elif not services:
        base = 100.0
    else:
        base = float(system_status.get("score", 0.0))
        reasons.extend(str(r) for r in system_status.get("reasons", []))
    components["services"] = base
    penalty = 0.0
    for severity, firing in sorted((firing_alerts or {}).items()):
        names = [] if isinstance(firing, int) else [str(n) for n in firing]
        count = firing if isinstance(firing, int) else len(names)
        if count <= 0:
            continue
        each, cap = ALERT_PENALTY.get(severity.lower(), ALERT_PENALTY["low"])
        cost = min(each * count, cap)
        penalty += cost
        components[f"alerts_{severity.lower()}"] = -cost
        reason = f"{count} {severity.lower()} alert{'s' if count != 1 else ''} firing"
        if names:
            shown = ", ".join(names[:_NAMED])
            reason += f": {shown}" + (f" and {len(names) - _NAMED} more" if count > _NAMED else "")
        reasons.append(reason)
    if anomaly_rate is not None and anomaly_rate > ANOMALY_NOISE_FLOOR:
        cost = ANOMALY_PENALTY * min(anomaly_rate, 1.0)
        penalty += cost
        components["anomalies"] = -cost
        reasons.append(f"{anomaly_rate:.1%} of recent points anomalous")
    score = round(max(0.0, min(100.0, base - penalty)), 1)
    verdict = str((system_status or {}).get("status", "healthy")) if services else "healthy"
    if verdict == "down" or score < 50.0:
        status = "critical"
    elif score < 90.0 or verdict == "degraded" or reasons:
        status = "degraded"
    else:
        status = "healthy"
    if system_status is None and status == "degraded" and score >= 90.0:
        status = "healthy"  # not knowing the services is a caveat, not a fault
    return HealthReport(score, status, tuple(reasons), components, timestamp)
