"""PagerDuty-style escalation policies on a fake clock: levels with delays, num_loops, and the
acknowledgement timeout that hands an acknowledged alert back."""

from __future__ import annotations

from typing import Any

import pytest

from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import (
    AlertSignal,
    ChangeKind,
    Notification,
    NotificationKind,
    Severity,
)
from ray_enterprise.alerts.payloads import slack_payload
from ray_enterprise.alerts.routing import policy_from_config
from tests.support import FakeClock

S = 1000
M = 60 * S
T0 = 1_800_000_000_000
POLICIES = {
    "payments": {
        "levels": [
            {"handlers": ["oncall"], "delay": "5m"},
            {"handlers": ["lead"], "delay": "10m", "raise_severity": True},
        ],
        "num_loops": 1,
        "ack_timeout": "30m",
    }
}


def manager(clock: FakeClock[int], **route: Any) -> AlertManager:
    config = {
        "route": {"handlers": ["log"], "group_wait": 0, "escalation_policy": "payments", **route},
        "escalation_policies": POLICIES,
    }
    return AlertManager(policy_from_config(config), clock=clock)


def pages(notifications: list[Notification]) -> list[tuple[str, tuple[str, ...], int | None]]:
    return [
        (n.kind.value, n.handlers, n.escalation_step)
        for n in notifications
        if n.kind is not NotificationKind.GROUP
    ]


def down() -> AlertSignal:
    return AlertSignal({"alertname": "Down", "service": "pay"}, Severity.MEDIUM)


def test_levels_are_paged_in_turn_and_loop_num_loops_times_then_stop() -> None:
    clock = FakeClock(T0)
    am = manager(clock)
    am.ingest(down())
    first = am.tick(T0)
    assert [n.kind for n in first] == [NotificationKind.GROUP, NotificationKind.ESCALATION]
    assert pages(first) == [("escalation", ("oncall",), 0)]  # level 1 with the first notice
    assert pages(am.tick(T0 + 5 * M - 1)) == []
    assert pages(am.tick(T0 + 5 * M)) == [("escalation", ("lead",), 1)]
    assert am.alerts()[0].severity is Severity.HIGH
    assert pages(am.tick(T0 + 15 * M)) == [("escalation", ("oncall",), 2)]  # loop 1
    assert pages(am.tick(T0 + 20 * M)) == [("escalation", ("lead",), 3)]
    assert am.alerts()[0].escalation_due_at is None  # 2 levels x (1 + 1 loop): done
    assert pages(am.tick(T0 + 300 * M)) == []
    assert am.alerts()[0].severity is Severity.CRITICAL


def test_an_acknowledgement_that_times_out_hands_the_alert_back_and_pages_again() -> None:
    clock = FakeClock(T0)
    am = manager(clock)
    [alert] = am.ingest(down())
    am.tick(T0)
    clock.now = T0 + 2 * M
    am.acknowledge(alert.id, by="ana", reason="looking")
    assert pages(am.tick(T0 + 31 * M)) == []  # acknowledged: no escalation
    assert am.next_due() == T0 + 32 * M
    [again] = am.tick(T0 + 32 * M)
    assert (again.kind, again.handlers, again.escalation_step) == (
        NotificationKind.ACK_TIMEOUT,
        ("oncall",),
        0,
    )
    back = am.get(alert.id)
    assert back.acknowledged_by is None and back.escalation_due_at == T0 + 37 * M
    handed = [c for c in am.take_changes() if c.kind is ChangeKind.UNACKNOWLEDGED]
    assert [(c.actor, c.at) for c in handed] == [("ack_timeout", T0 + 32 * M)]
    assert "ana" in (handed[0].reason or "")
    assert pages(am.tick(T0 + 37 * M)) == [("escalation", ("lead",), 1)]
    assert slack_payload(again)["text"].startswith("[FIRING:1] acknowledgement timed out: ")


def test_a_resolved_alert_is_not_handed_back() -> None:
    clock = FakeClock(T0)
    am = manager(clock)
    [alert] = am.ingest(down())
    am.tick(T0)
    am.acknowledge(alert.id, by="ana")
    clock.now = T0 + 10 * M
    am.ingest(AlertSignal(down().labels, Severity.MEDIUM, firing=False))
    assert pages(am.tick(T0 + 60 * M)) == [] and am.next_due() is None


def test_a_list_of_steps_is_a_policy_whose_first_level_tells_nobody() -> None:
    clock = FakeClock(T0)
    config = {
        "route": {
            "handlers": ["log"],
            "group_wait": 0,
            "escalation": [{"after": "1m", "handlers": ["boss"]}],
        }
    }
    am = AlertManager(policy_from_config(config), clock=clock)
    am.ingest(down())
    assert pages(am.tick(T0)) == []
    assert pages(am.tick(T0 + M)) == [("escalation", ("boss",), 1)]
    assert am.alerts()[0].escalation_due_at is None


def test_children_inherit_the_policy_and_name_its_handlers() -> None:
    policy = policy_from_config(
        {
            "route": {"handlers": ["log"], "escalation_policy": "payments", "routes": [{}]},
            "escalation_policies": POLICIES,
        }
    )
    inherited = policy.route.children[0].escalation_for()
    assert inherited is not None and inherited.name == "payments" and inherited.steps == 4
    assert policy.handler_names() == {"log", "oncall", "lead"}


@pytest.mark.parametrize(
    ("policies", "route", "path"),
    [
        (POLICIES, {"escalation_policy": "nope"}, "route.escalation_policy"),
        (
            POLICIES,
            {"escalation_policy": "payments", "escalation": [{"after": "1m", "handlers": ["x"]}]},
            "route",
        ),
        ({"p": {"levels": []}}, {}, "escalation_policies.p.levels"),
        ({"p": {"levels": [{"handlers": ["x"]}]}}, {}, "escalation_policies.p.levels[0]"),
        (
            {"p": {"levels": [{"handlers": ["x"], "delay": "1m"}], "num_loops": 10}},
            {},
            "escalation_policies.p.num_loops",
        ),
        (
            {"p": {"levels": [{"handlers": ["x"], "delay": "1m"}], "ack_timeout": 0}},
            {},
            "escalation_policies.p.ack_timeout",
        ),
        (
            {"p": {"levels": [{"handlers": ["x"], "delay": 0}, {"handlers": ["y"], "delay": 0}]}},
            {},
            "escalation_policies.p.levels[0].delay",
        ),
    ],
)
def test_policy_errors_name_the_bad_field(
    policies: dict[str, Any], route: dict[str, Any], path: str
) -> None:
    with pytest.raises(AlertConfigError) as info:
        policy_from_config(
            {"route": {"handlers": ["log"], **route}, "escalation_policies": policies}
        )
    assert info.value.path == path


def test_alert_settings_carry_policies_and_intervals_and_check_their_handlers() -> None:
    from ray_enterprise.alerts.settings import AlertSettings

    raw = {
        "route": {
            "handlers": ["log"],
            "routes": [{"escalation_policy": "payments", "mute_time_intervals": ["night"]}],
        },
        "escalation_policies": POLICIES,
        "time_intervals": [{"name": "night", "time_intervals": [{"weekdays": ["sunday"]}]}],
        "handlers": {name: {"type": "log"} for name in ("log", "oncall", "lead")},
    }
    settings = AlertSettings.parse(raw)
    child = settings.policy().route.children[0]
    assert child.mute_time_intervals == ("night",) and child.escalation_for() is not None
    with pytest.raises(AlertConfigError, match=r"\['lead', 'oncall'\] that are not configured"):
        AlertSettings.parse({**raw, "handlers": {"log": {"type": "log"}}})
