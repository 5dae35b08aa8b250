"""Security events as counters: authentication failures and rate-limit rejections.

Brute force and floods show up as a rising rate of these counters, so they must reach the same
metrics pipeline as everything else, where anomaly detection and alert rules can see them. Each
process keeps its own counts (``snapshot()`` for tests and status pages) and, when the metrics
recorder of :mod:`ray_enterprise.observability.metrics` is importable, forwards every increment
to ``record_metric`` as a counter, which only appends to a per-process buffer.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

AUTH_FAILURES = "ray_enterprise_security_auth_failures"
RATE_LIMITED = "ray_enterprise_security_rate_limited"

Forward = Callable[[str, float, dict[str, str]], Any]


def _default_forward() -> Forward | None:
    try:
        from ray_enterprise.observability.metrics import record_metric
    except ImportError:  # the metrics pipeline is optional: keep counting locally
        return None

    def forward(name: str, value: float, tags: dict[str, str]) -> Any:
        return record_metric(name, value, "counter", tags)

    return forward


class SecurityEvents:
    """Thread-safe counters keyed by (metric name, tags).

    ``forward`` receives every increment (name, amount, tags); the default sends it to
    ``record_metric`` when the metrics pipeline exists; pass ``forward=None`` with
    ``metrics=False`` to keep counts local only.
    """

    def __init__(self, *, forward: Forward | None = None, metrics: bool = True) -> None:
        self._forward = forward if forward is not None or not metrics else _default_forward()
        self._counts: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._lock = threading.Lock()

    def count(self, name: str, amount: float = 1.0, **tags: str) -> None:
        key = (name, tuple(sorted(tags.items())))
        with self._lock:
            self._counts[key] += int(amount)
        if self._forward is not None:
            try:
                self._forward(name, amount, dict(tags))
            except Exception:  # a broken metrics path must never break authentication
                self._forward = None

    def auth_failure(self, reason: str) -> None:
        """``reason``: malformed, invalid, expired, revoked or scope (never the key itself)."""
        self.count(AUTH_FAILURES, reason=reason)

    def rate_limited(self, route: str, amount: int = 1) -> None:
        """Rejections by route; the key id is left out to keep the series' cardinality low."""
        if amount > 0:
            self.count(RATE_LIMITED, float(amount), route=route)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{metric: {"tag=value,...": count}}``, a copy safe to serialise."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (name, tags), value in self._counts.items():
                label = ",".join(f"{k}={v}" for k, v in tags)
                out.setdefault(name, {})[label] = value
        return out

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _), v in self._counts.items() if n == name)


_process_events: SecurityEvents | None = None
_process_lock = threading.Lock()


def process_events() -> SecurityEvents:
    """This process's counters, shared by every key store and limiter client in it."""
    global _process_events
    with _process_lock:
        if _process_events is None:
            _process_events = SecurityEvents()
        return _process_events


__all__ = ["AUTH_FAILURES", "RATE_LIMITED", "SecurityEvents", "process_events"]
