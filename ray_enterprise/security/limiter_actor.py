"""The limiter actor: the thin Ray shell around :class:`LeaseBook`, the cluster's one bucket
per (key, route).

It is a named, detached system actor on the head node like the registry, so every process of
the cluster finds the same buckets. It is a plain (non-async) actor: calls run one at a time,
so the book needs no lock, and each call is a few microseconds of Python. Limits are kept in
the GCS key-value store so a restarted limiter enforces the same limits; the buckets
themselves restart full, which admits at most one extra burst.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ray
from ray.exceptions import GetTimeoutError

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert
from ray_enterprise.security.errors import SecurityError
from ray_enterprise.security.ratelimit import Lease, LeaseBook, RateLimit

logger = logging.getLogger("ray_enterprise.security.ratelimit")

LIMITER_NAME = system_actors.RATE_LIMITER
NAMESPACE = _kv.NAMESPACE
_SETTINGS = "ratelimit/settings"
_LIMIT = "ratelimit/limit/"
DEFAULT_LIMIT = RateLimit(rate=100.0, burst=200.0)


class RateLimiterActor:
    """Holds the authoritative buckets; grants leases and single decisions."""

    def __init__(
        self, rate: float | None = None, burst: float | None = None, lease_ttl_s: float = 0.1
    ) -> None:
        restart_alert = RestartAlert(LIMITER_NAME)
        saved = _kv.get(_SETTINGS)
        if saved is None:  # first start: what the creator asked for, kept for restarts
            saved = {
                "rate": rate or DEFAULT_LIMIT.rate,
                "burst": burst or DEFAULT_LIMIT.burst,
                "lease_ttl_s": lease_ttl_s,
            }
            _kv.put(_SETTINGS, saved)
        self._book = LeaseBook(
            RateLimit(float(saved["rate"]), float(saved["burst"])),
            lease_ttl_s=float(saved["lease_ttl_s"]),
        )
        for key, value in _kv.scan(_LIMIT).items():
            limit_key, _, route = key[len(_LIMIT) :].partition("|")
            self._book.set_limit(limit_key, route, RateLimit(value["rate"], value["burst"]))
        restart_alert.recovered()  # limits reloaded (buckets restart full): serving again

    def ping(self) -> str:
        return "ok"

    def pid(self) -> int:
        """The process holding the buckets (sync like every method here: one ``async def``
        would make this an asyncio actor, whose calls no longer run one at a time)."""
        return os.getpid()

    def process_id(self) -> int:
        """Which process holds the buckets: it changes when the limiter was restarted."""
        return os.getpid()

    def lease(self, key: str, route: str, client: str, want: int, returned: int = 0) -> Lease:
        return self._book.lease(key, route, client, want, returned)

    def acquire(self, key: str, route: str, n: int = 1) -> tuple[bool, float]:
        return self._book.acquire(key, route, n)

    def set_limit(self, key: str, route: str, rate: float, burst: float) -> None:
        """Set (and persist) the limit of (key, route); ``"*"`` matches any key or route."""
        limit = RateLimit(rate, burst)
        self._book.set_limit(key, route, limit)
        _kv.put(f"{_LIMIT}{key}|{route}", {"rate": rate, "burst": burst})

    def limits(self) -> dict[str, dict[str, float]]:
        return {
            f"{k}|{r}": {"rate": lim.rate, "burst": lim.burst}
            for (k, r), lim in self._book.limits().items()
        }

    def snapshot(self) -> dict[str, dict[str, float]]:
        return self._book.snapshot()


def limiter_options() -> dict[str, Any]:
    """Like the registry: detached, restarted forever, calls retried, on the head node."""
    return {
        "name": LIMITER_NAME,
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "max_restarts": -1,
        "max_task_retries": -1,
        "num_cpus": 0,
        "resources": {"node:__internal_head__": 0.001},
        "get_if_exists": True,
    }


def get_limiter_handle(
    *, create: bool, rate: float | None = None, burst: float | None = None, lease_ttl_s: float = 0.1
) -> Any:
    """The limiter actor's handle; created (with these defaults) when asked and missing."""
    try:
        return ray.get_actor(LIMITER_NAME, namespace=NAMESPACE)
    except ValueError:
        if not create:
            raise
    actor_class: Any = ray.remote(RateLimiterActor)
    handle = actor_class.options(**limiter_options()).remote(rate, burst, lease_ttl_s)
    try:
        ray.get(handle.ping.remote(), timeout=60)
    except GetTimeoutError as exc:
        raise SecurityError("the rate limiter actor did not come up within 60 s") from exc
    return handle


__all__ = ["LIMITER_NAME", "RateLimiterActor", "get_limiter_handle", "limiter_options"]
