"""The other parts of the system, as alert inputs.

Each input is plain data its producer can build without knowing about alerts, and each turns
itself into :class:`AlertSignal` values with ``to_signals()`` — the one vocabulary the manager
reads (``MetricRuleResult`` in :mod:`alert_rules` speaks it too). Inputs that describe a point
in time (an anomaly, a security event, a rejected config) expire on their own, because nothing
will ever tell the manager that they are over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ray_enterprise.alerts.model import AlertSignal, Severity

FIVE_MINUTES_MS = 5 * 60_000


class AlertInput(Protocol):
    def to_signals(self) -> tuple[AlertSignal, ...]: ...


class AnomalyEventLike(Protocol):
    """What :class:`AnomalyInput` reads from the detectors' event type."""

    @property
    def series(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def score(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def detector(self) -> str: ...


@dataclass(frozen=True)
class AnomalyInput:
    """An anomaly detector flagged a point of a series."""

    service: str
    series: str
    value: float
    score: float
    confidence: float
    severity: Severity = Severity.MEDIUM
    labels: dict[str, str] = field(default_factory=dict)
    expires_after_ms: int = FIVE_MINUTES_MS

    @classmethod
    def from_event(
        cls, event: AnomalyEventLike, service: str, severity: Severity = Severity.MEDIUM
    ) -> AnomalyInput:
        """Wrap a detector's event; the shard knows which service owns the series."""
        return cls(
            service=service,
            series=event.series,
            value=event.value,
            score=event.score,
            confidence=event.confidence,
            severity=severity,
            labels={"detector": event.detector},
        )

    def to_signals(self) -> tuple[AlertSignal, ...]:
        return (
            AlertSignal(
                labels={
                    **self.labels,
                    "alertname": "AnomalyDetected",
                    "service": self.service,
                    "series": self.series,
                },
                severity=self.severity,
                annotations={
                    "summary": f"anomalous {self.series} on {self.service}: {self.value:g}",
                    "score": f"{self.score:.3f}",
                    "confidence": f"{self.confidence:.3f}",
                },
                source="anomaly",
                expires_after_ms=self.expires_after_ms,
            ),
        )


_HEALTH_ALERTS = {"FAILED": "ServiceFailed", "DEGRADED": "ServiceDegraded"}
#: The steps of a restart: ServiceRestarting stays as it is until the service is up again
#: (HEALTHY, DEGRADED), given up on (FAILED) or stopped; any of those resolves it.
_RESTART_STEPS = frozenset({"RESTARTING", "STARTING", "UNHEALTHY"})


@dataclass(frozen=True)
class HealthInput:
    """A service changed state. FAILED and DEGRADED fire; any other state resolves both.

    RESTARTING (the service died, or failed its checks past the threshold, and is being started
    again) fires ServiceRestarting, which the end of the restart resolves: the service up
    again, given up on or stopped. FAILED takes the service's criticality as severity;
    DEGRADED and RESTARTING are one level lower, since the service still answers or soon will.
    """

    service: str
    state: str
    criticality: Severity = Severity.HIGH
    reason: str = ""

    def to_signals(self) -> tuple[AlertSignal, ...]:
        state = self.state.upper()
        lowered = {
            Severity.CRITICAL: Severity.HIGH,
            Severity.HIGH: Severity.MEDIUM,
            Severity.MEDIUM: Severity.LOW,
            Severity.LOW: Severity.LOW,
        }
        summary = {"summary": f"service {self.service} is {state}: {self.reason}"}
        out = []
        for health, name in _HEALTH_ALERTS.items():
            severity = self.criticality if health == "FAILED" else lowered[self.criticality]
            out.append(
                AlertSignal(
                    labels={"alertname": name, "service": self.service},
                    severity=severity,
                    firing=state == health,
                    annotations=summary,
                    source="health",
                )
            )
        if state == "RESTARTING" or state not in _RESTART_STEPS:
            out.append(
                AlertSignal(
                    labels={"alertname": "ServiceRestarting", "service": self.service},
                    severity=lowered[self.criticality],
                    firing=state == "RESTARTING",
                    annotations=summary,
                    source="health",
                )
            )
        return tuple(out)


@dataclass(frozen=True)
class ConfigRejectedInput:
    """A configuration change failed validation; the last good version stays applied.

    ``applied=True`` is the next good version: it resolves the alert.
    """

    version: int | None
    reason: str
    source: str = "config"
    applied: bool = False
    severity: Severity = Severity.HIGH
    expires_after_ms: int = 60 * 60_000

    def to_signals(self) -> tuple[AlertSignal, ...]:
        return (
            AlertSignal(
                labels={"alertname": "ConfigRejected", "service": "config"},
                severity=self.severity,
                firing=not self.applied,
                annotations={
                    "summary": f"configuration from {self.source} rejected: {self.reason}",
                    "version": "" if self.version is None else str(self.version),
                },
                source="config",
                expires_after_ms=self.expires_after_ms,
            ),
        )


@dataclass(frozen=True)
class ConfigSourceInput:
    """A configuration source (file, database, Vault) is failing or has recovered."""

    source: str
    failing: bool
    reason: str = ""
    severity: Severity = Severity.MEDIUM

    def to_signals(self) -> tuple[AlertSignal, ...]:
        return (
            AlertSignal(
                labels={
                    "alertname": "ConfigSourceFailing",
                    "service": "config",
                    "config_source": self.source,
                },
                severity=self.severity,
                firing=self.failing,
                annotations={"summary": f"config source {self.source} failing: {self.reason}"},
                source="config",
            ),
        )


@dataclass(frozen=True)
class SecurityInput:
    """A security event: refused keys, rate-limit storms, audit-chain breaks."""

    event: str
    detail: str
    service: str = "security"
    severity: Severity = Severity.HIGH
    labels: dict[str, str] = field(default_factory=dict)
    expires_after_ms: int = 15 * 60_000

    def to_signals(self) -> tuple[AlertSignal, ...]:
        return (
            AlertSignal(
                labels={
                    **self.labels,
                    "alertname": "SecurityEvent",
                    "service": self.service,
                    "event": self.event,
                },
                severity=self.severity,
                annotations={"summary": f"security event {self.event}: {self.detail}"},
                source="security",
                expires_after_ms=self.expires_after_ms,
            ),
        )


@dataclass(frozen=True)
class RollbackInput:
    """An upgrade that failed its gate and was rolled back: someone should look at the new
    version before trying again. Expires on its own: nothing resolves a past event."""

    service: str
    reason: str
    deployment_id: str
    severity: Severity = Severity.HIGH
    expires_after_ms: int = 60 * 60_000

    def to_signals(self) -> tuple[AlertSignal, ...]:
        return (
            AlertSignal(
                labels={
                    "alertname": "DeploymentRolledBack",
                    "service": self.service,
                    "deployment": self.deployment_id,
                },
                severity=self.severity,
                annotations={"summary": f"upgrade of {self.service} rolled back: {self.reason}"},
                source="deployment",
                expires_after_ms=self.expires_after_ms,
            ),
        )
