"""Metric handles: a series admitted once, then only its values cross the hot path.

``counter("hits").inc()`` skips the per-call key lookup of ``record_metric``, the way a
prometheus-client child from ``labels(...)`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol


class _Appender(Protocol):
    def append(self, sid: int, value: float) -> bool: ...


class Counter:
    """A counter series admitted once; ``inc()`` is the cheapest way to count."""

    __slots__ = ("_rec", "_sid")

    def __init__(self, recorder: _Appender, sid: int) -> None:
        self._rec = recorder
        self._sid = sid

    def inc(self, amount: float = 1.0) -> bool:
        if amount < 0:
            raise ValueError("a counter only goes up; use a gauge for levels")
        return self._rec.append(self._sid, float(amount))


class Gauge:
    """A gauge series; ``inc``/``dec`` move a level kept in this process."""

    __slots__ = ("_level", "_rec", "_sid")

    def __init__(self, recorder: _Appender, sid: int) -> None:
        self._rec = recorder
        self._sid = sid
        self._level = 0.0

    def set(self, value: float) -> bool:
        self._level = float(value)
        return self._rec.append(self._sid, value)

    def inc(self, amount: float = 1.0) -> bool:
        return self.set(self._level + amount)

    def dec(self, amount: float = 1.0) -> bool:
        return self.set(self._level - amount)


class Histogram:
    """A histogram series; every observed value reaches the central percentiles."""

    __slots__ = ("_rec", "_sid")

    def __init__(self, recorder: _Appender, sid: int) -> None:
        self._rec = recorder
        self._sid = sid

    def observe(self, value: float) -> bool:
        return self._rec.append(self._sid, value)


class Timer:
    """Records durations in milliseconds: ``with timer:`` or ``timer.observe_ms(x)``."""

    __slots__ = ("_began", "_clock", "_rec", "_sid")

    def __init__(self, recorder: _Appender, sid: int, clock: Callable[[], float]) -> None:
        self._rec = recorder
        self._sid = sid
        self._clock = clock
        self._began = 0.0

    def observe_ms(self, ms: float) -> bool:
        return self._rec.append(self._sid, ms)

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        began = self._clock()
        try:
            yield
        finally:
            self._rec.append(self._sid, (self._clock() - began) * 1000.0)

    def __enter__(self) -> Timer:
        self._began = self._clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._rec.append(self._sid, (self._clock() - self._began) * 1000.0)
