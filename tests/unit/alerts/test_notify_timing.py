"""Alertmanager's notification timing per route on a fake clock: group_wait, group_interval,
repeat_interval, its dedup rule (only news is sent), and mute/active time intervals."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import AlertSignal, Notification, Severity
from ray_enterprise.alerts.routing import policy_from_config
from tests.support import FakeClock

S = 1000
M = 60 * S
H = 60 * M
# Thursday 2026-12-03 08:00 UTC: office hours start in an hour.
MORNING = int(datetime(2026, 12, 3, 8, tzinfo=timezone.utc).timestamp() * 1000)
OFFICE = [
    {
        "name": "office",
        "time_intervals": [
            {"weekdays": ["monday:friday"], "times": [{"start_time": "09:00", "end_time": "17:00"}]}
        ],
    }
]


def sig(name: str, firing: bool = True, severity: Severity = Severity.HIGH) -> AlertSignal:
    return AlertSignal({"alertname": name, "service": "api"}, severity, firing=firing)


def manager(clock: FakeClock[int], config: dict[str, Any]) -> AlertManager:
    return AlertManager(policy_from_config(config), clock=clock)


def fired(notifications: list[Notification]) -> list[list[str]]:
    return [[f"{a.name}:{a.status.value}" for a in n.alerts] for n in notifications]


def test_group_wait_then_group_interval_then_repeat_interval_from_the_last_send() -> None:
    clock = FakeClock(MORNING)
    route = {"handlers": ["log"], "group_by": ["service"], "group_wait": "30s"}
    am = manager(clock, {"route": {**route, "group_interval": "5m", "repeat_interval": "1h"}})
    am.ingest(sig("A"))
    clock.advance(10 * S)
    am.ingest(sig("B"))  # joins the waiting group: one message for the burst
    assert am.tick(MORNING + 30 * S - 1) == []
    assert fired(am.tick(MORNING + 30 * S)) == [["A:firing", "B:firing"]]
    clock.now = MORNING + 1 * M
    am.ingest(sig("C"))  # news, but only at the group's next turn
    assert am.tick(MORNING + 5 * M) == []
    assert fired(am.tick(MORNING + 30 * S + 5 * M)) == [["A:firing", "B:firing", "C:firing"]]
    # Nothing new: silent at every turn until an hour after the last send, then repeated
    # at the first turn past it (repeat_interval is checked on group_interval's beat).
    last = MORNING + 30 * S + 5 * M
    turns = [am.tick(last + k * 5 * M) for k in range(1, 12)]
    assert all(t == [] for t in turns)
    assert len(am.tick(last + 12 * 5 * M)) == 1


def test_an_alert_that_only_drops_out_is_no_news_and_its_return_is_none_either() -> None:
    clock = FakeClock(MORNING)
    route = {"handlers": ["log"], "group_by": ["service"], "group_wait": 0}
    am = manager(clock, {"route": route, "inhibit_rules": []})
    am.ingest(sig("A"))
    am.ingest(sig("B"))
    assert len(am.tick()) == 1
    silence = am.silence('alertname="B"', H, "ana")
    assert am.tick(clock.advance(5 * M)) == []  # B left the firing set: nothing to say
    am.expire_silence(silence.id)
    assert am.tick(clock.advance(5 * M)) == []  # B is back, and they were told of it
    am.ingest(sig("B", severity=Severity.CRITICAL))  # a higher severity is news
    assert fired(am.tick(clock.advance(5 * M))) == [["B:firing", "A:firing"]]


def test_a_new_episode_is_news_even_when_the_last_one_resolved_without_a_notice() -> None:
    clock = FakeClock(MORNING)
    route = {"handlers": ["log"], "group_by": ["service"], "group_wait": 0, "send_resolved": False}
    am = manager(clock, {"route": route})
    am.ingest(sig("A"))
    am.ingest(sig("B"))
    am.tick()
    am.ingest(sig("B", firing=False))
    assert am.tick(clock.advance(5 * M)) == []
    am.ingest(sig("B"))
    assert fired(am.tick(clock.advance(5 * M))) == [["A:firing", "B:firing"]]


def test_a_muted_route_stays_quiet_in_its_interval_and_speaks_at_the_first_turn_after() -> None:
    clock = FakeClock(MORNING - 16 * H)  # Wednesday 16:00
    route = {
        "handlers": ["log"],
        "group_by": ["service"],
        "group_wait": 0,
        "group_interval": "1m",
        "routes": [{"match": 'service="api"', "mute_time_intervals": ["night"]}],
    }
    night = [
        {
            "name": "night",
            "time_intervals": [
                {
                    "times": [
                        {"start_time": "17:00", "end_time": "24:00"},
                        {"start_time": "00:00", "end_time": "08:00"},
                    ]
                }
            ],
        }
    ]
    am = manager(clock, {"route": route, "time_intervals": night})
    am.ingest(sig("Before"))
    assert fired(am.tick()) == [["Before:firing"]]
    clock.now = MORNING - 15 * H + 1  # 17:00: muted
    am.ingest(sig("During"))
    quiet = [am.tick(clock.now + k * M) for k in range(0, 15 * 60 - 1, 7)]
    assert all(t == [] for t in quiet)
    [during] = [a for a in am.alerts() if a.name == "During"]
    assert during.notified_at is None  # nobody told: no escalation clock either
    clock.now = MORNING
    assert fired(am.tick()) == [["Before:firing", "During:firing"]]


def test_an_active_interval_lets_a_route_speak_only_inside_it() -> None:
    clock = FakeClock(MORNING)
    route = {
        "handlers": ["log"],
        "group_wait": 0,
        "group_interval": "10m",
        "routes": [{"match": 'service="api"', "active_time_intervals": ["office"]}],
    }
    am = manager(clock, {"route": route, "time_intervals": OFFICE})
    am.ingest(sig("A"))
    assert [am.tick(MORNING + k * 10 * M) for k in range(6)] == [[]] * 6
    assert fired(am.tick(MORNING + 60 * M)) == [["A:firing"]]


def test_where_mute_and_active_both_hold_the_mute_wins() -> None:
    clock = FakeClock(MORNING + 2 * H)
    child = {"match": 'service="api"', "active_time_intervals": ["office"]}
    am = manager(
        clock,
        {
            "route": {
                "handlers": ["log"],
                "group_wait": 0,
                "routes": [{**child, "mute_time_intervals": ["office"]}],
            },
            "time_intervals": OFFICE,
        },
    )
    am.ingest(sig("A"))
    assert am.tick() == []


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ({"handlers": ["log"], "mute_time_intervals": ["office"]}, "route.mute_time_intervals"),
        (
            {"handlers": ["log"], "routes": [{"active_time_intervals": ["lunch"]}]},
            "route.routes[0].active_time_intervals",
        ),
    ],
)
def test_time_interval_errors_name_the_route(route: dict[str, Any], path: str) -> None:
    with pytest.raises(AlertConfigError) as info:
        policy_from_config({"route": route, "time_intervals": OFFICE})
    assert info.value.path == path


def test_intervals_belong_to_the_route_that_names_them_not_its_children() -> None:
    policy = policy_from_config(
        {
            "route": {
                "handlers": ["log"],
                "routes": [{"mute_time_intervals": ["office"], "routes": [{"group_wait": "1s"}]}],
            },
            "time_intervals": OFFICE,
        }
    )
    child = policy.route.children[0]
    assert child.mute_time_intervals == ("office",)
    assert child.children[0].mute_time_intervals == ()
