"""The alert actor's settings are checked by the pure core at the edge, before any actor runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import ray
import yaml
from pydantic import SecretStr, ValidationError

from ray_enterprise.alerts.client import report_health_transition
from ray_enterprise.alerts.errors import AlertConfigError, RuleSyntaxError
from ray_enterprise.alerts.handlers import CallableHandler, LogHandler, WebhookHandler
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.settings import (
    AlertSettings,
    settings_from_alerting_config,
)
from ray_enterprise.alerts.views import alert_view, to_input
from ray_enterprise.config.schema import AlertingConfig


def test_laptop_defaults_route_everything_to_the_log_handler() -> None:
    settings = AlertSettings()
    assert settings.policy().route.handlers == ("log",)
    assert [type(h) for h in settings.handler_objects()] == [LogHandler]
    assert settings.metric_rules() == []
    assert settings.ms("retention") == 30 * 86_400_000


def test_a_route_naming_an_unconfigured_handler_is_refused_with_its_name() -> None:
    with pytest.raises(ValidationError, match=r"handlers \['pager'\] that are not configured"):
        AlertSettings(
            route={"handlers": ["log"], "escalation": [{"after": "5m", "handlers": ["pager"]}]}
        )


def test_parse_raises_the_alert_error_that_names_the_field() -> None:
    with pytest.raises(RuleSyntaxError, match="rule 'Slow'"):
        AlertSettings.parse({"rules": [{"name": "Slow", "expr": "p95(latency) >"}]})
    with pytest.raises(AlertConfigError, match="alert config max_sleep: must be longer"):
        AlertSettings.parse({"max_sleep": 0})
    with pytest.raises(AlertConfigError, match="alert config colour"):
        AlertSettings.parse({"colour": "red"})


def test_a_bad_rule_or_duration_is_refused_at_the_edge() -> None:
    with pytest.raises(ValidationError, match="rule 'Slow'"):
        AlertSettings(rules=[{"name": "Slow", "expr": "p95(latency) >"}])
    with pytest.raises(ValidationError, match="rule_interval"):
        AlertSettings(rule_interval="soon")
    with pytest.raises(ValidationError, match="repeated"):
        AlertSettings(rules=[{"name": "A", "expr": "max(x) > 1"}] * 2)


def test_callable_handlers_import_a_target_or_leave_a_slot_for_run_time() -> None:
    settings = AlertSettings(
        route={"handlers": ["fn", "slot"]},
        handlers={
            "fn": {"type": "callable", "target": "json:dumps"},
            "slot": {"type": "callable"},
        },
    )
    [handler] = settings.handler_objects()
    assert isinstance(handler, CallableHandler) and handler.name == "fn"
    with pytest.raises(ValidationError, match="cannot import 'json:nope'"):
        AlertSettings(
            handlers={"log": {"type": "log"}, "x": {"type": "callable", "target": "json:nope"}}
        )


def test_the_alerting_section_of_the_main_config_maps_to_a_webhook_with_escalation() -> None:
    section = AlertingConfig(
        webhook_url=SecretStr("https://hooks.example/x"), escalation_after_seconds=60
    )
    settings = settings_from_alerting_config(section)
    handlers = {h.name: h for h in settings.handler_objects()}
    assert isinstance(handlers["webhook"], WebhookHandler)
    assert handlers["webhook"].url == "https://hooks.example/x"
    [step] = settings.policy().route.escalation
    assert step.after_ms == 60_000 and step.handlers == ("webhook",)
    assert settings_from_alerting_config(AlertingConfig()).policy().route.handlers == ("log",)


def test_dict_inputs_become_signals_and_alerts_have_a_one_word_state() -> None:
    am = AlertManager()
    [alert] = am.ingest(
        to_input({"labels": {"alertname": "Down", "service": "db"}, "severity": "critical"})
    )
    assert alert_view(alert)["state"] == "firing"
    assert alert_view(am.acknowledge(alert.id, "ana"))["state"] == "acknowledged"
    with pytest.raises(ValueError, match="give labels"):
        to_input({"severity": "high"})


def test_reporting_health_refuses_bad_input_without_raising() -> None:
    assert report_health_transition("db", "failed", "urgent-ish", "gone") is False
    if not ray.is_initialized():  # the whole suite may run this after integration tests
        assert report_health_transition("db", "failed", "critical", "gone") is False


def test_the_alerting_section_builds_receivers_routes_and_a_secret_header() -> None:
    section = AlertingConfig.model_validate(
        {
            "group_wait_seconds": 0,
            "webhook_url": "https://hooks.example/page",
            "webhook_headers": {"Authorization": "Bearer s3cret"},
            "receivers": {"am": {"type": "alertmanager", "url": "http://127.0.0.1:9093"}},
            "routes": [{"match": ['service="db"'], "receivers": ["am"]}],
        }
    )
    settings = settings_from_alerting_config(section)
    assert settings.follow_config is True
    assert settings.handlers["webhook"]["headers"] == {"Authorization": "Bearer s3cret"}
    route = settings.policy().route
    assert (route.handlers, route.group_wait_ms) == (("log", "webhook"), 0)
    [child] = route.children
    assert child.handlers == ("am",)
    assert [r.handlers for r in route.match({"alertname": "X", "service": "db"})] == [("am",)]


def test_alerting_disabled_routes_every_alert_to_nobody() -> None:
    section = AlertingConfig.model_validate(
        {
            "enabled": False,
            "webhook_url": "https://hooks.example/page",
            "routes": [{"match": ['service="db"'], "receivers": ["webhook"]}],
        }
    )
    route = settings_from_alerting_config(section).policy().route
    assert (route.handlers, route.children, route.escalation) == ((), (), ())


def test_a_route_naming_an_unknown_receiver_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError, match=r"receivers \['pager'\] that are not configured"):
        AlertingConfig.model_validate({"routes": [{"receivers": ["pager"]}]})


def test_an_explicit_route_or_handlers_opt_out_of_following_the_config() -> None:
    assert AlertSettings().follow_config is True
    assert AlertSettings.parse({"route": {"handlers": ["log"]}}).follow_config is False
    assert AlertSettings.parse({"handlers": {"log": {"type": "log"}}}).follow_config is False


def test_the_readme_alert_settings_example_is_valid_settings() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme[readme.index("### Semantics at parity with their anchors") :]
    raw = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", section, flags=re.S)[0])
    settings = AlertSettings.parse(raw)
    [rule] = settings.metric_rules()
    assert (rule.hold_ms, rule.keep_firing_for_ms) == (60_000, 300_000)
    payments, quiet = settings.policy().route.children
    escalation = payments.escalation_for()
    assert escalation is not None and escalation.steps == 4
    assert escalation.ack_timeout_ms == 30 * 60_000
    assert quiet.mute_time_intervals == ("offhours",)
