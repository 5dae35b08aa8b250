"""The per-process metrics buffer: validate once per key, append, aggregate, ship.

The cost of a recorded point must stay near a prometheus-client ``inc()``, so the hot path is a
dict lookup of an already-validated series key, a cheap finite check and a deque append. Names,
tags and cardinality are checked once per distinct key. A daemon thread (it works the same in a
driver, a task, a threaded or an async actor) aggregates the buffer every ``flush_interval_s``
and hands the batch to a sink; a process that dies loses at most the points of one interval.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ray_enterprise.observability.metric_batch import (
    Labels,
    MetricBatch,
    MetricType,
    SeriesPoints,
)
from ray_enterprise.observability.metric_handles import Counter, Gauge, Histogram, Timer
from ray_enterprise.observability.metric_names import (
    DEFAULT_CARDINALITY_LIMIT,
    SERVICE_LABEL,
    CardinalityGuard,
    MetricNameError,
    Refusal,
    RefusalReason,
    check_name,
    check_tags,
    check_value,
)

logger = logging.getLogger("ray_enterprise.metrics")

Sink = Callable[[MetricBatch], bool]
_SeriesKey = tuple[str, Any, "str | None", tuple[tuple[str, Any], ...]]
_MAX_CACHED_REFUSALS = 10_000


@dataclass(frozen=True)
class RecorderStats:
    """What a process's recorder holds and has lost, for tests and the status page."""

    buffered: int
    pending_batches: int
    dropped: int
    refused: dict[tuple[str, str], int]


class Recorder:
    """The per-process metrics buffer and its flush loop.

    ``sink`` receives each aggregated batch and returns whether it took it; batches it did not
    take are retried on the next flush, at most ``max_pending`` of them, then dropped and
    counted. ``clock`` stamps batches (seconds since the epoch). With ``autostart`` the flush
    thread starts at the first recorded point; without it, call :meth:`start` or :meth:`flush`.
    """

    def __init__(
        self,
        *,
        sink: Sink | None = None,
        capacity: int = 100_000,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
        flush_interval_s: float = 1.0,
        max_pending: int = 30,
        clock: Callable[[], float] = time.time,
        autostart: bool = True,
    ) -> None:
        self._sink = sink
        self._capacity = capacity
        self.flush_interval_s = flush_interval_s
        self._clock = clock
        self._guard = CardinalityGuard(cardinality_limit)
        self._index: dict[_SeriesKey, int | Refusal] = {}
        self._series: list[tuple[str, MetricType, Labels]] = []
        self._canonical: dict[tuple[str, MetricType, Labels], int] = {}
        self._is_counter: list[bool] = []
        self._buf: deque[tuple[int, float]] = deque()
        self._pending: deque[MetricBatch] = deque(maxlen=max_pending)
        self._refused: dict[tuple[str, str], int] = {}
        self._messages: dict[tuple[str, str], str] = {}
        self._new_messages: dict[tuple[str, str], str] = {}
        self._dropped = 0
        self._lock = threading.Lock()  # admission and draining; never taken on the hot path
        self._ship_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._autostart = autostart and sink is not None

    # -- recording ----------------------------------------------------------------------------

    def record(
        self,
        name: str,
        value: float,
        metric_type: MetricType | str = MetricType.GAUGE,
        tags: Mapping[str, str] | None = None,
        service_name: str | None = None,
    ) -> bool:
        """Buffer one point; ``False`` when it was refused or dropped (and counted)."""
        key = (name, metric_type, service_name, tuple(tags.items()) if tags else ())
        try:
            entry = self._index.get(key)
        except TypeError:  # an unhashable tag value
            entry = None
        if entry is None:
            entry = self._admit(name, metric_type, tags, service_name, key)
        if entry.__class__ is not int:
            self._count_refusal(entry)  # type: ignore[arg-type]
            return False
        if value.__class__ is not float or value - value != 0.0:
            number, refusal = check_value(name, value)
            if refusal is not None:
                self._count_refusal(refusal)
                return False
            value = number  # type: ignore[assignment]
        if value < 0.0 and self._is_counter[entry]:
            self._count_refusal(
                Refusal(
                    name,
                    RefusalReason.NEGATIVE_COUNTER,
                    f"counter {name!r} got a negative increment; use a gauge for levels",
                )
            )
            return False
        if len(self._buf) >= self._capacity:
            self._dropped += 1
            return False
        self._buf.append((entry, value))
        if self._autostart and self._thread is None:
            self.start()
        return True

    def series_id(
        self,
        name: str,
        metric_type: MetricType | str,
        tags: Mapping[str, str] | None,
        service_name: str | None,
    ) -> int:
        """Admit a series up front (for handles); raises :class:`MetricNameError` if refused."""
        key = (name, metric_type, service_name, tuple(tags.items()) if tags else ())
        entry = self._index.get(key)
        if entry is None:
            entry = self._admit(name, metric_type, tags, service_name, key)
        if isinstance(entry, Refusal):
            raise MetricNameError(entry)
        return entry

    def append(self, sid: int, value: float) -> bool:
        """The handles' hot path: the series is admitted already, only the value is checked."""
        if value.__class__ is not float or value - value != 0.0:
            name = self._series[sid][0]
            number, refusal = check_value(name, value)
            if refusal is not None:
                self._count_refusal(refusal)
                return False
            value = number  # type: ignore[assignment]
        if len(self._buf) >= self._capacity:
            self._dropped += 1
            return False
        self._buf.append((sid, value))
        if self._autostart and self._thread is None:
            self.start()
        return True

    def _admit(
        self,
        name: str,
        metric_type: MetricType | str,
        tags: Mapping[str, Any] | None,
        service_name: str | None,
        key: _SeriesKey,
    ) -> int | Refusal:
        with self._lock:
            entry = self._check(name, metric_type, tags or {}, service_name)
            if isinstance(entry, Refusal) and len(self._index) >= _MAX_CACHED_REFUSALS:
                return entry  # do not let a flood of bad keys grow the cache
            with contextlib.suppress(TypeError):
                self._index[key] = entry
            return entry

    def _check(
        self,
        name: str,
        metric_type: MetricType | str,
        tags: Mapping[str, Any],
        service_name: str | None,
    ) -> int | Refusal:
        refusal = check_name(name) or check_tags(name, tags)
        if refusal is not None:
            return refusal
        try:
            kind = MetricType(metric_type)
        except ValueError:
            return Refusal(
                name,
                RefusalReason.INVALID_NAME,
                f"metric {name!r} has unknown type {metric_type!r}; use a MetricType",
            )
        pairs = dict(tags)
        if service_name:
            pairs[SERVICE_LABEL] = str(service_name)
        labels: Labels = tuple(sorted(pairs.items()))
        refusal = self._guard.admit(name, kind.value, labels)
        if refusal is not None:
            return refusal
        canonical = (name, kind, labels)
        known = self._canonical.get(canonical)  # another spelling (tag order) of a series
        if known is not None:
            return known
        self._canonical[canonical] = len(self._series)
        self._series.append(canonical)
        self._is_counter.append(kind is MetricType.COUNTER)
        return len(self._series) - 1

    def _count_refusal(self, refusal: Refusal) -> None:
        key = (refusal.metric, refusal.reason.value)
        self._refused[key] = self._refused.get(key, 0) + 1
        if key not in self._messages:
            self._messages[key] = refusal.message
            self._new_messages[key] = refusal.message
            logger.warning("metric point refused: %s", refusal.message)

    # -- flushing -----------------------------------------------------------------------------

    def drain(self) -> MetricBatch:
        """Take everything buffered as one aggregated batch (no I/O)."""
        with self._lock:
            buf = self._buf
            n = len(buf)
            values: dict[int, list[float]] = {}
            for _ in range(n):  # popleft is atomic: points appended meanwhile stay buffered
                sid, value = buf.popleft()
                bucket = values.get(sid)
                if bucket is None:
                    values[sid] = [value]
                else:
                    bucket.append(value)
            batch = MetricBatch(ts_ms=int(self._clock() * 1000))
            for sid, vals in values.items():
                name, kind, labels = self._series[sid]
                if kind is MetricType.COUNTER:
                    arr = np.array([sum(vals)], dtype=np.float64)
                else:
                    arr = np.array(vals, dtype=np.float64)
                batch.series.append(SeriesPoints(name, kind, labels, arr))
            batch.refused, self._refused = self._refused, {}
            batch.messages, self._new_messages = self._new_messages, {}
            batch.dropped, self._dropped = self._dropped, 0
            return batch

    def flush(self) -> bool:
        """Drain and ship; ``True`` when nothing is left waiting for the collector."""
        with self._ship_lock:  # the flush thread and an explicit flush() may race
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        batch = self.drain()
        if self._sink is None:
            return False
        if self._pending and not batch.series:
            last = self._pending[-1]  # only counts: fold them in rather than push data out
            last.dropped += batch.dropped
            for key, count in batch.refused.items():
                last.refused[key] = last.refused.get(key, 0) + count
            for key, message in batch.messages.items():
                last.messages.setdefault(key, message)
        elif batch.series or batch.refused or batch.dropped:
            if len(self._pending) == self._pending.maxlen:
                self._dropped += self._pending[0].point_count  # the oldest falls out
            self._pending.append(batch)
        while self._pending:
            try:
                taken = self._sink(self._pending[0])
            except Exception:  # the sink is I/O: never let it kill the flush thread
                logger.exception("metrics sink failed")
                taken = False
            if not taken:
                return False
            self._pending.popleft()
        return True

    def start(self) -> None:
        """Start the background flush thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="ray_enterprise-metrics-flush", daemon=True
            )
            self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the flush thread for good (recording goes on; flush by hand)."""
        self._autostart = False
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if flush:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def stats(self) -> RecorderStats:
        return RecorderStats(
            buffered=len(self._buf),
            pending_batches=len(self._pending),
            dropped=self._dropped,
            refused=dict(self._refused),
        )

    # -- handles ------------------------------------------------------------------------------

    def counter(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> Counter:
        return Counter(self, self.series_id(name, MetricType.COUNTER, tags, service_name))

    def gauge(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> Gauge:
        return Gauge(self, self.series_id(name, MetricType.GAUGE, tags, service_name))

    def histogram(
        self, name: str, tags: Mapping[str, str] | None = None, service_name: str | None = None
    ) -> Histogram:
        return Histogram(self, self.series_id(name, MetricType.HISTOGRAM, tags, service_name))

    def timer(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        service_name: str | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> Timer:
        return Timer(self, self.series_id(name, MetricType.TIMER, tags, service_name), clock)
