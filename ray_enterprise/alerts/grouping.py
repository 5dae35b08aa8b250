"""One notification stream: the alerts of one route that share the route's ``group_by`` values.

The timing is Alertmanager's. A new group waits ``group_wait`` so the burst that comes with an
outage lands in one message; after that it is looked at every ``group_interval`` and speaks only
when it has news for the people it told last time (Alertmanager's dedup rule): an alert fires
that they were not told of (new, or at a higher severity), a resolve notice is due, or
``repeat_interval`` passed since it last spoke while something unacknowledged still fires.
An alert that merely drops out (silenced, inhibited, resolved without a notice) is no news.
A flush that finds the route muted by its time intervals says nothing and remembers nothing,
so the first flush after the quiet hours tells what is still news then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ray_enterprise.alerts.model import Alert
from ray_enterprise.alerts.routing import Route

GroupState = frozenset[tuple[str, str]]


def group_state(alerts: Iterable[Alert]) -> GroupState:
    """What a notification said: which alerts fired, at which severity (ack is not a change)."""
    return frozenset((a.fingerprint, a.severity.value) for a in alerts)


@dataclass
class AlertGroup:
    route: Route
    labels: dict[str, str]
    next_flush_at: int
    members: set[str] = field(default_factory=set)  # fingerprints of firing alerts
    resolved: dict[str, Alert] = field(default_factory=dict)  # resolved, notice not yet sent
    notified: set[str] = field(default_factory=set)  # fingerprints last sent as firing
    last_state: GroupState = frozenset()
    last_notified_at: int | None = None

    def leave(self, resolved: Alert) -> None:
        """A member resolved; people who were told it fired get told it stopped."""
        self.members.discard(resolved.fingerprint)
        if resolved.fingerprint in self.notified and self.route.send_resolved:
            self.resolved[resolved.fingerprint] = resolved
        # Its next episode is news even without a resolve notice (where Alertmanager, which
        # keys by labels alone, would stay quiet until repeat_interval).
        self.last_state = frozenset(e for e in self.last_state if e[0] != resolved.fingerprint)

    def adopt_notified(self, alerts: Mapping[str, Alert], now: int) -> None:
        """After a restart: members notified before it count as told, so nobody is re-paged."""
        self.notified = {fp for fp in self.members if alerts[fp].notified_at is not None}
        self.last_state = group_state(alerts[fp] for fp in self.notified)
        if self.notified:
            self.last_notified_at = now
        if self.notified == self.members:
            self.next_flush_at = now + self.route.group_interval_ms

    def flush(
        self, alerts: Mapping[str, Alert], now: int, *, muted: bool = False
    ) -> tuple[list[Alert], list[Alert]]:
        """Take the group's turn at ``now``: return (firing, resolved) to notify, both empty
        when there is nothing new to say. Suppressed members are left out."""
        self.next_flush_at = now + self.route.group_interval_ms
        if muted:
            return [], []
        firing = sorted(
            (alerts[fp] for fp in self.members if not alerts[fp].suppressed),
            key=lambda a: (-a.severity.rank, a.starts_at),
        )
        resolved = list(self.resolved.values())
        self.resolved = {}
        state = group_state(firing)
        news = not state <= self.last_state or bool(resolved)
        repeat_due = (
            self.last_notified_at is not None
            and now - self.last_notified_at >= self.route.repeat_interval_ms
            and any(not a.acknowledged for a in firing)
        )
        if not (firing or resolved) or not (news or repeat_due):
            return [], []
        self.last_state = state
        self.notified = {a.fingerprint for a in firing}
        self.last_notified_at = now
        return firing, resolved
