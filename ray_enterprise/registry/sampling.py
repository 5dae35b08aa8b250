"""What the bake gate and the autoscaler read from running replicas: calls, errors, call times
and calls in flight counted inside each replica, health checks counted by the registry, anomaly
alerts on the service from the alert manager and the health score from the observability actor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ray_enterprise import _kv, system_actors
from ray_enterprise.registry.gates import CallStats
from ray_enterprise.registry.replicas import Replica

if TYPE_CHECKING:  # the wrapper imports Ray and the service module; callers already have it
    from ray_enterprise.registry.replica_wrapper import ReplicaActor


async def call_stats(actors: Mapping[str, ReplicaActor], replicas: list[Replica]) -> CallStats:
    """Calls and errors counted inside the replicas; one that does not answer adds none."""

    async def one(replica: Replica) -> CallStats:
        actor = actors.get(replica.id)
        if actor is None:
            return CallStats()
        try:
            return CallStats.from_json(await actor.stats())
        except Exception:
            return CallStats()

    return CallStats.total(await asyncio.gather(*(one(r) for r in replicas)))


async def anomaly_counts(name: str, began_ms: int, bake_s: float) -> tuple[int | None, int | None]:
    """Anomaly alerts on the service that began in the bake period, and in as long before
    it (blue's own rate); ``(None, None)`` when no alert manager runs."""
    import ray

    try:
        actor = ray.get_actor(system_actors.ALERTS, namespace=_kv.NAMESPACE)
        alerts = await asyncio.wait_for(actor.alerts.remote(service=name), timeout=5.0)
    except Exception:
        return None, None
    window_ms = int(bake_s * 1000)
    starts = [
        int(a.get("starts_at", 0))
        for a in alerts
        if a.get("labels", {}).get("alertname") == "AnomalyDetected"
    ]
    before = sum(1 for t in starts if began_ms - window_ms <= t < began_ms)
    during = sum(1 for t in starts if t >= began_ms)
    return before, during


async def health_score() -> float | None:
    """The system health score now; ``None`` when no observability actor runs or answers."""
    import ray

    try:
        actor = ray.get_actor(system_actors.OBSERVABILITY, namespace=_kv.NAMESPACE)
        report = await asyncio.wait_for(actor.get_system_health.remote(), timeout=5.0)
        return float(report["score"])
    except Exception:
        return None


def health_checks(replicas: list[Replica]) -> tuple[int, int]:
    return sum(r.passed for r in replicas), sum(r.failed for r in replicas)
