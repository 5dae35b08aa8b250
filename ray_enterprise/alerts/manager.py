"""The alert state machine: signals in, notifications and state changes out.

:class:`AlertManager` is a plain object with no I/O: input methods (``ingest``, ``acknowledge``,
``silence`` ...) change state, and ``tick(now)`` returns the notifications that are due. Every
state change is also queued as an :class:`AlertChange` for durable history
(``take_changes()``), so an actor holding this object writes history, delivers notifications
and schedules the next tick — and a test drives it with a fake clock in milliseconds.

Group timing lives in :mod:`grouping`, routes, quiet hours and inhibition in :mod:`routing`,
escalation policies in :mod:`escalation`; this module ties them to the alerts' lifecycle::

    >>> from ray_enterprise.alerts.model import AlertSignal, Severity
    >>> from ray_enterprise.alerts.routing import policy_from_config
    >>> policy = policy_from_config({"route": {"handlers": ["log"], "group_wait": "10s"}})
    >>> now = [0]
    >>> am = AlertManager(policy, clock=lambda: now[0])
    >>> _ = am.ingest(AlertSignal({"alertname": "Down", "service": "api"}, Severity.HIGH))
    >>> am.tick(9_999)
    []
    >>> [n.handlers for n in am.tick(10_000)]
    [('log',)]
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from ray_enterprise.alerts.errors import (
    AlertInputError,
    AlertNotFoundError,
    SilenceNotFoundError,
)
from ray_enterprise.alerts.escalation import EscalationPolicy, escalate, hand_back
from ray_enterprise.alerts.grouping import AlertGroup
from ray_enterprise.alerts.matchers import Matcher, Silence, parse_matchers
from ray_enterprise.alerts.model import (
    Alert,
    AlertChange,
    AlertSignal,
    AlertStatus,
    ChangeKind,
    Notification,
    NotificationKind,
    alert_id,
    fingerprint,
)
from ray_enterprise.alerts.routing import AlertPolicy, Route, inhibition_index
from ray_enterprise.alerts.sources import AlertInput

Found = tuple[EscalationPolicy, Route, str]
"""An alert's escalating route: its policy, the route and the alert's group key there."""


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AlertManager:
    """Holds open alerts, groups, silences and escalation timers for one alert policy."""

    def __init__(
        self, policy: AlertPolicy | None = None, *, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        self._policy = policy or AlertPolicy()
        self._clock = clock
        self._alerts: dict[str, Alert] = {}  # open (firing) alerts by fingerprint
        # When each fingerprint last resolved: a late signal of an episode that began before
        # then (several collectors each telling one outage after it) is not a new episode.
        self._resolved_at: dict[str, int] = {}
        # fingerprint -> (route, group key) it joined; kept so a severity change cannot lose it
        self._routes: dict[str, list[tuple[Route, str]]] = {}
        self._groups: dict[str, AlertGroup] = {}
        self._silences: dict[str, Silence] = {}
        self._changes: list[AlertChange] = []
        # Suppression depends only on which alerts fire at which severity and which silences
        # are active; skipping the recompute when neither changed keeps idle ticks cheap.
        self._revision = 0
        self._suppression_basis: tuple[int, frozenset[str]] | None = None

    @property
    def policy(self) -> AlertPolicy:
        return self._policy

    # -- inputs -------------------------------------------------------------------------------

    def ingest(self, item: AlertInput | AlertSignal) -> list[Alert]:
        """Apply one input (any source's ``to_signals()`` or a bare signal); return the alerts
        it touched. Duplicates of an open alert only refresh it: one problem, one alert."""
        signals = (item,) if isinstance(item, AlertSignal) else item.to_signals()
        now = self._clock()
        touched = []
        for signal in signals:
            alert = self._apply(signal, now)
            if alert is not None:
                touched.append(alert)
        return touched

    def ingest_many(self, items: Iterable[AlertInput | AlertSignal]) -> int:
        """Apply a batch; returns how many alerts it touched (the actor's burst path)."""
        return sum(len(self.ingest(item)) for item in items)

    def acknowledge(self, id_or_fingerprint: str, by: str, reason: str = "") -> Alert:
        """Someone owns the alert: escalation stops and repeats stop until unacknowledged."""
        alert = self.get(id_or_fingerprint)
        now = self._clock()
        alert = replace(
            alert,
            acknowledged_by=by,
            ack_reason=reason,
            acknowledged_at=now,
            escalation_due_at=None,
            updated_at=now,
        )
        self._alerts[alert.fingerprint] = alert
        self._record(ChangeKind.ACKNOWLEDGED, now, alert, by, reason)
        return alert

    def unacknowledge(self, id_or_fingerprint: str, by: str, reason: str = "") -> Alert:
        """Hand the alert back: escalation resumes with the next step, timed from now.

        Unacknowledging an alert nobody acknowledged changes nothing (and records nothing).
        """
        alert = self.get(id_or_fingerprint)
        if not alert.acknowledged:
            return alert
        now = self._clock()
        policy = self._escalation(alert.fingerprint)
        due = None
        if alert.notified_at is not None and policy is not None:
            due = policy.due_after(alert.escalation_step, now)
        alert = replace(
            alert,
            acknowledged_by=None,
            ack_reason=None,
            acknowledged_at=None,
            escalation_due_at=due,
            updated_at=now,
        )
        self._alerts[alert.fingerprint] = alert
        self._record(ChangeKind.UNACKNOWLEDGED, now, alert, by, reason)
        return alert

    def silence(
        self,
        matchers: str | Sequence[Matcher],
        duration_ms: int,
        created_by: str,
        comment: str = "",
        *,
        starts_at: int | None = None,
    ) -> Silence:
        """Mute matching alerts for ``duration_ms``; takes effect at the next ``tick``."""
        parsed = parse_matchers(matchers) if isinstance(matchers, str) else tuple(matchers)
        if duration_ms <= 0:
            raise AlertInputError(f"a silence needs a positive duration, got {duration_ms} ms")
        start = self._clock() if starts_at is None else starts_at
        silence = Silence(
            id=uuid.uuid4().hex[:12],
            matchers=parsed,
            starts_at=start,
            ends_at=start + duration_ms,
            created_by=created_by,
            comment=comment,
        )
        self._silences[silence.id] = silence
        return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now; its alerts are notified at their group's next flush."""
        if silence_id not in self._silences:
            raise SilenceNotFoundError(silence_id)
        silence = replace(self._silences.pop(silence_id), ends_at=self._clock())
        return silence

    def set_policy(self, policy: AlertPolicy) -> None:
        """Swap routes and inhibition (a config change) and regroup open alerts under them."""
        self._policy = policy
        self.restore(list(self._alerts.values()), list(self._silences.values()))

    def restore(self, alerts: Iterable[Alert], silences: Iterable[Silence] = ()) -> None:
        """Rebuild from history after a restart: open alerts, their groups and silences.

        Alerts already notified count as told, so a restarted actor does not page again.
        """
        now = self._clock()
        self._alerts = {a.fingerprint: a for a in alerts if a.firing}
        self._silences = {s.id: s for s in silences if s.ends_at > now}
        self._groups = {}
        self._routes = {}
        self._revision += 1
        for alert in self._alerts.values():
            self._join_groups(alert, now)
        for group in self._groups.values():
            group.adopt_notified(self._alerts, now)

    # -- reading ------------------------------------------------------------------------------

    def get(self, id_or_fingerprint: str) -> Alert:
        alert = self._alerts.get(id_or_fingerprint)
        if alert is not None:
            return alert
        for alert in self._alerts.values():
            if alert.id == id_or_fingerprint:
                return alert
        raise AlertNotFoundError(id_or_fingerprint, [a.id for a in self._alerts.values()])

    def alerts(self) -> list[Alert]:
        """Open alerts, most severe and oldest first."""
        return sorted(self._alerts.values(), key=lambda a: (-a.severity.rank, a.starts_at))

    def silences(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: s.ends_at)

    def take_changes(self) -> list[AlertChange]:
        """State changes since the last call, oldest first, for the history writer."""
        changes, self._changes = self._changes, []
        return changes

    def next_due(self) -> int | None:
        """The earliest time ``tick`` has work to do, so the actor can sleep until then."""
        times = [g.next_flush_at for g in self._groups.values()]
        times += [s.ends_at for s in self._silences.values()]
        times += [s.starts_at for s in self._silences.values() if s.starts_at > self._clock()]
        for alert in self._alerts.values():
            if alert.expires_at is not None:
                times.append(alert.expires_at)
            # A suppressed alert's escalation waits for the suppression to end, which is a
            # change of its own: counting it here would make the actor tick without pause.
            if alert.escalation_due_at is not None and not alert.suppressed:
                times.append(alert.escalation_due_at)
            if alert.acknowledged_at is not None:
                policy = self._escalation(alert.fingerprint)
                if policy is not None and policy.ack_timeout_ms is not None:
                    times.append(alert.acknowledged_at + policy.ack_timeout_ms)
        return min(times, default=None)

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: int | None = None) -> list[Notification]:
        """Do what is due at ``now``: expiries, suppression, escalation, group flushes."""
        now = self._clock() if now is None else now
        due = [a for a in self._alerts.values() if a.expires_at is not None and a.expires_at <= now]
        for alert in due:
            self._resolve(alert, now)
        self._silences = {k: s for k, s in self._silences.items() if s.ends_at > now}
        self._update_suppression(now)
        out = self._ack_timeouts(now)
        out += self._escalate(now)
        self._update_suppression(now)  # a raised severity may now inhibit others
        for key in [k for k, g in self._groups.items() if g.next_flush_at <= now]:
            out.extend(self._flush(key, now))
        return out

    # -- internals ----------------------------------------------------------------------------

    def _apply(self, signal: AlertSignal, now: int) -> Alert | None:
        fp = fingerprint(signal.labels)
        current = self._alerts.get(fp)
        expires = None if signal.expires_after_ms is None else now + signal.expires_after_ms
        if not signal.firing:
            return None if current is None else self._resolve(current, now)
        if current is None:
            start = now if signal.starts_at is None else min(signal.starts_at, now)
            if signal.starts_at is not None and start <= self._resolved_at.get(fp, -1):
                return None  # told and resolved already
            alert = Alert(
                id=alert_id(fp, start),
                fingerprint=fp,
                labels=dict(signal.labels),
                severity=signal.severity,
                annotations=dict(signal.annotations),
                source=signal.source,
                status=AlertStatus.FIRING,
                starts_at=start,
                updated_at=now,
                expires_at=expires,
            )
            self._alerts[fp] = alert
            self._revision += 1
            self._join_groups(alert, now)
            self._record(ChangeKind.FIRED, now, alert)
            return alert
        severity = max(current.severity, signal.severity)
        alert = replace(
            current,
            severity=severity,
            annotations={**current.annotations, **signal.annotations},
            updated_at=now,
            expires_at=expires,
            occurrences=current.occurrences + 1,
        )
        self._alerts[fp] = alert
        if severity is not current.severity:
            self._revision += 1
            self._record(ChangeKind.SEVERITY_CHANGED, now, alert)
        return alert

    def _resolve(self, alert: Alert, now: int) -> Alert:
        resolved = replace(
            alert, status=AlertStatus.RESOLVED, ends_at=now, updated_at=now, escalation_due_at=None
        )
        del self._alerts[alert.fingerprint]
        self._resolved_at[alert.fingerprint] = now
        self._revision += 1
        for _, key in self._routes.pop(alert.fingerprint, []):
            if key in self._groups:
                self._groups[key].leave(resolved)
        self._record(ChangeKind.RESOLVED, now, resolved)
        return resolved

    def _join_groups(self, alert: Alert, now: int) -> None:
        joined = []
        for route in self._policy.route.match(alert.match_labels()):
            key, labels = route.group_key(alert.match_labels())
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = AlertGroup(route, labels, now + route.group_wait_ms)
            group.members.add(alert.fingerprint)
            joined.append((route, key))
        self._routes[alert.fingerprint] = joined

    def _escalation(self, fp: str) -> EscalationPolicy | None:
        found = self._escalation_route(fp)
        return None if found is None else found[0]

    def _escalation_route(self, fp: str) -> Found | None:
        """The first of the alert's routes that escalates, with its policy and group key."""
        for route, key in self._routes.get(fp, []):
            policy = route.escalation_for()
            if policy is not None:
                return policy, route, key
        return None

    def _page(
        self, kind: NotificationKind, to: tuple[str, ...], alert: Alert, at: Found, now: int
    ) -> Notification:
        """One alert told to ``to`` outside its group's turn, named by its escalating route."""
        _, route, key = at
        return Notification(
            kind=kind,
            handlers=to,
            route=route.path,
            group_key=key,
            group_labels=dict(self._groups[key].labels) if key in self._groups else {},
            alerts=(alert,),
            created_at=now,
            escalation_step=alert.escalation_step,
        )

    def _update_suppression(self, now: int) -> None:
        silences = [s for s in self._silences.values() if s.active(now)]
        basis = (self._revision, frozenset(s.id for s in silences))
        if basis == self._suppression_basis:
            return
        self._suppression_basis = basis
        inhibitors = inhibition_index(self._policy.inhibit_rules, self._alerts.values())
        for fp, alert in list(self._alerts.items()):
            labels = alert.match_labels()
            silenced = tuple(s.id for s in silences if s.matches(labels))
            inhibited = tuple(sorted(inhibitors(alert)))
            if silenced == alert.silenced_by and inhibited == alert.inhibited_by:
                continue
            was = alert.suppressed
            alert = replace(alert, silenced_by=silenced, inhibited_by=inhibited)
            self._alerts[fp] = alert
            if silenced and not was:
                self._record(ChangeKind.SILENCED, now, alert, reason=",".join(silenced))
            elif inhibited and not was:
                self._record(ChangeKind.INHIBITED, now, alert, reason=",".join(inhibited))
            elif was and not alert.suppressed:
                self._record(ChangeKind.UNSUPPRESSED, now, alert)

    def _escalate(self, now: int) -> list[Notification]:
        out = []
        for fp, alert in list(self._alerts.items()):
            due = alert.escalation_due_at
            if due is None or due > now:  # the common case, decided before any lookup
                continue
            found = self._escalation_route(fp)
            raised = None if found is None else escalate(alert, found[0], now)
            if found is None or raised is None:
                continue
            level = found[0].level(raised.escalation_step)
            self._alerts[fp] = raised
            self._revision += int(level.raise_severity)
            self._record(ChangeKind.ESCALATED, now, raised, reason=f"step {raised.escalation_step}")
            if level.handlers:
                kind = NotificationKind.ESCALATION
                out.append(self._page(kind, level.handlers, raised, found, now))
        return out

    def _ack_timeouts(self, now: int) -> list[Notification]:
        """Acknowledged too long ago and still firing: hand it back and tell its level again."""
        out = []
        for fp, alert in list(self._alerts.items()):
            found = self._escalation_route(fp) if alert.acknowledged_at is not None else None
            back = None if found is None else hand_back(alert, found[0], now)
            if found is None or back is None:
                continue
            policy, route, _ = found
            self._alerts[fp] = back
            reason = f"still firing {policy.ack_timeout_ms}ms after {alert.acknowledged_by} acked"
            self._record(ChangeKind.UNACKNOWLEDGED, now, back, "ack_timeout", reason)
            if back.notified_at is not None and not back.suppressed:
                handlers = policy.level(back.escalation_step).handlers or route.handlers
                out.append(self._page(NotificationKind.ACK_TIMEOUT, handlers, back, found, now))
        return out

    def _flush(self, key: str, now: int) -> list[Notification]:
        group = self._groups[key]
        firing, resolved = group.flush(
            self._alerts, now, muted=self._policy.muted(group.route, now)
        )
        if not group.members:
            del self._groups[key]
        if not (firing or resolved):
            return []
        pages: list[Notification] = []
        firing = [self._first_notified(a, now, pages) for a in firing]
        notice = Notification(
            kind=NotificationKind.GROUP,
            handlers=group.route.handlers,
            route=group.route.path,
            group_key=key,
            group_labels=dict(group.labels),
            alerts=tuple(firing + resolved),
            created_at=now,
        )
        return [notice, *pages]

    def _first_notified(self, alert: Alert, now: int, pages: list[Notification]) -> Alert:
        """Someone has been told: start the escalation clock from here, and page the policy's
        first level when it names anyone (a list of steps starts with no one)."""
        if alert.notified_at is not None:
            return alert
        found = self._escalation_route(alert.fingerprint)
        due = None
        if found is not None and not alert.acknowledged:
            due = found[0].due_after(0, now)
        alert = replace(alert, notified_at=now, escalation_due_at=due)
        self._alerts[alert.fingerprint] = alert
        self._record(ChangeKind.NOTIFIED, now, alert)
        first = () if found is None or alert.acknowledged else found[0].levels[0].handlers
        if found is not None and first:
            pages.append(self._page(NotificationKind.ESCALATION, first, alert, found, now))
        return alert

    def _record(
        self,
        kind: ChangeKind,
        now: int,
        alert: Alert,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        self._changes.append(AlertChange(kind, now, alert, actor, reason))
