"""When to apply a burst of source changes: consul-template's ``wait``, opened by a lone change.

Writes often come in bursts (a deploy touching a file and Vault, a script setting five keys
through NOTIFY); applying each would make a version per write. So changes are held until they
pause for ``wait_min_s``, or until the oldest is ``wait_max_s`` old. A change that arrives
when nothing was applied for ``wait_min_s`` is applied at once instead: it cannot be the tail
of a burst being coalesced, and waiting would only add ``wait_min_s`` to every lone write.
What follows it within the window is coalesced as before, so a burst makes at most the one
leading version and then one per pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class BurstWindow:
    """Tracks unapplied changes and says when they are due; time comes from ``clock``."""

    def __init__(
        self,
        wait_min_s: float,
        wait_max_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wait_min_s = wait_min_s
        self.wait_max_s = wait_max_s
        self._clock = clock
        self._first: float | None = None
        self._last = 0.0
        self._leading = False
        self._taken_at = float("-inf")

    @property
    def pending(self) -> bool:
        return self._first is not None

    def mark(self) -> None:
        """A change arrived and is not applied yet."""
        now = self._clock()
        if self._first is None:
            self._first = now
            self._leading = now - self._taken_at >= self.wait_min_s
        self._last = now

    def not_before(self) -> float:
        """The clock time before which an apply should wait (``-inf``: nothing holds it)."""
        if self._first is None:
            return float("-inf")
        if self._leading:
            return self._first
        return min(self._last + self.wait_min_s, self._first + self.wait_max_s)

    def taken(self) -> None:
        """The pending changes were taken for an apply; later ones start a new window."""
        self._first = None
        self._leading = False
        self._taken_at = self._clock()
