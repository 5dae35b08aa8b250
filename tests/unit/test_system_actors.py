"""The system actors' names, spelled once in ``system_actors``."""

from __future__ import annotations

from ray_enterprise import system_actors
from ray_enterprise.alerts.actor import ACTOR_NAME as ALERTS
from ray_enterprise.anomaly.shard import shard_name
from ray_enterprise.config.actor import ACTOR_NAME as CONFIG
from ray_enterprise.observability.collector import CENTRAL_NAME, collector_name
from ray_enterprise.registry.replicas import parse_replica_id
from ray_enterprise.security.limiter_actor import LIMITER_NAME


def test_each_subsystem_names_its_actor_from_system_actors() -> None:
    assert (ALERTS, CONFIG, CENTRAL_NAME, LIMITER_NAME) == (
        system_actors.ALERTS,
        system_actors.CONFIG,
        system_actors.OBSERVABILITY,
        system_actors.RATE_LIMITER,
    )
    assert collector_name("n1").startswith(system_actors.COLLECTOR_PREFIX)
    assert shard_name(3).startswith(system_actors.ANOMALY_SHARD_PREFIX)


def test_no_system_actor_name_passes_for_another_or_for_a_service() -> None:
    names = [
        system_actors.REGISTRY,
        system_actors.CONFIG,
        system_actors.ALERTS,
        system_actors.OBSERVABILITY,
        system_actors.RATE_LIMITER,
        system_actors.COLLECTOR_PREFIX + "n1",
        system_actors.ANOMALY_SHARD_PREFIX + "0",
    ]
    assert len(set(names)) == len(names)
    assert all(parse_replica_id(n) is None for n in names)
