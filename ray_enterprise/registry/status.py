"""System status: one verdict (healthy | degraded | down) weighed by criticality.

A view over the supervisor's records, kept apart from them so the CLI, the HTTP API and the
status table all read the same plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
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

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
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
    score = round(100.0 * earned / total, 1)
    if not running and all(ServiceState(s.state) is ServiceState.STOPPED for s in services):
        verdict = "down"
        reasons = ["stopped"]
    elif critical_down or earned == 0.0:
        verdict = "down"
    elif reasons:
        verdict = "degraded"
    else:
        verdict = "healthy"
    return {"status": verdict, "score": score, "running": running, "reasons": reasons}
