"""What happened to the configuration, as plain data for the alert manager and the audit trail.

The ConfigActor does not know about alerts or audit records (other subsystems own those); it
keeps a bounded, sequence-numbered log of events that a consumer reads with ``since=`` (the last
sequence number it saw), the way a follower reads a log. Every text here is built from field
names, source names and error messages that carry no secret value.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

EventKind = Literal["applied", "rejected", "rolled_back", "source_failed", "source_recovered"]


@dataclass(frozen=True)
class ConfigEvent:
    """One thing that happened; ``seq`` rises by one per event, across kinds.

    ``applied`` and ``rejected`` map onto the alert manager's ``ConfigRejectedInput`` (an
    applied version resolves a rejection alert); ``source_failed``/``source_recovered`` onto
    ``ConfigSourceInput``.
    """

    seq: int
    at: float
    kind: EventKind
    message: str
    version: int | None = None
    source: str | None = None
    field: str | None = None
    severity: str = "info"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """A change that was refused; the running version (``kept_version``) stayed in force.

    ``trigger`` names the source(s) whose change was being applied; ``source`` the layer (or
    file) that set the offending ``field``, which is where the operator has to fix it.
    """

    at: float
    kind: Literal["validation", "compliance"]
    trigger: str
    field: str
    source: str | None
    message: str
    kept_version: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EventLog:
    """Bounded logs of events and rejections; the oldest entries fall off first."""

    def __init__(
        self, *, keep: int = 500, first_seq: int = 1, clock: Callable[[], float] = time.time
    ) -> None:
        # A restarted actor starts its numbers past the old ones (the actor passes a time-based
        # first_seq), so a consumer's ``since`` never hides new events.
        self._events: deque[ConfigEvent] = deque(maxlen=keep)
        self._rejections: deque[Rejection] = deque(maxlen=keep)
        self._seq = itertools.count(first_seq)
        self.last_seq = first_seq - 1
        self._clock = clock

    def emit(
        self,
        kind: EventKind,
        message: str,
        *,
        version: int | None = None,
        source: str | None = None,
        field: str | None = None,
        severity: str = "info",
    ) -> ConfigEvent:
        self.last_seq = next(self._seq)
        event = ConfigEvent(
            self.last_seq, self._clock(), kind, message, version, source, field, severity
        )
        self._events.append(event)
        return event

    def reject(
        self,
        kind: Literal["validation", "compliance"],
        *,
        trigger: str,
        field: str,
        source: str | None,
        message: str,
        kept_version: int,
    ) -> Rejection:
        """Log a refused change and the ``rejected`` event that announces it."""
        rejection = Rejection(self._clock(), kind, trigger, field, source, message, kept_version)
        self._rejections.append(rejection)
        self.emit(
            "rejected",
            message,
            version=kept_version,
            source=source or trigger,
            field=field,
            severity="high",
        )
        return rejection

    def restore(self, rejections: list[dict[str, Any]]) -> None:
        """Reload rejections kept across a restart (events are not: they were delivered live)."""
        for data in rejections:
            self._rejections.append(Rejection(**data))

    def events(self, since: int = 0) -> list[ConfigEvent]:
        return [e for e in self._events if e.seq > since]

    def rejections(self) -> list[Rejection]:
        return list(self._rejections)
