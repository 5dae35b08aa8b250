"""Alertmanager's time intervals: which wall-clock moments a named interval holds, and config
errors that name the bad field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pytest

from ray_enterprise.alerts.errors import AlertConfigError
from ray_enterprise.alerts.timeintervals import time_intervals_from_config


def ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO time in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def holds(interval: Mapping[str, Any], at: str) -> bool:
    named = time_intervals_from_config([{"name": "x", "time_intervals": [interval]}])
    return named["x"].contains(ms(at))


def test_times_include_the_start_and_exclude_the_end_up_to_midnight() -> None:
    evening = {"times": [{"start_time": "18:00", "end_time": "24:00"}]}
    assert holds(evening, "2026-12-03T18:00:00")
    assert holds(evening, "2026-12-03T23:59:59")
    assert not holds(evening, "2026-12-03T17:59:59")
    assert not holds(evening, "2026-12-04T00:00:00")


def test_weekday_ranges_count_from_sunday_and_every_set_field_must_hold() -> None:
    office = {
        "weekdays": ["monday:friday"],
        "times": [{"start_time": "09:00", "end_time": "17:00"}],
    }
    assert holds(office, "2026-12-03T10:00:00")  # a Thursday
    assert not holds(office, "2026-12-03T17:00:00")
    assert not holds(office, "2026-12-05T10:00:00")  # Saturday
    assert holds({"weekdays": ["sunday"]}, "2026-12-06T03:00:00")


def test_negative_days_count_from_the_end_of_each_month() -> None:
    last_two = {"days_of_month": ["-2:-1"]}
    assert holds(last_two, "2026-02-27T12:00:00") and holds(last_two, "2026-02-28T12:00:00")
    assert not holds(last_two, "2026-02-26T12:00:00")
    assert holds(last_two, "2026-12-30T12:00:00") and not holds(last_two, "2026-12-29T12:00:00")
    assert holds({"days_of_month": ["1:-1"]}, "2026-12-17T00:00:00")


def test_months_years_and_a_location_read_the_local_wall_clock() -> None:
    assert holds({"months": ["december", "1:2"]}, "2026-01-15T00:00:00")
    assert not holds({"months": ["march:november"]}, "2026-12-15T00:00:00")
    assert holds({"years": ["2025:2026"]}, "2026-06-01T00:00:00")
    assert not holds({"years": ["2027"]}, "2026-06-01T00:00:00")
    # 23:30 UTC on a Friday is already 00:30 on Saturday in Berlin (UTC+1 in winter).
    weekend_berlin = {"weekdays": ["saturday", "sunday"], "location": "Europe/Berlin"}
    assert holds(weekend_berlin, "2026-12-04T23:30:00")
    assert not holds({**weekend_berlin, "location": "UTC"}, "2026-12-04T23:30:00")


def test_a_named_set_holds_when_any_of_its_intervals_does() -> None:
    [named] = time_intervals_from_config(
        [
            {
                "name": "offhours",
                "time_intervals": [
                    {"weekdays": ["saturday", "sunday"]},
                    {"times": [{"start_time": "00:00", "end_time": "08:00"}]},
                ],
            }
        ]
    ).values()
    assert named.contains(ms("2026-12-05T12:00:00")) and named.contains(ms("2026-12-03T07:59:00"))
    assert not named.contains(ms("2026-12-03T08:00:00"))


@pytest.mark.parametrize(
    ("interval", "path"),
    [
        ({"weekdays": ["funday"]}, "time_intervals[0].time_intervals[0].weekdays[0]"),
        ({"weekdays": ["friday:monday"]}, "time_intervals[0].time_intervals[0].weekdays[0]"),
        ({"days_of_month": ["0"]}, "time_intervals[0].time_intervals[0].days_of_month[0]"),
        ({"days_of_month": ["-3:2"]}, "time_intervals[0].time_intervals[0].days_of_month[0]"),
        (
            {"times": [{"start_time": "25:00", "end_time": "26:00"}]},
            "time_intervals[0].time_intervals[0].times[0].start_time",
        ),
        (
            {"times": [{"start_time": "10:00", "end_time": "09:00"}]},
            "time_intervals[0].time_intervals[0].times[0]",
        ),
        ({"location": "Mars/Olympus"}, "time_intervals[0].time_intervals[0].location"),
        ({"hours": ["1"]}, "time_intervals[0].time_intervals[0]"),
    ],
)
def test_config_errors_name_the_bad_field(interval: dict[str, object], path: str) -> None:
    with pytest.raises(AlertConfigError) as info:
        time_intervals_from_config([{"name": "x", "time_intervals": [interval]}])
    assert info.value.path == path


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(AlertConfigError, match="'x' is defined twice"):
        time_intervals_from_config([{"name": "x"}, {"name": "x"}])
