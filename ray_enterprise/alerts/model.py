"""The data of the alert manager: signals in, alerts held, notifications and changes out.

Everything here is a frozen dataclass of plain values (str, int, dicts of str) so it pickles
across Ray actor calls, serialises to JSON for handlers and history, and compares by value in
tests. Times are integer milliseconds since the epoch; the manager's clock decides what "now" is.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ray_enterprise.alerts.errors import AlertInputError
from ray_enterprise.redaction import redact


class Severity(str, enum.Enum):
    """How urgently a person must look; ordered so that ``max()`` picks the most urgent."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def raised(self) -> Severity:
        """One level more urgent; critical stays critical."""
        return _SEVERITY_ORDER[min(self.rank + 1, len(_SEVERITY_ORDER) - 1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_SEVERITY_ORDER = (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


class AlertStatus(str, enum.Enum):
    FIRING = "firing"
    RESOLVED = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of an alert: a hash of its labels, so the same problem is one alert.

    Severity is deliberately not a label here: escalation raises it, and a raised alert must
    stay the same alert.
    """
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_id(fp: str, starts_at: int) -> str:
    """Id of one firing episode: the same fingerprint firing again later is a new alert to ack."""
    return hashlib.sha256(f"{fp}:{starts_at}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AlertSignal:
    """One observation from a source: this problem is (or is no longer) happening.

    ``labels`` must include ``alertname``; ``service`` is the label inhibition and trends use.
    ``expires_after_ms`` is for point events (an anomaly, a security event) that never send a
    resolve: the alert resolves by itself when no new signal arrives within that time.
    """

    labels: dict[str, str]
    severity: Severity
    firing: bool = True
    annotations: dict[str, str] = field(default_factory=dict)
    source: str = "manual"
    expires_after_ms: int | None = None
    #: When the source first saw the problem (ms), for a signal delivered late: a collector
    #: that saw a lost head tells it once an alert actor runs again, dated when it began.
    starts_at: int | None = None

    def __post_init__(self) -> None:
        # Every summary and label reaches history, handlers and webhooks: redact them here,
        # once, whatever source built the signal (a health detail may hold a DSN).
        object.__setattr__(self, "labels", redact(self.labels))
        object.__setattr__(self, "annotations", redact(self.annotations))
        if "alertname" not in self.labels:
            raise AlertInputError(
                f"an alert signal needs an 'alertname' label, got {self.labels}; "
                "name the problem, e.g. alertname='HighLatency'"
            )


@dataclass(frozen=True)
class Alert:
    """One firing episode of a problem, as the manager holds it and history stores it."""

    id: str
    fingerprint: str
    labels: dict[str, str]
    severity: Severity
    annotations: dict[str, str]
    source: str
    status: AlertStatus
    starts_at: int
    updated_at: int
    ends_at: int | None = None
    expires_at: int | None = None
    occurrences: int = 1
    acknowledged_by: str | None = None
    ack_reason: str | None = None
    acknowledged_at: int | None = None
    notified_at: int | None = None
    escalation_step: int = 0
    escalation_due_at: int | None = None
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def service(self) -> str | None:
        return self.labels.get("service")

    @property
    def firing(self) -> bool:
        return self.status is AlertStatus.FIRING

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)

    def match_labels(self) -> dict[str, str]:
        """Labels that routes, silences and inhibition match on: identity plus severity."""
        return {**self.labels, "severity": self.severity.value}

    def to_dict(self) -> dict[str, Any]:
        # A flat copy, not asdict(): history serialises every change, and asdict deep-copies.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["labels"] = dict(self.labels)
        data["annotations"] = dict(self.annotations)
        data["severity"] = self.severity.value
        data["status"] = self.status.value
        data["silenced_by"] = list(self.silenced_by)
        data["inhibited_by"] = list(self.inhibited_by)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        values = dict(data)
        values["severity"] = Severity(values["severity"])
        values["status"] = AlertStatus(values["status"])
        values["silenced_by"] = tuple(values.get("silenced_by", ()))
        values["inhibited_by"] = tuple(values.get("inhibited_by", ()))
        return cls(**values)


class NotificationKind(str, enum.Enum):
    GROUP = "group"  # a route's group flushed: new, changed, repeated or resolved alerts
    ESCALATION = "escalation"  # an alert was not acknowledged in time; the next step is told
    ACK_TIMEOUT = "ack_timeout"  # acknowledged too long without a resolve: told again


@dataclass(frozen=True)
class Notification:
    """What to tell which handlers; handlers render it, the dispatcher delivers it."""

    kind: NotificationKind
    handlers: tuple[str, ...]
    route: str
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    created_at: int
    escalation_step: int | None = None

    @property
    def status(self) -> AlertStatus:
        """Firing while any alert in it fires; a notice that only resolves is resolved."""
        if any(a.firing for a in self.alerts):
            return AlertStatus.FIRING
        return AlertStatus.RESOLVED

    @property
    def common_labels(self) -> dict[str, str]:
        if not self.alerts:
            return {}
        first = self.alerts[0].match_labels()
        rest = [a.match_labels() for a in self.alerts[1:]]
        return {k: v for k, v in first.items() if all(r.get(k) == v for r in rest)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "status": self.status.value,
            "handlers": list(self.handlers),
            "route": self.route,
            "groupKey": self.group_key,
            "groupLabels": dict(self.group_labels),
            "commonLabels": self.common_labels,
            "escalationStep": self.escalation_step,
            "createdAt": self.created_at,
            "alerts": [a.to_dict() for a in self.alerts],
        }


class ChangeKind(str, enum.Enum):
    FIRED = "fired"
    SEVERITY_CHANGED = "severity_changed"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    ESCALATED = "escalated"
    SILENCED = "silenced"
    INHIBITED = "inhibited"
    UNSUPPRESSED = "unsuppressed"
    NOTIFIED = "notified"


@dataclass(frozen=True)
class AlertChange:
    """One state change of one alert, with the alert as it is after the change.

    History stores these; replaying the latest snapshot per alert id rebuilds the manager.
    """

    kind: ChangeKind
    at: int
    alert: Alert
    actor: str | None = None
    reason: str | None = None
