"""The JSON shape of the alert actor's edge: alerts and changes out, inputs in.

Views over the model and its history (prometheus_client's habit): the CLI, the HTTP API and the
status page read these plain dicts, so the dataclasses inside can change without breaking them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

from ray_enterprise.alerts.errors import AlertInputError
from ray_enterprise.alerts.history import AlertHistory
from ray_enterprise.alerts.model import (
    Alert,
    AlertChange,
    AlertSignal,
    ChangeKind,
    Severity,
)
from ray_enterprise.alerts.sources import AlertInput

DAY_MS = 86_400_000
STATES = ("firing", "acknowledged", "resolved")


def alert_view(alert: Alert) -> dict[str, Any]:
    """An alert as JSON for the CLI and the API, with the one-word state people filter on."""
    data = alert.to_dict()
    if not alert.firing:
        data["state"] = "resolved"
    else:
        data["state"] = "acknowledged" if alert.acknowledged else "firing"
    data["suppressed"] = alert.suppressed
    return data


def change_view(change: AlertChange) -> dict[str, Any]:
    alert = change.alert
    return {
        "kind": change.kind.value,
        "at": change.at,
        "alert_id": alert.id,
        "alertname": alert.name,
        "service": alert.service,
        "labels": dict(alert.labels),
        "severity": alert.severity.value,
        "actor": change.actor,
        "reason": change.reason,
    }


def to_input(item: Any) -> AlertInput | AlertSignal:
    """Inputs arrive as the sources' dataclasses, or as plain dicts from HTTP and the CLI."""
    if isinstance(item, Mapping):
        try:
            return AlertSignal(
                labels={str(k): str(v) for k, v in dict(item["labels"]).items()},
                severity=Severity(item.get("severity", "high")),
                firing=bool(item.get("firing", True)),
                annotations={str(k): str(v) for k, v in dict(item.get("annotations", {})).items()},
                source=str(item.get("source", "api")),
                expires_after_ms=item.get("expires_after_ms"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise AlertInputError(
                f"cannot read alert input {item!r}: {exc}; give labels (with alertname) "
                "and a severity of critical, high, medium or low"
            ) from exc
    if isinstance(item, AlertSignal) or hasattr(item, "to_signals"):
        return item
    raise AlertInputError(f"not an alert input: {type(item).__name__}; use a source dataclass")


def select_views(
    views: list[dict[str, Any]], state: str | None, service: str | None, severity: str | None
) -> list[dict[str, Any]]:
    """The views in ``state`` (one of :data:`STATES`), of ``service``, at ``severity``."""
    if state is not None and state not in STATES:
        raise AlertInputError(f"unknown state {state!r}: use firing, acknowledged or resolved")
    return [
        v
        for v in views
        if (state is None or v["state"] == state)
        and (service is None or v["labels"].get("service") == service)
        and (severity is None or v["severity"] == severity)
    ]


def resolved_views(history: AlertHistory, now_ms: int, days: float) -> list[dict[str, Any]]:
    """Alerts that resolved in the last ``days``, newest first."""
    changes = history.events(since_ms=now_ms - int(days * DAY_MS), limit=100_000)
    return [alert_view(c.alert) for c in reversed(changes) if c.kind is ChangeKind.RESOLVED]


def trend_view(
    history: AlertHistory, now_ms: int, days: float, service: str | None
) -> dict[str, Any]:
    """Alerts per day, service and severity, and the mean times to acknowledge and resolve."""
    since = now_ms - int(days * DAY_MS)
    return {
        "days": days,
        "by_day": [
            asdict(r)
            for r in history.counts_by_day(since)
            if service is None or r.service == service
        ],
        "mean_time_to_acknowledge_ms": history.mean_time_to_acknowledge(
            service=service, since_ms=since
        ),
        "mean_time_to_resolve_ms": history.mean_time_to_resolve(service=service, since_ms=since),
    }


def firing_by_severity(alerts: Iterable[Alert]) -> dict[str, list[str]]:
    """Firing alerts (acknowledged ones too: the problem is still there) by severity, each
    named ``Name{service="x"}`` so a health reason can say which."""
    out: dict[str, list[str]] = {}
    for alert in alerts:
        if alert.firing:
            name = alert.name + (f'{{service="{alert.service}"}}' if alert.service else "")
            out.setdefault(alert.severity.value, []).append(name)
    return {severity: sorted(names) for severity, names in out.items()}


MASK = "**********"


def redacted_settings(settings: Any) -> dict[str, Any]:
    """Settings as JSON for callers, with header values masked; a policy built from the config
    section masks its receivers' URLs too, since the schema holds them as secrets."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    for handler in data.get("handlers", {}).values():
        if "headers" in handler:
            handler["headers"] = {k: MASK for k in handler["headers"]}
        if settings.follow_config and "url" in handler:
            handler["url"] = MASK
    return data
