"""Which service state changes the registry tells the alerts: the dedup rule, no Ray, no I/O.

FAILED, DEGRADED and an unplanned RESTARTING raise alerts; getting healthy again (or being
stopped) resolves them. The rule reads every transition since the last tick, not the states
now, so a restart quicker than one tick is told too; it remembers the last state told per
service, so one state is told once however many ticks it lasts. The registry persists that
memory before it sends, and sends on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ray_enterprise.registry.supervision import Transition

ALERTING = frozenset({"failed", "degraded", "restarting"})  # states that raise an alert
SETTLED = frozenset({"healthy", "stopped"})  # states that resolve them


@dataclass(frozen=True)
class HealthReport:
    """One state to tell the alerts (``report_health_transition``'s arguments)."""

    service: str
    state: str
    criticality: str
    reason: str


class AlertReports:
    """The last state told to the alerts per service, and what to tell next."""

    def __init__(self, told: Mapping[str, str] | None = None) -> None:
        self.told: dict[str, str] = dict(told or {})

    def take(
        self, transitions: Iterable[Transition], criticality: Callable[[str], str | None]
    ) -> list[HealthReport]:
        """The reports these transitions call for; ``criticality(name)`` is None for a
        service unregistered since (nothing to tell about it).

        The first settled state of a service is always told (nothing told yet is not
        settled), so a registry that restarted resolves what recovered while it was down.
        """
        reports = []
        for change in transitions:
            state = change.state.value
            if change.planned:
                # An operator's restart is no fault. Forget what was told, so that its end is
                # told whatever the alert actor caught up on meanwhile (resolving is harmless).
                self.told.pop(change.name, None)
                continue
            told = self.told.get(change.name)
            if (state in ALERTING and state != told) or (state in SETTLED and told not in SETTLED):
                level = criticality(change.name)
                if level is None:
                    continue
                self.told[change.name] = state
                reports.append(HealthReport(change.name, state, level, change.reason or ""))
        return reports

    def again(self, services: Iterable[tuple[str, str]]) -> list[HealthReport]:
        """After a registry restart, for ``(name, criticality)`` of every service: what fired
        before may never have left the dead process, so it is told again (an open alert only
        refreshes); the next settled state resolves it as usual."""
        why = "told again after a registry restart"
        return [
            HealthReport(name, told, level, why)
            for name, level in services
            if (told := self.told.get(name)) in ALERTING
        ]

    def clear(self) -> None:
        self.told.clear()
