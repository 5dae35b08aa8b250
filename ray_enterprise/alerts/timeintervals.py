"""Named recurring time windows that mute a route, or outside which it stays quiet.

Alertmanager's ``time_intervals`` with its field names and meaning, so a config written for one
reads the same here::

    time_intervals:
      - name: offhours
        time_intervals:
          - weekdays: ["saturday", "sunday"]
          - weekdays: ["monday:friday"]
            times: [{start_time: "18:00", end_time: "24:00"}]
            location: Europe/Berlin

An interval holds when *every* field it sets holds (an unset field holds always); a named set
holds when *any* of its intervals does. ``start_time`` is inclusive and ``end_time`` exclusive,
ranges ``a:b`` are inclusive on both ends, negative ``days_of_month`` count from the month's
end (``-1`` is its last day), and ``location`` (an IANA zone, default UTC) is where the wall
clock is read. Routes name them in ``mute_time_intervals`` and ``active_time_intervals``.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ray_enterprise.alerts.errors import AlertConfigError

_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = tuple(calendar.month_name[i].lower() for i in range(1, 13))
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_KEYS = {"times", "weekdays", "days_of_month", "months", "years", "location"}

Range = tuple[int, int]


@dataclass(frozen=True)
class TimeInterval:
    """One Alertmanager ``time_interval`` entry; ``None`` fields hold always."""

    times: tuple[Range, ...] | None = None  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] | None = None  # 0 = Sunday, as Alertmanager counts
    days_of_month: tuple[Range, ...] | None = None  # may be negative: from the month's end
    months: tuple[Range, ...] | None = None  # 1 = January
    years: tuple[Range, ...] | None = None
    location: str = "UTC"

    def contains(self, now_ms: int) -> bool:
        return _holds(self, now_ms // 60_000)

    def _contains_minute(self, minute_utc: int) -> bool:
        local = datetime.fromtimestamp(minute_utc * 60, tz=timezone.utc).astimezone(
            ZoneInfo(self.location)
        )
        minute = local.hour * 60 + local.minute
        if self.times is not None and not any(a <= minute < b for a, b in self.times):
            return False
        weekday = (local.weekday() + 1) % 7  # Python counts from Monday
        if self.weekdays is not None and not _within(self.weekdays, weekday):
            return False
        if self.days_of_month is not None:
            last = calendar.monthrange(local.year, local.month)[1]
            spans = tuple((_day(a, last), _day(b, last)) for a, b in self.days_of_month)
            if not _within(spans, local.day):
                return False
        if self.months is not None and not _within(self.months, local.month):
            return False
        return self.years is None or _within(self.years, local.year)


@dataclass(frozen=True)
class TimeIntervalSet:
    """A named list of intervals: it holds while any of them holds."""

    name: str
    intervals: tuple[TimeInterval, ...]

    def contains(self, now_ms: int) -> bool:
        return any(interval.contains(now_ms) for interval in self.intervals)


@functools.lru_cache(maxsize=1024)
def _holds(interval: TimeInterval, minute_utc: int) -> bool:
    # Nothing finer than a minute matters to an interval, and every group's flush asks again.
    return interval._contains_minute(minute_utc)


def _within(ranges: tuple[Range, ...], value: int) -> bool:
    return any(a <= value <= b for a, b in ranges)


def _day(day: int, last: int) -> int:
    return last + 1 + day if day < 0 else day


def time_intervals_from_config(
    raw: Any, path: str = "time_intervals"
) -> dict[str, TimeIntervalSet]:
    """Parse ``[{name, time_intervals: [...]}, ...]``; errors name the path of the bad field."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise AlertConfigError(path, "expected a list of {name, time_intervals}")
    out: dict[str, TimeIntervalSet] = {}
    for i, named in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(named, Mapping) or not isinstance(named.get("name"), str):
            raise AlertConfigError(where, "expected a mapping with a 'name' and 'time_intervals'")
        name = named["name"]
        if name in out:
            raise AlertConfigError(f"{where}.name", f"{name!r} is defined twice")
        entries = named.get("time_intervals", [])
        if not isinstance(entries, list):
            raise AlertConfigError(f"{where}.time_intervals", "expected a list of intervals")
        intervals = tuple(
            _interval(entry, f"{where}.time_intervals[{j}]") for j, entry in enumerate(entries)
        )
        out[name] = TimeIntervalSet(name, intervals)
    return out


def _interval(raw: Any, path: str) -> TimeInterval:
    if not isinstance(raw, Mapping):
        raise AlertConfigError(path, "expected a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise AlertConfigError(path, f"unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    location = raw.get("location", "UTC")
    try:
        ZoneInfo(str(location))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AlertConfigError(f"{path}.location", f"unknown time zone {location!r}") from exc
    return TimeInterval(
        times=_times(raw["times"], f"{path}.times") if "times" in raw else None,
        weekdays=_ranges(raw, "weekdays", path, _WEEKDAYS, 0, 6, 0),
        days_of_month=_ranges(raw, "days_of_month", path, (), -31, 31, 1),
        months=_ranges(raw, "months", path, _MONTHS, 1, 12, 1),
        years=_ranges(raw, "years", path, (), 1, 9999, 1),
        location=str(location),
    )


def _times(raw: Any, path: str) -> tuple[Range, ...]:
    if not isinstance(raw, list):
        raise AlertConfigError(path, "expected a list of {start_time, end_time}")
    out = []
    for i, span in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(span, Mapping) or set(span) != {"start_time", "end_time"}:
            raise AlertConfigError(where, "expected exactly start_time and end_time ('HH:MM')")
        start = _minute(span["start_time"], f"{where}.start_time")
        end = _minute(span["end_time"], f"{where}.end_time")
        if not start < end:
            raise AlertConfigError(where, "start_time must be before end_time")
        out.append((start, end))
    return tuple(out)


def _minute(raw: Any, path: str) -> int:
    found = _CLOCK.match(str(raw))
    minute = int(found.group(1)) * 60 + int(found.group(2)) if found else -1
    if not 0 <= minute <= 24 * 60:
        raise AlertConfigError(path, f"expected a time 'HH:MM' from 00:00 to 24:00, got {raw!r}")
    return minute


def _ranges(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    names: tuple[str, ...],
    low: int,
    high: int,
    first: int,
) -> tuple[Range, ...] | None:
    """``["monday:friday", "sunday"]`` or ``["1:5", "-1"]`` as inclusive (start, end) pairs."""
    if key not in raw:
        return None
    items = raw[key]
    if not isinstance(items, list):
        raise AlertConfigError(f"{path}.{key}", "expected a list such as ['1:5', '10']")
    out = []
    for i, item in enumerate(items):
        where = f"{path}.{key}[{i}]"
        ends = str(item).lower().split(":")
        if len(ends) > 2:
            raise AlertConfigError(where, f"expected 'value' or 'start:end', got {item!r}")
        values = [_value(end, names, low, high, first, where) for end in ends]
        start, end = values[0], values[-1]
        if (start < 0) == (end < 0) and start > end:
            raise AlertConfigError(where, f"the range {item!r} ends before it starts")
        if start < 0 <= end:
            raise AlertConfigError(where, "a range cannot run from a negative to a positive day")
        out.append((start, end))
    return tuple(out)


def _value(text: str, names: tuple[str, ...], low: int, high: int, first: int, path: str) -> int:
    if text in names:
        return names.index(text) + first
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high or (value == 0 and low < 0):
        allowed = f"{names[0]}..{names[-1]} or " if names else ""
        raise AlertConfigError(path, f"expected {allowed}a number in {low}..{high}, got {text!r}")
    return value
