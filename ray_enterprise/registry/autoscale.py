"""How many replicas a service should run for the load it has now. Pure, no Ray.

The metric is queue depth: calls in flight per replica, counted inside each replica (the same
counters a drain waits on). Up at once, when the load needs it; down only after the load has
stayed low for ``downscale_delay_s``, so a dip between bursts does not cost a cold start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Autoscaler:
    """Per service; ``decide`` is called with each new sample of the calls in flight."""

    min_replicas: int
    max_replicas: int
    target_inflight: float
    downscale_delay_s: float
    _low_since: float | None = None

    def wanted(self, inflight: float) -> int:
        """Replicas for ``inflight`` calls at ``target_inflight`` each, within the bounds."""
        need = math.ceil(inflight / self.target_inflight) if inflight > 0 else 0
        return max(self.min_replicas, min(self.max_replicas, need))

    def decide(self, current: int, inflight: float, now: float) -> int:
        """The replica count to run from now on."""
        wanted = self.wanted(inflight)
        if wanted >= current:
            self._low_since = None
            return wanted
        if self._low_since is None:
            self._low_since = now
        if now - self._low_since >= self.downscale_delay_s:
            self._low_since = None
            return wanted
        return current
