"""System status: one verdict (healthy | degraded | down) weighed by criticality.

A view over the supervisor's records, kept apart from them so the CLI, the HTTP API and the
status table all read the same plain data.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ray_enterprise.redaction import redact_text
from ray_enterprise.registry.supervision import ServiceRecord, ServiceState
from ray_enterprise.spec import Criticality

#: How much one service of each criticality counts in the score.
WEIGHTS: Mapping[Criticality, float] = {
    Criticality.CRITICAL: 8.0,
    Criticality.HIGH: 4.0,
    Criticality.MEDIUM: 2.0,
    Criticality.LOW: 1.0,
}

#: Credit a service earns toward the score in each state.
_CREDIT: Mapping[ServiceState, float] = {
    ServiceState.HEALTHY: 1.0,
    ServiceState.DEGRADED: 0.5,
    ServiceState.UNHEALTHY: 0.25,
}


@dataclass(frozen=True)
class ServiceStatus:
    """One service as the registry sees it right now."""

    name: str
    state: str
    healthy: bool
    criticality: str
    depends_on: tuple[str, ...]
    generation: int
    restarts: int
    consecutive_failures: int
    last_error: str | None
    state_since: float
    node_id: str | None = None
    actor_name: str | None = None
    desired_replicas: int = 1
    replicas: int = 0  # replicas taking calls now
    replica_ids: tuple[str, ...] = ()
    upgrading: bool = False
    not_ready: tuple[str, ...] = ()  # live replicas whose check_ready said no: no calls
    pending: tuple[str, ...] = ()  # replicas no node has room for (max_replicas_per_node)
    # While RESTARTING: when the next start is due (epoch s), backoff and jitter included.
    restart_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)  # flat fields: what asdict gives, without its deep copies
        data["depends_on"] = list(self.depends_on)
        data["replica_ids"] = list(self.replica_ids)
        data["not_ready"] = list(self.not_ready)
        data["pending"] = list(self.pending)
        return data


def service_status(
    rec: ServiceRecord,
    *,
    node_id: str | None = None,
    actor_name: str | None = None,
    replicas: int = 0,
    replica_ids: tuple[str, ...] = (),
    upgrading: bool = False,
    not_ready: tuple[str, ...] = (),
    pending: tuple[str, ...] = (),
) -> ServiceStatus:
    return ServiceStatus(
        name=rec.spec.name,
        state=rec.state.value,
        healthy=rec.state is ServiceState.HEALTHY,
        criticality=rec.spec.criticality.value,
        depends_on=rec.spec.depends_on,
        generation=rec.generation,
        restarts=rec.restarts,
        consecutive_failures=rec.consecutive_failures,
        last_error=redact_text(rec.last_error) if rec.last_error else None,
        state_since=rec.state_since,
        node_id=node_id,
        actor_name=actor_name,
        desired_replicas=rec.spec.replicas,
        replicas=replicas,
        replica_ids=replica_ids,
        upgrading=upgrading,
        not_ready=not_ready,
        pending=pending,
        restart_at=rec.restart_at if rec.state is ServiceState.RESTARTING else None,
    )


def overall_status(services: Iterable[ServiceStatus], *, running: bool) -> dict[str, Any]:
    """The verdict and the score behind it.

    ``down``: a critical service is not up, or nothing is up at all; ``degraded``: anything else
    short of every service healthy. The score (0-100) weighs each service by criticality, so a
    low-criticality worker that fails costs less than the database.
    """
    services = list(services)
    if not services:
        return {"status": "down", "score": 0.0, "running": running, "reasons": ["no services"]}
    total = 0.0
    earned = 0.0
    reasons: list[str] = []
    critical_down = False
    for svc in services:
        crit = Criticality(svc.criticality)
        state = ServiceState(svc.state)
        weight = WEIGHTS[crit]
        total += weight
        earned += weight * _CREDIT.get(state, 0.0)
        if state is not ServiceState.HEALTHY:
            reasons.append(f"{svc.name} ({crit.value}) is {state.value}")
            if crit is Criticality.CRITICAL and state not in (
                ServiceState.DEGRADED,
                ServiceState.UNHEALTHY,
            ):
                critical_down = True
    all_stopped = all(ServiceState(s.state) is ServiceState.STOPPED for s in services)
    return verdict_of(running, all_stopped, critical_down, earned, total, reasons)


def verdict_of(
    running: bool,
    all_stopped: bool,
    critical_down: bool,
    earned: float,
    total: float,
    reasons: list[str],
) -> dict[str, Any]:
    """The overall status from its parts; one rule for the full recomputation and the
    snapshot, so that the two cannot drift apart."""
    score = round(100.0 * earned / total, 1)
    if not running and all_stopped:
        return {"status": "down", "score": score, "running": running, "reasons": ["stopped"]}
    if critical_down or earned == 0.0:
        verdict = "down"
    elif reasons:
        verdict = "degraded"
    else:
        verdict = "healthy"
    return {"status": verdict, "score": score, "running": running, "reasons": reasons}


class StatusSnapshot:
    """The system status kept up to date as services change, so that a status call costs what
    changed since the last one, not a walk over the fleet.

    The registry puts the new :class:`ServiceStatus` of each service the supervisor or the
    replicas touched; the verdict's sums are adjusted by the difference. What :meth:`view`
    returns equals :func:`overall_status` over every service (the unit tests hold it to that
    after random sequences of events). Weights and credits are kept as integers (quarters),
    so the running sums never drift from a fresh sum.
    """

    def __init__(self) -> None:
        self._services: dict[str, ServiceStatus] = {}
        self._json: dict[str, dict[str, Any]] = {}
        self._order: tuple[str, ...] = ()
        self._position: dict[str, int] = {}
        self._levels: list[list[str]] = []
        self._total = 0  # sum of weights
        self._earned_quarters = 0  # sum of weight * credit * 4
        self._reasons: dict[str, str] = {}  # service -> why it counts against the verdict
        self._reason_keys: list[tuple[int, str]] = []  # (start position, service), sorted
        self._critical_down: set[str] = set()
        self._not_stopped: set[str] = set()
        # Services in start order as JSON, replaced in place; a slot is None until put.
        self._listing: list[dict[str, Any] | None] = []
        self._unlisted = 0  # slots still None
        self._reasons_listed: list[str] | None = None

    def set_levels(self, levels: Iterable[Iterable[str]]) -> None:
        """The start order changed (a registration): services are listed in it."""
        self._levels = [list(level) for level in levels]
        self._order = tuple(n for level in self._levels for n in level)
        self._position = {n: i for i, n in enumerate(self._order)}
        self._listing = [self._json.get(n) for n in self._order]
        self._unlisted = self._listing.count(None)
        far = len(self._order)
        self._reason_keys = sorted((self._position.get(n, far), n) for n in self._reasons)
        self._reasons_listed = None

    def put(self, status: ServiceStatus) -> None:
        """Replace what is shown of one service."""
        self.drop(status.name)
        name = status.name
        crit = Criticality(status.criticality)
        state = ServiceState(status.state)
        weight = int(WEIGHTS[crit])
        self._services[name] = status
        self._json[name] = status.to_json()
        position = self._position.get(name)
        if position is not None:
            self._unlisted -= self._listing[position] is None
            self._listing[position] = self._json[name]
        self._total += weight
        self._earned_quarters += weight * int(4 * _CREDIT.get(state, 0.0))
        if state is not ServiceState.HEALTHY:
            self._reasons[name] = f"{name} ({crit.value}) is {state.value}"
            bisect.insort(self._reason_keys, self._reason_key(name))
            self._reasons_listed = None
            if crit is Criticality.CRITICAL and state not in (
                ServiceState.DEGRADED,
                ServiceState.UNHEALTHY,
            ):
                self._critical_down.add(name)
        if state is not ServiceState.STOPPED:
            self._not_stopped.add(name)

    def drop(self, name: str) -> None:
        """Forget one service (unregistered, or about to be put again)."""
        old = self._services.pop(name, None)
        if old is None:
            return
        del self._json[name]
        position = self._position.get(name)
        if position is not None:
            self._listing[position] = None
            self._unlisted += 1
        weight = int(WEIGHTS[Criticality(old.criticality)])
        self._total -= weight
        self._earned_quarters -= weight * int(4 * _CREDIT.get(ServiceState(old.state), 0.0))
        if self._reasons.pop(name, None) is not None:
            key = self._reason_key(name)
            del self._reason_keys[bisect.bisect_left(self._reason_keys, key)]
            self._reasons_listed = None
        self._critical_down.discard(name)
        self._not_stopped.discard(name)

    def _reason_key(self, name: str) -> tuple[int, str]:
        return (self._position.get(name, len(self._order)), name)

    def clear(self) -> None:
        for name in list(self._services):
            self.drop(name)

    def status_of(self, name: str) -> ServiceStatus | None:
        return self._services.get(name)

    def services(self) -> list[dict[str, Any]]:
        """Every service's status as JSON, in start order: one list, each entry replaced in
        place when its service changes, so a call costs nothing per service (a caller that
        keeps it across changes copies it first)."""
        if self._unlisted:  # only before every service was put once
            return [j for j in self._listing if j is not None]
        return self._listing  # type: ignore[return-value]  # no None left

    def levels(self) -> list[list[str]]:
        return self._levels

    def view(self, *, running: bool) -> dict[str, Any]:
        """The verdict, as :func:`overall_status` gives it over every service."""
        if not self._services:
            return {"status": "down", "score": 0.0, "running": running, "reasons": ["no services"]}
        if self._reasons_listed is None:
            self._reasons_listed = [self._reasons[n] for _, n in self._reason_keys]
        reasons = list(self._reasons_listed)
        earned = self._earned_quarters / 4
        return verdict_of(
            running, not self._not_stopped, bool(self._critical_down), earned, self._total, reasons
        )
