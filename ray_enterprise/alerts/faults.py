"""Faults of the platform itself, as alert inputs: a system actor restarted, a node lost,
metric points refused.

Like the inputs of :mod:`alert_sources`, each is plain data its producer builds without
knowing about alerts and turns itself into :class:`AlertSignal` values. They are facts, not
thresholds: each fires at once (no hold), and resolves when its producer sees the recovery —
or, for refused metrics, when no new refusal arrived for a quiet period (the signal's expiry).
"""

from __future__ import annotations

from dataclasses import dataclass

from ray_enterprise.alerts.model import AlertSignal, Severity

#: How long MetricsRefused stays open after the last new refusal, unless the alert actor's
#: ``metrics_refused_quiet`` setting says otherwise.
DEFAULT_REFUSED_QUIET_MS = 30_000


@dataclass(frozen=True)
class SystemActorInput:
    """A system actor (registry, config, alert manager, observability, collector, anomaly
    shard, rate limiter) came back after a crash: Ray restarted it, or its owner re-created it.

    ``restarted=True`` fires SystemActorRestarted as it comes back; ``restarted=False`` resolves
    it once the actor has restored its state and serves calls, so the alert's history spans
    the recovery.
    """

    service: str
    restarted: bool
    detail: str = ""
    severity: Severity = Severity.MEDIUM

    def to_signals(self) -> tuple[AlertSignal, ...]:
        what = "restarted" if self.restarted else "serving again"
        return (
            AlertSignal(
                labels={"alertname": "SystemActorRestarted", "service": self.service},
                severity=self.severity,
                firing=self.restarted,
                annotations={"summary": f"system actor {self.service} {what}: {self.detail}"},
                source="system",
            ),
        )


@dataclass(frozen=True)
class NodeLostInput:
    """A node that was alive is gone (``lost=True``), or the cluster has as many alive nodes
    again as before the loss (``lost=False``: capacity restored, whichever node brought it).

    A deliberate scale-down fires too: the operator acknowledges or silences it.
    """

    node: str
    lost: bool
    alive: int
    needed: int
    severity: Severity = Severity.HIGH

    def to_signals(self) -> tuple[AlertSignal, ...]:
        if self.lost:
            summary = f"node {self.node} lost: {self.alive} alive, {self.needed} before"
        else:
            summary = f"capacity restored: {self.alive} alive nodes, {self.needed} before the loss"
        return (
            AlertSignal(
                labels={"alertname": "NodeLost", "service": "cluster", "node": self.node},
                severity=self.severity,
                firing=self.lost,
                annotations={"summary": summary},
                source="cluster",
            ),
        )


@dataclass(frozen=True)
class MetricsRefusedInput:
    """The central store counted new refused points of one ``reason`` (invalid_name, nan,
    cardinality, ...) since its last look.

    Nothing ever says refusals are over, so the alert expires ``quiet_ms`` after the last
    report; ``None`` lets the alert actor fill in its ``metrics_refused_quiet`` setting.
    """

    reason: str
    points: int
    metrics: tuple[str, ...] = ()
    message: str = ""
    quiet_ms: int | None = None
    severity: Severity = Severity.MEDIUM

    def to_signals(self) -> tuple[AlertSignal, ...]:
        quiet = DEFAULT_REFUSED_QUIET_MS if self.quiet_ms is None else self.quiet_ms
        return (
            AlertSignal(
                labels={
                    "alertname": "MetricsRefused",
                    "service": "observability",
                    "reason": self.reason,
                },
                severity=self.severity,
                annotations={
                    "summary": f"{self.points} metric points refused ({self.reason}): "
                    f"{self.message}",
                    "metrics": ", ".join(self.metrics),
                },
                source="metrics",
                expires_after_ms=quiet,
            ),
        )


@dataclass(frozen=True)
class ControlPlaneInput:
    """Ray's GCS stopped answering (``reachable=False``) or answers again.

    While it is away, running actors keep serving calls, but nothing can be created, restarted,
    looked up by name or placed: the registry cannot restart a crashed service until it is back.
    Critical, because without GCS fault tolerance (an external Redis) a GCS that does not come
    back is the whole cluster lost.
    """

    reachable: bool
    down_s: float
    detail: str = ""
    severity: Severity = Severity.CRITICAL
    since: float | None = None  # wall-clock seconds the reads began failing (when firing)

    def to_signals(self) -> tuple[AlertSignal, ...]:
        if self.reachable:
            summary = f"Ray's GCS answers again after {self.down_s:.1f} s"
        else:
            summary = f"Ray's GCS has not answered for {self.down_s:.1f} s: {self.detail}"
        return (
            AlertSignal(
                labels={"alertname": "ControlPlaneUnreachable", "service": "ray-gcs"},
                severity=self.severity,
                firing=not self.reachable,
                annotations={"summary": summary},
                source="cluster",
                starts_at=None if self.since is None else int(self.since * 1000),
            ),
        )
