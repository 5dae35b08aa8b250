"""When each version passed each stage of propagation: for the benchmark and for diagnosis.

A change goes: the source wakes (poll tick or NOTIFY) -> the source has read the new values
(``detected``) -> the burst window closes and the apply starts -> the version is validated and
durably recorded (``applied``) -> the first push to a subscriber is sent -> the last push is
sent. The stages before ``applied`` happen before the version has a number, so they are held as
*pending* and handed to the version that the apply produces (or dropped when it produces none).

Stamps are wall-clock times (``clock``, ``time.time`` by default) so that a driver in another
process can set them against the moment it wrote. Recording costs a dict write per stage and
per push; only the last ``keep`` versions are kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

#: Stages in the order a change passes them.
STAGES = ("woke", "detected", "apply_start", "applied", "first_push", "last_push")


class StageLog:
    """Per-version stage times; ``pending`` stages wait for the version they lead to."""

    def __init__(self, *, keep: int = 64, clock: Callable[[], float] = time.time) -> None:
        self._keep = keep
        self._clock = clock
        self._pending: dict[str, float] = {}
        self._versions: OrderedDict[int, dict[str, float]] = OrderedDict()

    def pending(self, stage: str, at: float | None = None) -> None:
        """A stage of the change not applied yet; the first stamp of a burst is kept."""
        self._pending.setdefault(stage, self._clock() if at is None else at)

    def begin(self, version: int | None) -> None:
        """The pending stages led to ``version`` (``None``: to no new version, drop them)."""
        pending, self._pending = self._pending, {}
        if version is None:
            return
        self._versions[version] = {**pending, "applied": self._clock()}
        while len(self._versions) > self._keep:
            self._versions.popitem(last=False)

    def pushed(self, version: int) -> None:
        """A push of ``version`` was sent: the first one and the latest one are kept."""
        stages = self._versions.get(version)
        if stages is None:
            return
        now = self._clock()
        stages.setdefault("first_push", now)
        stages["last_push"] = now

    def get(self, version: int) -> dict[str, float]:
        """The stages ``version`` passed so far (empty when unknown or forgotten)."""
        return dict(self._versions.get(version, {}))
