"""Progress of `up`, `deploy` and `scale`: one line each time a service enters another stage.

A line per change rather than a redrawn display reads the same in a terminal, a CI log and a
pipe, needs no escape codes, and keeps the history of what happened when (a bake of a minute
per service is long enough for an operator to want to see it is under way).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def service_stages(
    services: Sequence[Mapping[str, Any]], phases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each service's stage: its state, the replicas that take calls when it has several, and
    the phase of an upgrade in progress (``starting``, ``baking``, ``committed``, ...)."""
    stages = {}
    for service in services:
        stage = str(service["state"])
        desired = int(service.get("desired_replicas", 1))
        taking = int(service.get("replicas", 0))
        if desired != 1 or taking > 1:
            stage += f", {taking}/{desired} replicas"
        phase = (phases or {}).get(str(service["name"]))
        if phase:
            stage = f"upgrade {phase.replace('_', ' ')}; {stage}"
        stages[str(service["name"])] = stage
    return stages


class StageLog:
    """Turns successive snapshots of stages into lines for the stages that changed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._began = clock()
        self._seen: dict[str, str] = {}

    def changes(self, stages: Mapping[str, str]) -> list[str]:
        at = f"[{self._clock() - self._began:6.1f}s]"
        lines = []
        for name, stage in stages.items():
            before = self._seen.get(name)
            if before is None:
                lines.append(f"{at} {name}: {stage}")
            elif before != stage:
                lines.append(f"{at} {name}: {before} -> {stage}")
        for name in self._seen.keys() - stages.keys():
            lines.append(f"{at} {name}: removed")
        self._seen = dict(stages)
        return lines


def follow(
    pending: Any,
    snapshot: Callable[[], Mapping[str, str]],
    echo: Callable[[str], None],
    *,
    interval_s: float = 0.5,
    log: StageLog | None = None,
) -> Any:
    """Wait for the Ray object ``pending``, echoing stage changes as they come; its result."""
    import ray

    log = log or StageLog()
    while True:
        ready, _ = ray.wait([pending], timeout=interval_s)
        try:
            current = snapshot()
        except Exception:  # the registry busy or restarting: the next poll will tell
            current = None
        if current is not None:
            for line in log.changes(current):
                echo(line)
        if ready:
            return ray.get(pending)


__all__ = ["StageLog", "follow", "service_stages"]
