"""A client process that hammers one key through a LeasingLimiter and counts what it admits.

Kept out of the test module so Ray workers import it by name. It counts admissions inside a
wall-clock window fixed in advance, so no process has to wait for any other: every process
measures the same interval of time.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from ray_enterprise.security.events import SecurityEvents
from ray_enterprise.security.limiter_actor import get_limiter_handle
from ray_enterprise.security.limiter_client import LeasingLimiter


@ray.remote(num_cpus=0)
class Hammer:
    def ready(self) -> bool:
        return True

    def hammer(
        self, key: str, route: str, stop: float, window: tuple[float, float]
    ) -> dict[str, Any]:
        limiter = LeasingLimiter(
            get_limiter_handle(create=False), events=SecurityEvents(metrics=False)
        )
        begin, end = window
        admitted = in_window = refused = 0
        first = None
        while True:
            decision = limiter.try_acquire(key, route)
            now = time.time()
            if now >= stop:
                break
            if decision.admitted:
                admitted += 1
                first = now if first is None else first
                if begin <= now < end:
                    in_window += 1
            else:
                refused += 1
        limiter.close()
        return {
            "admitted": admitted,
            "in_window": in_window,
            "refused": refused,
            "remote_calls": limiter.remote_calls,
            "first_admitted": first,
        }
