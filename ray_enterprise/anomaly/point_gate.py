"""Refusal of points a detector must never see, counted by reason.

A metrics pipeline carries whatever producers send: ``NaN`` from a division by zero, ``inf`` from
an overflow, a string from a mis-typed tag, a point delayed past a newer one. Any of them would
poison a running mean forever, so they stop here, are counted (a refusal rate is itself a health
signal), and never raise into the shard's loop.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ray_enterprise.anomaly.series import Series

__all__ = ["Admitted", "PointGate", "Refused"]


@dataclass(frozen=True)
class Admitted:
    """A point that may be scored: its value and timestamp as floats."""

    value: float
    ts: float


@dataclass(frozen=True)
class Refused:
    """A point that was dropped, and why (one of :attr:`PointGate.REASONS`)."""

    series: Series
    reason: str


class PointGate:
    """Admits numeric, finite, time-ordered points per series; counts the rest by reason."""

    REASONS = ("not_a_number", "nan", "infinite", "bad_timestamp", "out_of_order")

    def __init__(self) -> None:
        self.last_ts: dict[Series, float] = {}
        self.refused: Counter[str] = Counter()
        self.admitted = 0

    def check(self, series: Series, value: Any, ts: Any) -> Admitted | Refused:
        reason = self.refusal(series, value, ts)
        if reason is not None:
            return Refused(series, reason)
        return Admitted(float(value), float(ts))

    def refusal(self, series: Series, value: Any, ts: Any) -> str | None:
        """Why the point is refused (and counted), or ``None`` once it is admitted.

        The shard's hot path: plain finite floats in time order, nearly every point, cost two
        type checks and a dict lookup; anything else takes the full checks below.
        """
        if type(value) is float and type(ts) is float and value - value == 0.0 == ts - ts:
            last = self.last_ts.get(series)
            if last is None or ts > last:
                self.last_ts[series] = ts
                self.admitted += 1
                return None
        reason = _value_problem(value) or _time_problem(ts)
        if reason is None and float(ts) <= self.last_ts.get(series, -math.inf):
            # Equal timestamps count as out of order too: a detector learns each instant once.
            reason = "out_of_order"
        if reason is not None:
            self.refused[reason] += 1
            return reason
        self.last_ts[series] = float(ts)
        self.admitted += 1
        return None

    def to_state(self) -> dict[str, Any]:
        return {
            "last_ts": dict(self.last_ts),
            "refused": dict(self.refused),
            "admitted": self.admitted,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PointGate:
        gate = cls()
        gate.last_ts = dict(state["last_ts"])
        gate.refused = Counter(state["refused"])
        gate.admitted = int(state["admitted"])
        return gate


def _value_problem(value: Any) -> str | None:
    # bool is an int to Python but never a measurement.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "not_a_number"
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return "infinite"
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "infinite"
    return None


def _time_problem(ts: Any) -> str | None:
    if isinstance(ts, bool) or not isinstance(ts, numbers.Real):
        return "bad_timestamp"
    try:
        return None if math.isfinite(float(ts)) else "bad_timestamp"
    except OverflowError:
        return "bad_timestamp"
