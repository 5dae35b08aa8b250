"""Delays between retries: doubling up to a cap, stretched by a random factor.

Akka's ``restartWithBackoff(min, max, randomFactor)``: the n-th delay is
``min(cap, base * 2**n) * (1 + random() * jitter)``. Without the random part, every webhook
that failed in the same outage retries in the same instant, again and again; with it, they
spread out. The random source is injected, so a test fixes it and checks the figures.
"""

from __future__ import annotations

import random
from collections.abc import Callable

DEFAULT_JITTER = 0.2  # up to 20 % longer, Akka's usual randomFactor (Nomad adds up to 25 %)


def backoff_delay(
    retry: int,
    base_s: float,
    cap_s: float,
    jitter: float = DEFAULT_JITTER,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a fraction from 0 to 1, got {jitter!r}")
    delay = min(base_s * 2 ** (retry - 1), cap_s)
    return delay * (1.0 + rng() * jitter) if jitter else delay
