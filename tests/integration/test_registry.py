"""The RegistryActor on a real local Ray: ordering, supervision, recovery. No mocks."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import ray

import ray_enterprise
from ray_enterprise import ServiceUnavailableError
from ray_enterprise.examples.faulty import FaultyService
from ray_enterprise.runtime import registry_actor
from tests.integration.conftest import service_actor_names
from tests.integration.helpers import faulty, service, states
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


def events(registry: Registry, name: str) -> list[tuple[str, Any, float]]:
    handle = registry.get_service_sync(name, wait_s=30)
    result: list[tuple[str, Any, float]] = ray.get(handle.events.remote())
    return result


def event_time(evts: list[tuple[str, Any, float]], kind: str) -> float:
    return next(t for k, _, t in evts if k == kind)


def test_no_dependent_starts_before_its_dependency_is_healthy(registry: Registry) -> None:
    registry.register_app_sync(
        [
            faulty("db", config={"start_delay_s": 1.0}),
            faulty("api", "db"),
        ]
    )
    status = registry.start_all_sync(timeout_s=60)
    assert status["status"] == "healthy", status
    db_ready = event_time(events(registry, "db"), "started")
    api_began = event_time(events(registry, "api"), "start")
    assert api_began > db_ready


def test_services_of_one_level_start_concurrently(registry: Registry) -> None:
    registry.register_app_sync(
        [faulty("a", config={"start_delay_s": 2.0}), faulty("b", config={"start_delay_s": 2.0})]
    )
    registry.start_all_sync(timeout_s=60)
    a, b = events(registry, "a"), events(registry, "b")
    # Each began before the other had finished its 2 s start: they overlapped.
    assert event_time(a, "start") < event_time(b, "started")
    assert event_time(b, "start") < event_time(a, "started")


def test_stop_runs_in_reverse_dependency_order(registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "stops.txt"
    cfg = {"stop_marker": str(marker)}
    registry.register_app_sync(
        [
            faulty("db", config=cfg),
            faulty("cache", "db", config=cfg),
            faulty("api", "cache", config=cfg),
        ]
    )
    registry.start_all_sync(timeout_s=60)
    final = registry.stop_all_sync()
    assert {s["state"] for s in final["services"]} == {"stopped"}
    order = [line.split()[0] for line in marker.read_text().splitlines()]
    assert order == ["api", "cache", "db"]
    assert service_actor_names() == []


def test_sigkill_of_a_service_process_restarts_it_healthy(registry: Registry) -> None:
    registry.register_app_sync([faulty("victim")])
    registry.start_all_sync(timeout_s=60)
    handle = registry.get_service_sync("victim")
    pid = ray.get(handle.pid.remote())
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (
            service(registry, "victim")["generation"] == 2
            and service(registry, "victim")["state"] == "healthy"
        ),
        what="victim restarted and healthy",
    )
    info = service(registry, "victim")
    assert info["restarts"] == 1
    assert "actor died" in (info["last_error"] or "")
    new = registry.get_service_sync("victim")
    assert ray.get(new.pid.remote()) != pid
    assert service_actor_names() == ["svc:victim:2"]


def test_failing_health_checks_restart_after_the_threshold(registry: Registry) -> None:
    registry.register_app_sync([faulty("sick", health={"failure_threshold": 3})])
    registry.start_all_sync(timeout_s=60)
    handle = registry.get_service_sync("sick")
    ray.get(handle.set_healthy.remote(False))
    wait_for(lambda: service(registry, "sick")["state"] == "unhealthy", what="unhealthy")
    wait_for(
        lambda: (
            service(registry, "sick")["generation"] == 2
            and service(registry, "sick")["state"] == "healthy"
        ),
        what="restarted after 3 failed checks",
    )
    assert "failed 3 times" in (service(registry, "sick")["last_error"] or "")


def test_past_the_intensity_failed_and_dependents_degraded_then_recover(
    registry: Registry,
) -> None:
    registry.register_app_sync(
        [
            faulty("db", criticality="critical", restart={"max_restarts": 1, "window_s": 60}),
            faulty("api", "db"),
        ]
    )
    registry.start_all_sync(timeout_s=60)
    for generation in (1, 2):
        wait_for(
            lambda g=generation: (
                service(registry, "db")["generation"] == g  # type: ignore[misc]
                and service(registry, "db")["state"] == "healthy"
            ),
            what=f"db generation {generation} healthy",
        )
        handle = registry.get_service_sync("db")
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(handle.crash.remote())
    wait_for(
        lambda: states(registry) == {"db": "failed", "api": "degraded"}, what="failed+degraded"
    )
    status = registry.get_system_status_sync()
    assert status["status"] == "down"
    assert "db (critical) is failed" in status["reasons"]
    told = [tuple(v) for k, v, _ in events(registry, "api") if k == "dependency"]
    assert told[-1] == ("db", "failed")
    # The operator restarts it: dependents are told it is back and recover.
    registry.restart_sync("db")
    wait_for(lambda: states(registry) == {"db": "healthy", "api": "healthy"}, what="recovered")
    told = [tuple(v) for k, v, _ in events(registry, "api") if k == "dependency"]
    assert told[-1] == ("db", "healthy")


def test_rest_for_one_restarts_dependents(registry: Registry) -> None:
    registry.register_app_sync(
        [faulty("db", strategy="rest_for_one"), faulty("cache", "db"), faulty("other")]
    )
    registry.start_all_sync(timeout_s=60)
    handle = registry.get_service_sync("db")
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(handle.crash.remote())
    wait_for(
        lambda: (
            service(registry, "cache")["generation"] == 2
            and set(states(registry).values()) == {"healthy"}
        ),
        what="cache restarted with db",
    )
    assert service(registry, "other")["generation"] == 1


def test_sigkill_of_the_registry_recovers_state_without_duplicates(registry: Registry) -> None:
    registry.register_app_sync([faulty("db"), faulty("api", "db")])
    registry.start_all_sync(timeout_s=60)
    before = {s["name"]: s["generation"] for s in registry.list_services_sync()}
    actors_before = service_actor_names()
    handle: Any = registry_actor()
    pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
    # Calls are retried across the registry's restart (max_task_retries=-1).
    wait_for(
        lambda: set(states(registry).values()) == {"healthy"},
        what="registry back with healthy services",
    )
    new_pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()))
    assert new_pid != pid
    assert {s["name"]: s["generation"] for s in registry.list_services_sync()} == before
    assert service_actor_names() == actors_before
    # And it still supervises: a crash after the recovery is restarted.
    db = registry.get_service_sync("db")
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(db.crash.remote())
    wait_for(
        lambda: (
            service(registry, "db")["generation"] == 2
            and service(registry, "db")["state"] == "healthy"
        ),
        what="db restarted",
    )


def test_a_service_that_fails_to_start_is_retried_then_failed(registry: Registry) -> None:
    registry.register_app_sync(
        [faulty("broken", config={"fail_start": True}, restart={"max_restarts": 2})]
    )
    status = registry.start_all_sync(timeout_s=60)
    info = next(s for s in status["services"] if s["name"] == "broken")
    assert info["state"] == "failed"
    assert "configured to fail in start()" in info["last_error"]
    with pytest.raises(ServiceUnavailableError, match="broken' is failed"):
        registry.get_service_sync("broken")
    assert service_actor_names() == []


def test_the_seed_api_works_as_written_from_async_code(registry: Registry) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        service_registry = registry
        await service_registry.register_service(
            service=FaultyService, name="redis_service", config={}, criticality="critical"
        )
        await service_registry.register_service(
            service=FaultyService, name="monitoring_service", criticality="low"
        )
        cache_config = {"healthy": True}
        await service_registry.register_service(
            service=FaultyService,
            name="enterprise_search",
            dependencies=["redis_service", "monitoring_service"],
            config=cache_config,
            criticality="high",
        )
        await service_registry.start_all()
        health_status = await service_registry.validate_service_health("enterprise_search")
        system_status = await service_registry.get_system_status()
        return health_status, system_status

    health_status, system_status = asyncio.run(main())
    assert health_status["healthy"] is True
    assert health_status["name"] == "enterprise_search"
    assert system_status["status"] == "healthy"
    assert [s["name"] for s in system_status["services"]] == [
        "monitoring_service",
        "redis_service",
        "enterprise_search",
    ]


def test_calls_go_straight_to_the_service_actor(registry: Registry) -> None:
    registry.register_app_sync([faulty("echo")])
    registry.start_all_sync(timeout_s=60)
    handle = registry.get_service_sync("echo")
    assert isinstance(handle, ray_enterprise.ServiceHandle)
    assert ray.get(handle.echo.remote(41)) == 41
    # The handle routes on the caller's side: its one replica is the service actor itself.
    [actor] = handle.replicas()
    assert actor._actor_id == ray.get_actor("svc:echo:1")._actor_id
