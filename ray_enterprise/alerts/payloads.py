"""Notifications rendered for the systems that receive them: Slack and Alertmanager.

Views over the data (prometheus_client's habit): the model stays one, each output format is a
small function, and handlers only choose one and deliver it. The generic webhook body is
:meth:`Notification.to_dict`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ray_enterprise.alerts.model import Alert, Notification, NotificationKind, Severity


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


_SLACK_COLORS = {
    Severity.CRITICAL: "#d00000",
    Severity.HIGH: "#e85d04",
    Severity.MEDIUM: "#ffba08",
    Severity.LOW: "#3f88c5",
}


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Slack's incoming-webhook shape (``text`` + ``attachments``), also read by Mattermost."""
    firing = sum(a.firing for a in notification.alerts)
    step = notification.escalation_step
    title = (
        f"[{notification.status.value.upper()}{':' + str(firing) if firing else ''}] "
        + (
            "acknowledgement timed out: "
            if notification.kind is NotificationKind.ACK_TIMEOUT
            else f"escalation step {step}: "
            if step
            else ""
        )
        + ", ".join(f"{k}={v}" for k, v in notification.group_labels.items())
    )

    def attachment(alert: Alert) -> dict[str, Any]:
        fields: list[dict[str, Any]] = [
            {"title": "severity", "value": alert.severity.value, "short": True}
        ]
        if alert.acknowledged_by is not None:
            fields.append({"title": "acknowledged by", "value": alert.acknowledged_by})
        return {
            "color": _SLACK_COLORS[alert.severity] if alert.firing else "#2eb886",
            "title": f"{alert.name} ({alert.status.value}) {alert.id}",
            "text": alert.annotations.get("summary", ""),
            "fields": fields,
            "ts": alert.starts_at // 1000,
        }

    return {"text": title, "attachments": [attachment(a) for a in notification.alerts]}


def alertmanager_payload(
    notification: Notification, firing_ttl_ms: int | None = None, generator_url: str = ""
) -> list[dict[str, Any]]:
    """The body of Alertmanager's ``POST /api/v2/alerts``: one postable alert per alert.

    Empty label values are dropped because Alertmanager treats a label with an empty value as
    absent; ``ray_enterprise_id`` lets an Alertmanager user find the alert to ack here.
    """
    out = []
    for alert in notification.alerts:
        item: dict[str, Any] = {
            "labels": {k: v for k, v in alert.match_labels().items() if v},
            "annotations": {**alert.annotations, "ray_enterprise_id": alert.id},
            "startsAt": rfc3339(alert.starts_at),
        }
        if alert.ends_at is not None:
            item["endsAt"] = rfc3339(alert.ends_at)
        elif firing_ttl_ms is not None:
            item["endsAt"] = rfc3339(notification.created_at + firing_ttl_ms)
        if generator_url:
            item["generatorURL"] = generator_url
        out.append(item)
    return out
