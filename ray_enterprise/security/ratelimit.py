"""Token buckets and the lease policy of the cluster-wide rate limiter: pure, clock injected.

The limiter actor holds one :class:`TokenBucket` per (key, route), the only place tokens are
created, so the cluster can never admit more than the bucket lets out. Clients do not ask per
request: they take a :class:`Lease`, a batch of tokens to spend within a short ``ttl_s``, and
hand back what they did not spend. Since every admitted request spends a token that left the
bucket, and unspent tokens go back, the admitted rate tracks the configured rate however many
clients share a key; the ttl bounds how far a dead client's tokens can skew it.

Shares are fair by construction: a lease is at most ``rate * ttl / active clients`` tokens.
When the bucket is empty a client is not simply told "no" (then every waiting client would call
again at the same moment and all but one be refused again): it gets a lease that *starts* when
its tokens will have accrued, the bucket going into debt for them, as in GCRA. The client
refuses locally until then; one remote call per lease, however hard the key is hammered. Only
past ``max_wait`` of debt is a client refused outright, told ``retry_after_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

WILDCARD = "*"


@dataclass(frozen=True)
class RateLimit:
    """``rate`` tokens per second, at most ``burst`` saved up (the bucket's size)."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be a positive number of requests per second: {self.rate}")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise ValueError(f"burst must be at least 1 request: {self.burst}")


class TokenBucket:
    """The classic bucket: refills continuously at ``rate`` up to ``burst``; starts full."""

    __slots__ = ("_clock", "_stamp", "_tokens", "limit")

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(
                self.limit.burst, self._tokens + (now - self._stamp) * self.limit.rate
            )
            self._stamp = now
        return self._tokens

    def available(self) -> float:
        return self._refill()

    def take(self, n: float = 1.0) -> bool:
        """Take ``n`` tokens if all are there; otherwise take none."""
        if self._refill() >= n:
            self._tokens -= n
            return True
        return False

    def reserve(self, n: float) -> None:
        """Take ``n`` tokens that are not there yet: the bucket goes into debt for them."""
        self._refill()
        self._tokens -= n

    def take_up_to(self, n: int) -> int:
        """Take as many whole tokens as are there, at most ``n``."""
        granted = max(0, min(n, math.floor(self._refill())))
        self._tokens -= granted
        return granted

    def give_back(self, n: float) -> None:
        """Return unspent tokens, as if never taken (so never past ``burst``)."""
        self._tokens = min(self.limit.burst, self._refill() + max(0.0, n))

    def time_until(self, n: float) -> float:
        """Seconds until ``n`` tokens will be there (0 when they are)."""
        missing = n - self._refill()
        return 0.0 if missing <= 0 else missing / self.limit.rate

    def set_limit(self, limit: RateLimit) -> None:
        self._refill()
        self.limit = limit
        self._tokens = min(self._tokens, limit.burst)


@dataclass(frozen=True)
class Lease:
    """``tokens`` to spend from ``starts_in_s`` from now, for ``ttl_s``; when ``tokens`` is 0,
    ask again after ``retry_after_s`` (and reject until then)."""

    tokens: int
    ttl_s: float
    retry_after_s: float = 0.0
    starts_in_s: float = 0.0


@dataclass
class _Slot:
    bucket: TokenBucket
    clients: dict[str, float] = field(default_factory=dict)  # client id -> last seen
    used_at: float = 0.0


class LeaseBook:
    """Every bucket the limiter holds, their limits, and who is leasing from each.

    ``lease_ttl_s`` trades remote calls against accuracy: larger leases mean fewer calls but
    more tokens in flight. ``max_wait_s`` (default two ttls) bounds how far ahead a lease may be
    reserved. A client unseen for ``idle_s`` no longer counts toward the share.
    """

    def __init__(
        self,
        default: RateLimit,
        *,
        lease_ttl_s: float = 0.1,
        max_wait_s: float | None = None,
        idle_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self.lease_ttl_s = lease_ttl_s
        self.max_wait_s = 2 * lease_ttl_s if max_wait_s is None else max_wait_s
        self.idle_s = idle_s
        self._clock = clock
        self._limits: dict[tuple[str, str], RateLimit] = {}
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._calls = 0

    # -- limits -------------------------------------------------------------------------------

    def set_limit(self, key: str, route: str, limit: RateLimit) -> None:
        """The limit of ``(key, route)``; either may be ``"*"`` to match every key or route."""
        self._limits[(key, route)] = limit
        for (k, r), slot in self._slots.items():
            slot.bucket.set_limit(self.limit_for(k, r))

    def limits(self) -> dict[tuple[str, str], RateLimit]:
        return dict(self._limits)

    def limit_for(self, key: str, route: str) -> RateLimit:
        """Most specific first: (key, route), (key, *), (*, route), then the default."""
        for candidate in ((key, route), (key, WILDCARD), (WILDCARD, route)):
            if candidate in self._limits:
                return self._limits[candidate]
        return self.default

    # -- granting -----------------------------------------------------------------------------

    def _slot(self, key: str, route: str) -> _Slot:
        slot = self._slots.get((key, route))
        if slot is None:
            slot = self._slots[(key, route)] = _Slot(
                TokenBucket(self.limit_for(key, route), self._clock)
            )
        slot.used_at = self._clock()
        self._calls += 1
        if self._calls % 1024 == 0:
            self.prune()
        return slot

    def lease(self, key: str, route: str, client: str, want: int, returned: int = 0) -> Lease:
        """Grant ``client`` up to ``want`` tokens of (key, route), after taking back
        ``returned`` tokens it did not spend from its previous lease."""
        slot = self._slot(key, route)
        bucket = slot.bucket
        if returned > 0:
            bucket.give_back(returned)
        now = self._clock()
        if want <= 0:  # a goodbye: tokens handed back, nothing wanted
            slot.clients.pop(client, None)
            return Lease(0, self.lease_ttl_s)
        slot.clients[client] = now
        for other, seen in list(slot.clients.items()):
            if now - seen > self.idle_s:
                del slot.clients[other]
        limit = bucket.limit
        fair = limit.rate * self.lease_ttl_s / len(slot.clients)
        share = max(1, math.floor(min(limit.burst, fair)))
        target = max(1, min(want, share))
        # Wait for half a share rather than hand out crumbs: crumbs mean a call per request.
        if bucket.available() >= max(1, target // 2):
            return Lease(bucket.take_up_to(target), self.lease_ttl_s)
        wait = bucket.time_until(target)
        if wait <= self.max_wait_s:
            bucket.reserve(target)
            return Lease(target, self.lease_ttl_s, starts_in_s=wait)
        return Lease(0, self.lease_ttl_s, retry_after_s=wait - self.max_wait_s)

    def acquire(self, key: str, route: str, n: int = 1) -> tuple[bool, float]:
        """One decision without a lease: (admitted, seconds until ``n`` tokens are there)."""
        bucket = self._slot(key, route).bucket
        if bucket.take(n):
            return True, 0.0
        return False, bucket.time_until(n)

    def prune(self) -> int:
        """Forget buckets nobody used for long enough that they are full again anyway."""
        now = self._clock()
        stale = [k for k, slot in self._slots.items() if now - slot.used_at > self._refill_s(slot)]
        for k in stale:
            del self._slots[k]
        return len(stale)

    def _refill_s(self, slot: _Slot) -> float:
        return max(self.idle_s, slot.bucket.limit.burst / slot.bucket.limit.rate)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """``{"key route": {"tokens", "rate", "burst", "clients"}}`` for status and tests."""
        return {
            f"{k} {r}": {
                "tokens": slot.bucket.available(),
                "rate": slot.bucket.limit.rate,
                "burst": slot.bucket.limit.burst,
                "clients": float(len(slot.clients)),
            }
            for (k, r), slot in self._slots.items()
        }


__all__ = ["WILDCARD", "Lease", "LeaseBook", "RateLimit", "TokenBucket"]
