"""Failed logins as an attacker uses them: a throttle per client address, and a digest of the
failures that name no known key. Pure, clock injected.

Each failed verification costs a PBKDF2 hash (tens of milliseconds, by design) and used to cost
an audit row, so a client guessing keys could burn CPU and flood the trail. The
:class:`LoginThrottle` refuses a client that failed too often *before* its key is verified, so
a refused guess costs no hash. The :class:`FailureDigest` writes the first anonymous failure
(no key, a malformed one, an unknown id) of each window at once and counts the rest into one
record when the window ends. Failures of a known key (wrong secret, expired, revoked, lacking a
scope) and every success are never folded: they are written as they happen.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from ray_enterprise.security.ratelimit import RateLimit, TokenBucket

#: The client address and route of the request being verified; the gate sets them, the digest
#: reads them (``asyncio.to_thread`` carries them into the thread that runs the key store).
CLIENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("client", default=None)
ROUTE: contextvars.ContextVar[str] = contextvars.ContextVar("route", default="")
_MAX_CLIENTS_NAMED = 20  # a digest names the noisiest clients, not every spoofed address


class LoginThrottle:
    """At most ``burst`` failed logins per client address, refilled at ``per_minute``.

    Only failures take tokens; a client with none left is refused until one is back, even
    with a valid key (otherwise a guesser would simply keep guessing). At most ``capacity``
    addresses are remembered, the least recently seen forgotten first, so a flood of
    addresses costs bounded memory.
    """

    def __init__(
        self,
        *,
        per_minute: float = 20.0,
        burst: float = 20.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = RateLimit(per_minute / 60.0, burst)
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self._lock:
            bucket = self._buckets.get(client)
            return 0.0 if bucket is None else bucket.time_until(1.0)

    def failed(self, client: str) -> None:
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = TokenBucket(self.limit, self._clock)
                while len(self._buckets) > self._capacity:
                    self._buckets.popitem(last=False)
            self._buckets.move_to_end(client)
            bucket.take_up_to(1)


class FailureDigest:
    """Anonymous authentication failures, folded per ``window_s``.

    ``write(target, details)`` records one audit row (the gate appends it as ``anonymous``
    ``auth.verify`` ``denied``; the target is the route of a single failure, empty for a
    count). :meth:`note` writes the first failure of a window itself and
    counts the rest; :meth:`flush` writes the count once the window is over (the gate calls it
    from a timer and on later requests), so nothing counted is lost.
    """

    def __init__(
        self,
        write: Callable[[str, dict[str, Any]], None],
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None
        self._reasons: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()

    def note(self, reason: str, client: str | None = None, route: str | None = None) -> None:
        client = client or CLIENT.get() or "unknown"
        route = ROUTE.get() if route is None else route
        now = self._clock()
        with self._lock:
            due = self._take_due(now)
            first = self._started is None
            if first:
                self._started = now
            else:
                self._reasons[reason] += 1
                self._clients[client] += 1
        if due is not None:
            self._write("", due)
        if first:
            details = {"reason": reason, "client": client, "first_of_window_s": self.window_s}
            self._write(route, details)

    def pending(self) -> float | None:
        """Seconds until the open window's count is due; ``None`` when nothing is counted."""
        with self._lock:
            if self._started is None or not self._reasons:
                return None
            return max(0.0, self._started + self.window_s - self._clock())

    def flush(self) -> None:
        """Write the count of a window that is over."""
        with self._lock:
            due = self._take_due(self._clock())
        if due is not None:
            self._write("", due)

    def _take_due(self, now: float) -> dict[str, Any] | None:
        if self._started is None or now < self._started + self.window_s:
            return None
        started, reasons, clients = self._started, self._reasons, self._clients
        self._started, self._reasons, self._clients = None, Counter(), Counter()
        if not reasons:
            return None
        named = dict(clients.most_common(_MAX_CLIENTS_NAMED))
        others = sum(clients.values()) - sum(named.values())
        if others:
            named["<other>"] = others
        return {
            "reason": "aggregated",
            "count": sum(reasons.values()),
            "reasons": dict(reasons),
            "clients": named,
            "window_start": started,
            "window_s": self.window_s,
        }


__all__ = ["CLIENT", "ROUTE", "FailureDigest", "LoginThrottle"]
