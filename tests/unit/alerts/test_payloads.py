"""Payload renderers and handler config: pure functions, no network."""

from __future__ import annotations

import doctest

import pytest

from ray_enterprise.alerts import manager as alerts_module
from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.handlers import (
    AlertmanagerHandler,
    LogHandler,
    WebhookHandler,
    handlers_from_config,
)
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import AlertSignal, Notification, Severity
from ray_enterprise.alerts.payloads import (
    alertmanager_payload,
    rfc3339,
    slack_payload,
)
from ray_enterprise.alerts.routing import policy_from_config

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_module_example_runs() -> None:
    assert doctest.testmod(alerts_module).failed == 0


def resolved_and_firing() -> Notification:
    now = [T0]
    am = AlertManager(
        policy_from_config(
            {"route": {"handlers": ["x"], "group_wait": 0, "group_by": ["service"]}}
        ),
        clock=lambda: now[0],
    )
    am.ingest(AlertSignal({"alertname": "A", "service": "api"}, Severity.MEDIUM))
    am.ingest(AlertSignal({"alertname": "B", "service": "api", "zone": ""}, Severity.HIGH))
    am.tick()
    now[0] += 60_000
    am.ingest(AlertSignal({"alertname": "A", "service": "api"}, Severity.LOW, firing=False))
    [notification] = am.tick(T0 + 10 * 60_000)
    return notification


def test_alertmanager_payload_sends_resolved_end_times_and_drops_empty_labels() -> None:
    sent = resolved_and_firing()
    body = {item["labels"]["alertname"]: item for item in alertmanager_payload(sent, 3_600_000)}
    assert body["A"]["endsAt"] == "2026-01-01T00:01:00Z"
    assert body["B"]["endsAt"] == rfc3339(sent.created_at + 3_600_000)
    assert body["B"]["labels"] == {"alertname": "B", "service": "api", "severity": "high"}
    assert body["A"]["startsAt"] == "2026-01-01T00:00:00Z"


def test_slack_payload_counts_firing_and_colours_resolved_green() -> None:
    body = slack_payload(resolved_and_firing())
    assert body["text"] == "[FIRING:1] service=api"
    colours = {a["title"].split()[0]: a["color"] for a in body["attachments"]}
    assert colours == {"B": "#e85d04", "A": "#2eb886"}


def test_handlers_from_config_builds_each_kind() -> None:
    handlers = handlers_from_config(
        {
            "log": {"type": "log"},
            "ops": {"type": "webhook", "url": "http://h/x", "slack": True, "timeout": "2s"},
            "am": {"type": "alertmanager", "url": "http://am:9093", "firing_ttl": "1h"},
        }
    )
    log, ops, am = handlers
    assert isinstance(log, LogHandler) and isinstance(ops, WebhookHandler) and ops.slack
    assert isinstance(am, AlertmanagerHandler) and am.url == "http://am:9093/api/v2/alerts"


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"x": {"type": "pager"}}, "handlers.x.type"),
        ({"x": {"type": "webhook", "url": "ftp://x"}}, "handlers.x.url"),
        ({"x": {"type": "webhook", "url": "http://x", "timeout": "soon"}}, "handlers.x.timeout"),
        ({"x": {"type": "webhook", "url": "http://x", "attempts": 0}}, "handlers.x.attempts"),
        ({"x": {"type": "log", "url": "http://x"}}, "handlers.x"),
    ],
)
def test_handler_config_errors_name_the_field(
    config: dict[str, dict[str, object]], path: str
) -> None:
    with pytest.raises(AlertConfigError) as info:
        handlers_from_config(config)
    assert info.value.path == path
