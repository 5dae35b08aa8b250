"""The central series store: one numpy ring buffer per series, window statistics, totals.

Pure and bounded: each series keeps its last ``capacity`` points (the oldest fall out), the store
keeps at most ``cardinality_limit`` series per metric, and time comes from an injected clock so
windows are tested by moving a fake clock. Besides the ring, each series keeps running totals
(count, sum, histogram bucket counts) because Prometheus counters must never go backwards when
old points leave the ring.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ray_enterprise.alerts.matchers import Matcher, matches_all
from ray_enterprise.observability.metric_batch import (
    FloatArray,
    Labels,
    MetricBatch,
    MetricType,
)
from ray_enterprise.observability.metric_names import (
    DEFAULT_CARDINALITY_LIMIT,
    MAX_NAME_LEN,
    CardinalityGuard,
    Refusal,
    RefusalReason,
    check_series,
)

#: The windows every series is summarised over, in milliseconds.
WINDOWS_MS: Mapping[str, int] = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}
#: Prometheus client's default buckets, scaled for milliseconds as well as seconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
)  # fmt: skip
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)


#: Distinct (metric, reason) refusal counts a store keeps before lumping new ones together.
MAX_REFUSAL_KEYS = 1000
#: Points a new series' ring has room for; it doubles as points arrive, up to its capacity.
INITIAL_RING = 16
#: Series the whole store holds, whatever their names: the per-metric cardinality limit alone
#: lets a client inventing names grow the store without bound.
DEFAULT_SERIES_LIMIT = 10_000
OTHER_METRIC = "<other>"


class RingBuffer:
    """The last ``capacity`` (timestamp, value) points of one series, oldest first on read.

    The arrays grow with the points held (doubling from :data:`INITIAL_RING` up to
    ``capacity``) instead of being allocated whole: a flood of one-point series must cost
    one point each, not ``capacity`` each. The ring only wraps once it is full size.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        size = min(capacity, INITIAL_RING)
        self._ts: npt.NDArray[np.int64] = np.zeros(size, dtype=np.int64)
        self._values: FloatArray = np.zeros(size, dtype=np.float64)
        self._written = 0  # total points ever written; head is _written % capacity

    def __len__(self) -> int:
        return min(self._written, self.capacity)

    @property
    def allocated(self) -> int:
        """Points the arrays have room for now (for memory accounting and tests)."""
        return len(self._values)

    def _grow(self, needed: int) -> None:
        size = len(self._values)
        if needed <= size or size >= self.capacity:
            return
        new = min(self.capacity, max(needed, 2 * size))
        self._ts = np.concatenate((self._ts, np.zeros(new - size, dtype=np.int64)))
        self._values = np.concatenate((self._values, np.zeros(new - size, dtype=np.float64)))

    def extend(self, ts_ms: int, values: FloatArray) -> None:
        """Append ``values`` all stamped ``ts_ms`` (one batch shares its flush time)."""
        n = len(values)
        if n >= self.capacity:
            values = values[-self.capacity :]
            self._grow(self.capacity)
            self._written += n - self.capacity
            n = self.capacity
        elif self._written < self.capacity:
            self._grow(self._written + n)  # not wrapped yet: head is _written
        head = self._written % self.capacity
        first = min(n, self.capacity - head)
        self._values[head : head + first] = values[:first]
        self._ts[head : head + first] = ts_ms
        if first < n:
            self._values[: n - first] = values[first:]
            self._ts[: n - first] = ts_ms
        self._written += n

    @classmethod
    def of_points(cls, capacity: int, ts: Sequence[int], values: Sequence[float]) -> RingBuffer:
        """A ring holding the newest ``capacity`` of these points (oldest first)."""
        ring = cls(capacity)
        stamps = np.asarray(ts, dtype=np.int64)[-capacity:]
        kept = np.asarray(values, dtype=np.float64)[-capacity:]
        ring._grow(len(kept))
        ring._ts[: len(kept)] = stamps
        ring._values[: len(kept)] = kept
        ring._written = len(kept)
        return ring

    def ordered(self) -> tuple[npt.NDArray[np.int64], FloatArray]:
        n = len(self)
        if self._written <= self.capacity:
            return self._ts[:n], self._values[:n]
        head = self._written % self.capacity
        return (
            np.concatenate((self._ts[head:], self._ts[:head])),
            np.concatenate((self._values[head:], self._values[:head])),
        )

    def window(self, start_ms: int, end_ms: int) -> FloatArray:
        """Values with ``start_ms <= ts <= end_ms``, oldest first."""
        ts, values = self.ordered()
        lo = int(np.searchsorted(ts, start_ms, side="left"))
        hi = int(np.searchsorted(ts, end_ms, side="right"))
        return values[lo:hi]


@dataclass(frozen=True)
class WindowStats:
    """Summary of one series over one window; all zero when the window is empty."""

    count: int = 0
    sum: float = 0.0
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0

    @classmethod
    def of(cls, values: FloatArray) -> WindowStats:
        if len(values) == 0:
            return cls()
        p50, p95, p99 = np.quantile(values, QUANTILES)
        total = float(values.sum())
        return cls(
            count=len(values),
            sum=total,
            min=float(values.min()),
            max=float(values.max()),
            mean=total / len(values),
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
        )

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Series:
    """One series: its ring of recent points and its running totals."""

    name: str
    kind: MetricType
    labels: Labels
    ring: RingBuffer
    buckets: tuple[float, ...]
    total_count: int = 0
    total_sum: float = 0.0
    last: float = 0.0
    last_ts_ms: int = 0
    bucket_counts: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, ts_ms: int, values: FloatArray) -> None:
        if len(values) == 0:
            return
        # Batches from several collectors arrive slightly out of order; the ring's window
        # search needs non-decreasing stamps, and a few ms of skew do not matter to a window.
        ts_ms = max(ts_ms, self.last_ts_ms)
        self.ring.extend(ts_ms, values)
        self.total_sum += float(values.sum())
        self.last = float(values[-1])
        self.last_ts_ms = ts_ms
        if self.kind is MetricType.COUNTER:
            self.total_count += 1  # a counter point is one pre-summed delta
            return
        self.total_count += len(values)
        if self.kind is MetricType.HISTOGRAM:
            if len(self.bucket_counts) == 0:
                self.bucket_counts = np.zeros(len(self.buckets), dtype=np.int64)
            # Cumulative "le" buckets: a value counts in every bucket whose bound it fits.
            idx = np.searchsorted(np.asarray(self.buckets), values, side="left")
            per_bucket = np.bincount(idx, minlength=len(self.buckets) + 1)[: len(self.buckets)]
            self.bucket_counts += np.cumsum(per_bucket)

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


class SeriesStore:
    """Every series of the cluster, bounded; also the rule engine's ``WindowSource``."""

    def __init__(
        self,
        *,
        capacity: int = 8192,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
        series_limit: int = DEFAULT_SERIES_LIMIT,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.capacity = capacity
        self.series_limit = series_limit
        self.buckets = tuple(sorted(buckets))
        self._clock = clock
        self._guard = CardinalityGuard(cardinality_limit)
        self._series: dict[tuple[str, Labels], Series] = {}
        self._by_name: dict[str, list[Series]] = {}
        #: (metric, reason) -> count of every refusal seen, here or in the recorders.
        self.refused: dict[tuple[str, str], int] = {}
        self.refusal_messages: dict[tuple[str, str], str] = {}
        self.dropped = 0
        self.points = 0

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def ingest(self, batch: MetricBatch) -> list[Refusal]:
        """Add a batch; returns the refusals this store made itself (cardinality, type, and
        what a recorder would have refused in a batch that did not come through one: bad
        names and tags, NaN and infinite values). A refused point is counted, never stored."""
        refusals: list[Refusal] = []
        for key, count in batch.refused.items():
            self._add_refused(key, count, batch.messages.get(key))
        self.dropped += batch.dropped
        for points in batch.series:
            values = self._finite(points.name, points.values, refusals)
            if not len(values):
                continue
            series = self._series.get((points.name, points.labels))
            if series is None:
                refusal = (
                    check_series(points.name, points.labels)
                    or self._over_limit(points.name)
                    or self._guard.admit(points.name, points.kind.value, points.labels)
                )
                if refusal is not None:
                    refusals.append(refusal)
                    self._count(refusal, len(values))
                    continue
                series = Series(
                    points.name,
                    points.kind,
                    points.labels,
                    RingBuffer(self.capacity),
                    self.buckets,
                )
                self._series[(points.name, points.labels)] = series
                self._by_name.setdefault(points.name, []).append(series)
            series.add(batch.ts_ms, values)
            self.points += len(values)
        return refusals

    def _over_limit(self, name: str) -> Refusal | None:
        """The store-wide bound, checked before the per-metric guard remembers the name."""
        if len(self._series) < self.series_limit:
            return None
        return Refusal(
            name[:MAX_NAME_LEN],
            RefusalReason.SERIES_LIMIT,
            f"the metrics store holds its limit of {self.series_limit} series; a new series "
            f"({name[:MAX_NAME_LEN]!r}) is refused: drop unbounded names or tags, or raise "
            "the limit",
        )

    def holds(self, name: str, labels: Labels) -> bool:
        """Whether the series was taken (a refused one never is)."""
        return (name, labels) in self._series

    def _count(self, refusal: Refusal, points: int) -> None:
        self._add_refused((refusal.metric, refusal.reason.value), points, refusal.message)

    def _add_refused(self, key: tuple[str, str], points: int, message: str | None) -> None:
        """Count refused points by (metric, reason). The metric is whatever a client sent, so
        past :data:`MAX_REFUSAL_KEYS` distinct keys new ones are counted under ``<other>``:
        a client inventing names cannot grow the store, its checkpoint or the exposition."""
        if key not in self.refused and len(self.refused) >= MAX_REFUSAL_KEYS:
            key = (OTHER_METRIC, key[1])
        self.refused[key] = self.refused.get(key, 0) + points
        if message is not None:
            self.refusal_messages.setdefault(key, message)

    def _finite(self, name: str, values: FloatArray, refusals: list[Refusal]) -> FloatArray:
        """The finite values; NaN and infinities are refused and counted (a recorder refuses
        them before they are sent; a batch built by hand may still carry them)."""
        finite = np.isfinite(values)
        if finite.all():
            return values
        nan = int(np.isnan(values).sum())
        infinite = len(values) - int(finite.sum()) - nan
        for count, reason, what in (
            (nan, RefusalReason.NAN, "NaN"),
            (infinite, RefusalReason.INFINITE, "infinite"),
        ):
            if count:
                refusal = Refusal(name, reason, f"value of metric {name!r} is {what}")
                refusals.append(refusal)
                self._count(refusal, count)
        return values[finite]

    def __iter__(self) -> Iterator[Series]:
        return iter(list(self._series.values()))

    def __len__(self) -> int:
        return len(self._series)

    def get(self, name: str, labels: Mapping[str, str]) -> Series | None:
        return self._series.get((name, tuple(sorted(labels.items()))))

    def find(self, name: str, matchers: Sequence[Matcher] = ()) -> list[Series]:
        return [s for s in self._by_name.get(name, ()) if matches_all(matchers, s.label_dict)]

    def stats(self, series: Series, now_ms: int | None = None) -> dict[str, WindowStats]:
        """The series summarised over every window in :data:`WINDOWS_MS`, ending now."""
        end = self.now_ms() if now_ms is None else now_ms
        return {
            window: WindowStats.of(series.ring.window(end - span, end))
            for window, span in WINDOWS_MS.items()
        }

    def window_values(
        self, metric: str, matchers: tuple[Matcher, ...], start_ms: int, end_ms: int
    ) -> Mapping[Labels, Sequence[float]]:
        """Satisfies the alert ``RuleEngine``'s ``WindowSource``."""
        return {
            s.labels: s.ring.window(start_ms, end_ms).tolist() for s in self.find(metric, matchers)
        }

    def snapshot(self, max_points: int = 500_000) -> dict[str, Any]:
        """Plain data a restarted store resumes from: every series' totals and its newest
        points, at most ``max_points`` in all (split evenly), so a checkpoint stays small
        enough for the key-value store whatever the cardinality."""
        keep = max(64, max_points // max(1, len(self._series)))
        series = []
        for one in self._series.values():
            ts, values = one.ring.ordered()
            series.append(
                {
                    "name": one.name,
                    "kind": one.kind.value,
                    "labels": one.labels,
                    "ts": ts[-keep:].copy(),
                    "values": values[-keep:].copy(),
                    "total_count": one.total_count,
                    "total_sum": one.total_sum,
                    "last": one.last,
                    "last_ts_ms": one.last_ts_ms,
                    "bucket_counts": one.bucket_counts.copy(),
                }
            )
        return {
            "series": series,
            "refused": dict(self.refused),
            "refusal_messages": dict(self.refusal_messages),
            "dropped": self.dropped,
            "points": self.points,
        }

    def restore(self, state: Mapping[str, Any]) -> int:
        """Take up a :meth:`snapshot`; series that no longer fit the limits are skipped.
        Returns how many series were restored."""
        restored = 0
        for data in state.get("series", ()):
            kind = MetricType(data["kind"])
            labels = tuple(tuple(pair) for pair in data["labels"])
            if check_series(data["name"], labels) or self._over_limit(data["name"]):
                continue  # a checkpoint from before the limits brings back only what fits
            if self._guard.admit(data["name"], kind.value, labels) is not None:
                continue
            ring = RingBuffer.of_points(self.capacity, data["ts"], data["values"])
            one = Series(data["name"], kind, labels, ring, self.buckets)
            one.total_count = int(data["total_count"])
            one.total_sum = float(data["total_sum"])
            one.last, one.last_ts_ms = float(data["last"]), int(data["last_ts_ms"])
            one.bucket_counts = np.asarray(data["bucket_counts"], dtype=np.int64)
            self._series[(one.name, labels)] = one
            self._by_name.setdefault(one.name, []).append(one)
            restored += 1
        for key, count in state.get("refused", {}).items():
            self.refused[key] = self.refused.get(key, 0) + int(count)
        for key, message in state.get("refusal_messages", {}).items():
            self.refusal_messages.setdefault(key, message)
        self.dropped += int(state.get("dropped", 0))
        self.points += int(state.get("points", 0))
        return restored

    def describe(self, series: Series, now_ms: int | None = None) -> dict[str, Any]:
        """Plain data for the API: identity, totals and window stats."""
        return {
            "name": series.name,
            "type": series.kind.value,
            "labels": series.label_dict,
            "total_count": series.total_count,
            "total_sum": series.total_sum,
            "last": series.last,
            "windows": {w: s.to_json() for w, s in self.stats(series, now_ms).items()},
        }
