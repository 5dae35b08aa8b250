"""The leasing client: admits requests from a local lease, calling the limiter only to renew.

The hot path is a dict lookup and a decrement. A remote call happens when the lease is spent
or has expired, and it carries back what the previous lease left unspent, so tokens a client
did not use are not lost to the others. When the limiter grants nothing it says when to ask
again; until then this client refuses locally, which is what keeps a flood from turning into a
flood of remote calls. Rejections are counted locally and handed to
:class:`~ray_enterprise.security.events.SecurityEvents` at each renewal, not per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from ray_enterprise.security.errors import RateLimitedError
from ray_enterprise.security.events import SecurityEvents, process_events
from ray_enterprise.security.ratelimit import Lease

logger = logging.getLogger("ray_enterprise.security.ratelimit")

_UNAVAILABLE_RETRY_S = 1.0

#: ``(key, route, client, want, returned) -> Lease``, as :meth:`LeaseBook.lease`.
LeaseFn = Callable[[str, str, str, int, int], Lease]


@dataclass(frozen=True)
class Decision:
    """Whether one request is admitted; if not, seconds until trying again makes sense."""

    admitted: bool
    retry_after_s: float = 0.0


_ADMIT = Decision(True)


class _Local:
    __slots__ = ("denied_until", "expires_at", "granted", "starts_at", "tokens")

    def __init__(self) -> None:
        self.tokens = 0
        self.granted = True  # False for a fail-open allowance: not the limiter's to take back
        self.starts_at = 0.0
        self.expires_at = 0.0
        self.denied_until = 0.0


class LeasingLimiter:
    """One per process (or per Serve replica); safe to share between threads.

    ``handle`` is the limiter actor's handle (default: look it up); ``lease`` replaces it by a
    plain function with the signature of ``LeaseBook.lease`` (an in-process book, or tests);
    ``want`` caps one lease;
    ``fail_open`` decides what happens while the limiter cannot be reached: refuse (default,
    the safe side for a security control) or admit. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        handle: Any = None,
        *,
        lease: LeaseFn | None = None,
        want: int = 1000,
        fail_open: bool = False,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        events: SecurityEvents | None = None,
    ) -> None:
        if handle is None and lease is None:
            from ray_enterprise.security.limiter_actor import get_limiter_handle

            handle = get_limiter_handle(create=False)
        self._handle = handle
        self._lease_fn = lease
        self._want = want
        self._fail_open = fail_open
        self._timeout_s = timeout_s
        self._clock = clock
        self._events = events if events is not None else process_events()
        self._client = uuid.uuid4().hex[:12]
        self._local: dict[tuple[str, str], _Local] = {}
        self._rejected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._renewing: dict[tuple[str, str], asyncio.Future[None]] = {}
        self.remote_calls = 0  # for benchmarks and tests: how rarely the hot path leaves

    # -- the hot path -------------------------------------------------------------------------

    def _take_local(self, slot: _Local, now: float) -> Decision | None:
        """The decision if the local state can make it, else ``None`` (renew first)."""
        if slot.tokens > 0 and now < slot.expires_at:
            if now < slot.starts_at:  # a reserved lease, not yet due
                return Decision(False, slot.starts_at - now)
            slot.tokens -= 1
            return _ADMIT
        if now < slot.denied_until:
            return Decision(False, slot.denied_until - now)
        return None

    def try_acquire(self, key: str, route: str) -> Decision:
        """Admit or refuse one request of ``key`` on ``route``."""
        with self._lock:
            slot = self._local.get((key, route))
            if slot is None:
                slot = self._local[(key, route)] = _Local()
            now = self._clock()
            decision = self._take_local(slot, now)
            if decision is None:
                returned = self._returnable(slot)
                try:
                    lease = self._renew(key, route, self._want, returned)
                    decision = self._apply(slot, lease, granted=True)
                except Exception as exc:
                    decision = self._apply(slot, self._unavailable(exc), granted=False)
            if not decision.admitted:
                self._rejected[route] += 1
            return decision

    async def try_acquire_async(self, key: str, route: str) -> Decision:
        """:meth:`try_acquire` for event loops (Serve replicas): renewal is awaited, and
        coroutines that find the lease spent while another renews it wait for that renewal
        instead of each taking a lease of their own."""
        slot = self._local.get((key, route))
        if slot is None:
            slot = self._local.setdefault((key, route), _Local())
        decision = self._take_local(slot, self._clock())
        while decision is None and (key, route) in self._renewing:
            await asyncio.shield(self._renewing[(key, route)])
            decision = self._take_local(slot, self._clock())
        if decision is None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._renewing[(key, route)] = done
            try:
                returned = self._returnable(slot)
                try:
                    if self._lease_fn is not None:
                        lease = self._lease_fn(key, route, self._client, self._want, returned)
                    else:
                        lease = await self._handle.lease.remote(
                            key, route, self._client, self._want, returned
                        )
                    decision = self._apply(slot, lease, granted=True)
                except Exception as exc:
                    decision = self._apply(slot, self._unavailable(exc), granted=False)
            finally:
                del self._renewing[(key, route)]
                done.set_result(None)
        if not decision.admitted:
            self._rejected[route] += 1
        return decision

    def check(self, key: str, route: str) -> None:
        """Raise :class:`RateLimitedError` (HTTP 429, with ``retry_after_s``) when refused."""
        decision = self.try_acquire(key, route)
        if not decision.admitted:
            raise RateLimitedError(key, route, decision.retry_after_s)

    # -- renewal ------------------------------------------------------------------------------

    def _renew(self, key: str, route: str, want: int, returned: int) -> Lease:
        if self._lease_fn is not None:
            return self._lease_fn(key, route, self._client, want, returned)
        lease: Lease = ray.get(
            self._handle.lease.remote(key, route, self._client, want, returned),
            timeout=self._timeout_s,
        )
        return lease

    @staticmethod
    def _returnable(slot: _Local) -> int:
        """Tokens of the previous lease that were not spent; they go back with the renewal."""
        unspent = slot.tokens if slot.granted else 0
        slot.tokens = 0
        return unspent

    def _apply(self, slot: _Local, lease: Lease, *, granted: bool) -> Decision:
        self.remote_calls += 1
        slot.granted = granted
        self._flush_rejections()
        now = self._clock()
        if lease.tokens > 0:
            slot.tokens = lease.tokens
            slot.starts_at = now + lease.starts_in_s
            slot.expires_at = slot.starts_at + lease.ttl_s
            slot.denied_until = 0.0
            if lease.starts_in_s > 0:
                return Decision(False, lease.starts_in_s)
            slot.tokens -= 1
            return _ADMIT
        slot.denied_until = now + lease.retry_after_s
        return Decision(False, lease.retry_after_s)

    def _unavailable(self, exc: BaseException) -> Lease:
        logger.warning(
            "rate limiter unreachable (%s); %s",
            type(exc).__name__,
            "admitting" if self._fail_open else "refusing",
        )
        if self._fail_open:
            return Lease(self._want, _UNAVAILABLE_RETRY_S)
        return Lease(0, 0.0, _UNAVAILABLE_RETRY_S)

    def _flush_rejections(self) -> None:
        for route, count in self._rejected.items():
            self._events.rate_limited(route, count)
        self._rejected.clear()

    def close(self) -> None:
        """Give back every unspent token and hand over the rejection counts."""
        with self._lock:
            now = self._clock()
            unspent = {}
            for (key, route), slot in self._local.items():
                if slot.tokens and slot.granted and now < slot.expires_at:
                    unspent[(key, route)] = slot.tokens
                slot.tokens = 0
            self._flush_rejections()
        if self._lease_fn is not None:
            for (key, route), tokens in unspent.items():
                self._lease_fn(key, route, self._client, 0, tokens)
            return
        refs = [
            self._handle.lease.remote(key, route, self._client, 0, tokens)
            for (key, route), tokens in unspent.items()
        ]
        try:
            ray.get(refs, timeout=self._timeout_s)
        except Exception as exc:  # the tokens come back by themselves as the bucket refills
            logger.warning("could not return unspent tokens: %s", type(exc).__name__)


__all__ = ["Decision", "LeaseFn", "LeasingLimiter"]
