"""Routing config, its errors, matchers and the pieces of the alert data model."""

from __future__ import annotations

import pickle

import pytest

from ray_enterprise.alerts.errors import (
    AlertConfigError,
    AlertInputError,
    RuleSyntaxError,
)
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.matchers import parse_matchers
from ray_enterprise.alerts.model import (
    Alert,
    AlertSignal,
    Severity,
    fingerprint,
)
from ray_enterprise.alerts.routing import parse_duration_ms, policy_from_config


def test_children_inherit_timing_and_escalation_they_do_not_set() -> None:
    policy = policy_from_config(
        {
            "route": {
                "handlers": ["log"],
                "group_wait": "10s",
                "repeat_interval": "1h",
                "escalation": [{"after": "5m", "handlers": ["boss"]}],
                "routes": [{"match": 'service="db"', "group_wait": 0, "routes": [{}]}],
            }
        }
    )
    child = policy.route.children[0]
    assert (child.group_wait_ms, child.repeat_interval_ms, child.handlers) == (
        0,
        3_600_000,
        ("log",),
    )
    assert child.escalation[0].after_ms == 300_000 and child.path == "root/0"
    assert child.children[0].group_wait_ms == 0 and child.children[0].path == "root/0/0"
    assert policy.handler_names() == {"log", "boss"}


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"route": {}}, "route.handlers"),
        ({"route": {"handlers": ["x"], "wait": "1s"}}, "route"),
        ({"route": {"handlers": ["x"], "group_wait": "soon"}}, "route.group_wait"),
        ({"route": {"handlers": ["x"], "routes": [{"match": "a~b"}]}}, "route.routes[0].match"),
        ({"route": {"handlers": ["x"], "escalation": [{"after": "1m"}]}}, "route.escalation[0]"),
        ({"route": {"handlers": "x"}, "inhibit_rules": {}}, "inhibit_rules"),
    ],
)
def test_config_errors_name_the_path_of_the_bad_field(config: dict[str, object], path: str) -> None:
    with pytest.raises(AlertConfigError) as info:
        policy_from_config(config)
    assert info.value.path == path
    assert str(info.value).startswith(f"alert config {path}:")


def test_custom_inhibition_rules_replace_the_default() -> None:
    policy = policy_from_config(
        {
            "route": {"handlers": ["log"], "group_wait": 0},
            "inhibit_rules": [
                {"source": ['alertname="NodeDown"'], "target": ["severity=~.+"], "equal": ["node"]}
            ],
        }
    )
    am = AlertManager(policy, clock=lambda: 0)
    sig = AlertSignal
    am.ingest(sig({"alertname": "NodeDown", "node": "n1"}, Severity.HIGH))
    am.ingest(sig({"alertname": "Slow", "node": "n1", "service": "a"}, Severity.CRITICAL))
    am.ingest(sig({"alertname": "Down", "service": "a"}, Severity.LOW))
    sent = sorted(n.alerts[0].name for n in am.tick())
    assert sent == ["Down", "NodeDown"]


def test_durations_accept_units_and_bare_seconds() -> None:
    assert [parse_duration_ms(v) for v in ("250ms", "30s", "5m", "1h", "1d", 2, 0.5)] == [
        250,
        30_000,
        300_000,
        3_600_000,
        86_400_000,
        2000,
        500,
    ]
    with pytest.raises(AlertConfigError):
        parse_duration_ms(-1)


def test_matchers_parse_with_or_without_braces_and_bare_words() -> None:
    assert parse_matchers('{service="api", env!~"dev|test"}') == parse_matchers(
        'service=api,env!~"dev|test"'
    )
    with pytest.raises(RuleSyntaxError):
        parse_matchers("")
    with pytest.raises(RuleSyntaxError):
        parse_matchers('{a="b"} trailing')


def test_fingerprint_ignores_label_order_and_severity_orders_by_urgency() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
    assert max(Severity.LOW, Severity.CRITICAL, Severity.MEDIUM) is Severity.CRITICAL
    assert Severity.HIGH.raised() is Severity.CRITICAL and Severity.CRITICAL.raised().rank == 3


def test_alerts_survive_pickling_and_a_dict_round_trip() -> None:
    am = AlertManager(clock=lambda: 5)
    am.silence('service=~"a.*"', 1000, "ana")
    [alert] = am.ingest(AlertSignal({"alertname": "X", "service": "api"}, Severity.HIGH))
    am.tick()
    alert = am.get(alert.id)
    assert Alert.from_dict(alert.to_dict()) == alert
    assert pickle.loads(pickle.dumps(alert)) == alert
    assert pickle.loads(pickle.dumps(am.silences()[0])) == am.silences()[0]
    with pytest.raises(AlertInputError, match="alertname"):
        AlertSignal({"service": "api"}, Severity.HIGH)
