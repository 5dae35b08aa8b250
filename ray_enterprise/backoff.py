"""Delays between retries: doubling up to a cap, stretched by a random factor.

Akka's ``restartWithBackoff(min, max, randomFactor)``: the n-th delay is
``min(cap, base * 2**n) * (1 + random() * jitter)``. Without the random part, every client
that failed in the same outage (webhooks, config watchers, restarted services) retries in the
same instant, again and again; with it, they spread out. The random source is injected, so a
test fixes it and checks the figures.

This is the one copy: the registry's restart backoff, the alert handlers' retries and every
internal re-subscribe loop use it. It sits at the bottom layer so that all of them may.
"""

from __future__ import annotations

import random
from collections.abc import Callable

DEFAULT_JITTER = 0.2  # up to 20 % longer, Akka's usual randomFactor (Nomad adds up to 25 %)

Random = Callable[[], float]


def check_jitter(jitter: float) -> float:
    """``jitter`` if it is a fraction from 0 to 1; ValueError saying so otherwise."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a fraction from 0 to 1, got {jitter!r}")
    return jitter


def backoff_delay(
    retry: int,
    base_s: float,
    cap_s: float,
    jitter: float = DEFAULT_JITTER,
    rng: Random = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
    check_jitter(jitter)
    delay = min(base_s * 2 ** (retry - 1), cap_s)
    return delay * (1.0 + rng() * jitter) if jitter else delay


class Backoff:
    """The state of one retry loop: ``next()`` before each retry, ``reset()`` on success.

    For loops that used to keep ``delay = min(delay * 2, cap)`` by hand: the same doubling,
    jittered, in one place.
    """

    def __init__(
        self,
        base_s: float,
        cap_s: float,
        jitter: float = DEFAULT_JITTER,
        rng: Random = random.random,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.jitter = check_jitter(jitter)
        self._rng = rng
        self.retries = 0

    def next(self) -> float:
        """Seconds to wait before the next retry; each call counts one more."""
        self.retries += 1
        return backoff_delay(self.retries, self.base_s, self.cap_s, self.jitter, self._rng)

    def reset(self) -> None:
        """The call succeeded: the next failure starts again from ``base_s``."""
        self.retries = 0
