"""Restart intensity and backoff for one service: pure, clock-free arithmetic over timestamps."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from ray_enterprise.backoff import Random, backoff_delay
from ray_enterprise.spec import RestartSpec


@dataclass
class RestartTracker:
    """OTP's "N restarts in T seconds" plus Kubernetes-style doubling backoff.

    ``exceeded()`` says the service has crashed too often to keep trying; ``next_delay()``
    doubles with each consecutive restart up to the cap, lengthened by up to ``spec.jitter``
    at random (``rng``, injected by tests), and ``note_healthy()`` forgets the streak once the
    service has stayed healthy for ``backoff_reset_s``.
    """

    spec: RestartSpec
    rng: Random = random.random
    _times: deque[float] = field(default_factory=deque)
    consecutive: int = 0

    def record(self, now: float) -> None:
        """Count a restart caused by a failure at ``now``."""
        self._times.append(now)
        self.consecutive += 1
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._times and now - self._times[0] > self.spec.window_s:
            self._times.popleft()

    def in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._times)

    def record_backoff(self) -> None:
        """A failed start: the next try waits longer, but the crash budget is not spent."""
        self.consecutive += 1

    def exceeded(self, now: float) -> bool:
        """True when the restarts within the window are more than ``max_restarts``."""
        return self.in_window(now) > self.spec.max_restarts

    def next_delay(self) -> float:
        """Seconds to wait before the next start: 0 for the first restart, then doubling.

        The first restart is immediate (OTP's choice): a one-off crash should cost only the
        time to start a new actor. Only a repeat offender waits.
        """
        if self.consecutive <= 1:
            return 0.0
        spec = self.spec
        return backoff_delay(
            self.consecutive - 1, spec.backoff_initial_s, spec.backoff_max_s, spec.jitter, self.rng
        )

    def note_healthy(self, healthy_since: float, now: float) -> None:
        """Reset the backoff streak after a sustained healthy period."""
        if self.consecutive and now - healthy_since >= self.spec.backoff_reset_s:
            self.consecutive = 0

    def reset(self) -> None:
        """Forget everything: an operator asked for a fresh start."""
        self._times.clear()
        self.consecutive = 0
