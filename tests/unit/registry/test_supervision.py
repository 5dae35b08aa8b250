"""The service state machine, driven by a fake clock: no Ray, no sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from ray_enterprise.errors import DependencyCycleError, ServiceNotFoundError
from ray_enterprise.registry.supervision import (
    KillService,
    NotifyDependency,
    ServiceState,
    StartService,
    Supervisor,
)
from ray_enterprise.spec import ServiceSpec
from tests.support import FakeClock


def spec(name: str, *deps: str, **fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {"name": name, "class": "pkg.mod:Cls", "depends_on": list(deps), **fields}
    )


def make(*specs: ServiceSpec) -> tuple[Supervisor, FakeClock]:
    clock = FakeClock(1000.0)
    sup = Supervisor(clock=clock)
    sup.register_all(specs)
    sup.running = True
    return sup, clock


def starts(actions: list[Any]) -> list[str]:
    return [a.name for a in actions if isinstance(a, StartService)]


def ran(sup: Supervisor, *names: str) -> None:
    """Their start() returned: what follows is a crash, not a failed start."""
    for name in names:
        sup.started(name, sup.record(name).generation)


def bring_up(sup: Supervisor, *names: str) -> None:
    for name in names:
        ran(sup, name)
        sup.health_passed(name, sup.record(name).generation)
    sup.tick()


def test_dependents_start_only_after_their_dependencies_are_healthy() -> None:
    sup, _ = make(spec("db"), spec("cache", "db"), spec("api", "cache"))
    assert starts(sup.tick()) == ["db"]
    assert starts(sup.tick()) == []  # db is STARTING, not yet healthy
    sup.health_passed("db", 1)
    assert starts(sup.tick()) == ["cache"]
    sup.health_passed("cache", 1)
    assert starts(sup.tick()) == ["api"]


def test_services_of_one_level_start_in_the_same_tick() -> None:
    sup, _ = make(spec("a"), spec("b"), spec("c", "a", "b"))
    assert starts(sup.tick()) == ["a", "b"]


def test_nothing_starts_while_not_running() -> None:
    sup, _ = make(spec("a"))
    sup.running = False
    assert sup.tick() == []


def test_crash_restarts_with_a_new_generation() -> None:
    sup, _ = make(spec("a"))
    sup.tick()
    bring_up(sup, "a")
    assert sup.died("a", 1, "boom") == []
    assert sup.record("a").state is ServiceState.RESTARTING
    assert sup.tick() == [StartService("a", 2)]
    assert sup.record("a").restarts == 1


def test_observations_about_an_old_generation_are_ignored() -> None:
    sup, _ = make(spec("a"))
    sup.tick()
    bring_up(sup, "a")
    sup.died("a", 1, "boom")
    sup.tick()
    assert sup.died("a", 1, "late news") == []
    assert sup.health_failed("a", 1, "late") == []
    assert sup.record("a").state is ServiceState.STARTING


def test_failing_health_checks_restart_after_the_threshold() -> None:
    sup, _ = make(spec("a", health={"failure_threshold": 3}))
    sup.tick()
    bring_up(sup, "a")
    assert sup.health_failed("a", 1, "x") == []
    assert sup.record("a").state is ServiceState.UNHEALTHY
    assert sup.health_failed("a", 1, "x") == []
    actions = sup.health_failed("a", 1, "x")
    assert actions == [KillService("a", 1, "health check failed 3 times in a row: x")]
    assert sup.record("a").state is ServiceState.RESTARTING


def test_a_passing_check_resets_the_failure_count() -> None:
    sup, _ = make(spec("a", health={"failure_threshold": 2}))
    sup.tick()
    bring_up(sup, "a")
    sup.health_failed("a", 1, "x")
    sup.health_passed("a", 1)
    assert sup.record("a").state is ServiceState.HEALTHY
    assert sup.health_failed("a", 1, "x") == []


def test_health_failures_during_startup_grace_do_not_count() -> None:
    sup, clock = make(spec("a", health={"failure_threshold": 1, "startup_timeout_s": 10}))
    sup.tick()
    for _ in range(5):
        assert sup.health_failed("a", 1, "warming up") == []
    clock.now += 11
    actions = sup.tick()
    assert isinstance(actions[0], KillService)
    assert "startup_timeout_s=10" in (sup.record("a").last_error or "")


def test_backoff_delays_consecutive_restarts() -> None:
    sup, clock = make(
        spec("a", restart={"backoff_initial_s": 1.0, "max_restarts": 10, "jitter": 0})
    )
    sup.tick()
    ran(sup, "a")
    sup.died("a", 1, "x")
    assert starts(sup.tick()) == ["a"]  # the first restart is immediate
    ran(sup, "a")
    sup.died("a", 2, "x")
    assert starts(sup.tick()) == []  # the second waits backoff_initial_s
    clock.now += 1.0
    assert starts(sup.tick()) == ["a"]
    ran(sup, "a")
    sup.died("a", 3, "x")
    clock.now += 1.0
    assert starts(sup.tick()) == []  # the third waits twice as long
    clock.now += 1.0
    assert starts(sup.tick()) == ["a"]


def test_past_the_intensity_the_service_is_failed_and_dependents_degraded() -> None:
    sup, _ = make(
        spec("db", restart={"max_restarts": 1, "backoff_initial_s": 0}),
        spec("api", "db"),
    )
    sup.tick()
    bring_up(sup, "db")
    sup.tick()
    bring_up(sup, "api")
    sup.died("db", 1, "x")
    actions = sup.tick()
    assert NotifyDependency("api", 1, "db", ServiceState.STARTING) in actions
    assert sup.record("api").state is ServiceState.DEGRADED
    ran(sup, "db")
    sup.died("db", 2, "again")
    assert sup.record("db").state is ServiceState.FAILED
    assert "given up" in (sup.record("db").last_error or "")
    sup.tick()
    assert sup.record("api").state is ServiceState.DEGRADED
    assert starts(sup.tick()) == []


def test_dependents_recover_and_are_told_when_the_dependency_recovers() -> None:
    sup, _ = make(spec("db", restart={"backoff_initial_s": 0}), spec("api", "db"))
    sup.tick()
    bring_up(sup, "db")
    sup.tick()
    bring_up(sup, "api")
    sup.died("db", 1, "x")
    sup.tick()
    sup.health_passed("db", 2)
    actions = sup.tick()
    assert NotifyDependency("api", 1, "db", ServiceState.HEALTHY) in actions
    assert sup.record("api").state is ServiceState.HEALTHY


def test_rest_for_one_restarts_the_dependents_too() -> None:
    sup, _ = make(
        spec("db", strategy="rest_for_one", restart={"backoff_initial_s": 0}),
        spec("cache", "db"),
        spec("api", "cache"),
        spec("other"),
    )
    for _ in range(3):
        sup.tick()
        bring_up(sup, *[r.spec.name for r in sup.records() if r.generation])
    actions = sup.died("db", 1, "x")
    killed = {a.name for a in actions if isinstance(a, KillService)}
    assert killed == {"cache", "api"}
    assert sup.record("other").state is ServiceState.HEALTHY
    assert starts(sup.tick()) == ["db"]  # dependents wait for db to be healthy again
    sup.health_passed("db", 2)
    assert starts(sup.tick()) == ["cache"]


def test_temporary_services_are_never_restarted() -> None:
    sup, _ = make(spec("job", restart={"policy": "temporary"}))
    sup.tick()
    bring_up(sup, "job")
    sup.died("job", 1, "x")
    assert sup.record("job").state is ServiceState.FAILED
    assert sup.tick() == []


def test_a_transient_service_that_completes_stays_stopped() -> None:
    sup, _ = make(spec("job", restart={"policy": "transient"}), spec("perm"))
    sup.tick()
    bring_up(sup, "job", "perm")
    assert sup.completed("job", 1) == [KillService("job", 1, "completed")]
    assert sup.record("job").state is ServiceState.STOPPED
    sup.completed("perm", 1)
    assert sup.record("perm").state is ServiceState.RESTARTING


def test_manual_restart_revives_a_failed_service_with_a_fresh_count() -> None:
    sup, _ = make(spec("a", restart={"max_restarts": 0}))
    sup.tick()
    ran(sup, "a")
    sup.died("a", 1, "x")
    assert sup.record("a").state is ServiceState.FAILED
    sup.restart("a")
    assert starts(sup.tick()) == ["a"]


def test_adopted_actor_needs_a_healthy_check_and_is_not_started_again() -> None:
    sup, _ = make(spec("a"))
    sup.adopt("a", 7)
    assert sup.tick() == []
    sup.health_passed("a", 7)
    assert sup.record("a").state is ServiceState.HEALTHY
    assert sup.record("a").generation == 7


def test_settled_counts_services_blocked_behind_a_failed_one() -> None:
    sup, _ = make(spec("a", restart={"max_restarts": 0}), spec("b", "a"))
    sup.tick()
    assert not sup.settled()
    ran(sup, "a")
    sup.died("a", 1, "x")
    assert sup.settled()


def test_registering_a_cycle_is_refused_and_keeps_the_old_graph() -> None:
    sup, _ = make(spec("a"), spec("b", "a"))
    with pytest.raises(DependencyCycleError):
        sup.register(spec("a", "b"))
    assert sup.graph.levels() == (("a",), ("b",))


def test_unknown_service_error_lists_the_known_ones() -> None:
    sup, _ = make(spec("a"))
    with pytest.raises(ServiceNotFoundError, match="registered: a"):
        sup.record("zzz")


def test_a_lost_replica_counts_as_a_restart_and_too_many_fail_the_service() -> None:
    sup, _ = make(spec("api", restart={"max_restarts": 1, "window_s": 60}))
    [start] = sup.tick()
    sup.health_passed("api", start.generation)
    assert sup.replica_lost("api", start.generation, "boom") == []
    assert sup.record("api").restarts == 1
    assert sup.record("api").state is ServiceState.HEALTHY
    actions = sup.replica_lost("api", start.generation, "boom again")
    assert actions == [KillService("api", start.generation, "replicas keep failing: boom again")]
    assert sup.record("api").state is ServiceState.FAILED


def test_an_upgrade_generation_is_never_reused_by_a_restart() -> None:
    sup, clock = make(spec("api"))
    [start] = sup.tick()
    green = sup.reserve_generation("api")
    assert green == start.generation + 1
    sup.health_passed("api", start.generation)
    sup.died("api", start.generation, "crash")
    clock.now += 100
    [restart] = sup.tick()
    assert restart.generation == green + 1


def test_switch_generation_commits_the_new_spec() -> None:
    sup, _ = make(spec("api"), spec("db"))
    sup.tick()
    sup.switch_generation("api", 7, spec("api", "db", replicas=2))
    rec = sup.record("api")
    assert (rec.generation, rec.spec.replicas, rec.spec.depends_on) == (7, 2, ("db",))
    assert set(sup.graph.dependencies("api")) == {"db"}


def test_a_restart_quicker_than_one_tick_leaves_every_transition_to_take() -> None:
    sup, _ = make(spec("db"))
    sup.tick()
    bring_up(sup, "db")
    sup.take_transitions()
    sup.died("db", 1, "actor died: SIGKILL")
    sup.tick()  # the first restart has no backoff: RESTARTING -> STARTING in one step
    sup.health_passed("db", 2)
    assert sup.record("db").state is ServiceState.HEALTHY
    taken = [(t.name, t.state, t.reason, t.planned) for t in sup.take_transitions()]
    assert taken == [
        ("db", ServiceState.RESTARTING, "actor died: SIGKILL", False),
        ("db", ServiceState.STARTING, "actor died: SIGKILL", False),
        ("db", ServiceState.HEALTHY, "actor died: SIGKILL", False),
    ]
    assert sup.take_transitions() == []


def test_an_operator_restart_is_a_planned_transition() -> None:
    sup, _ = make(spec("db", strategy="rest_for_one"), spec("api", "db"))
    sup.tick()
    bring_up(sup, "db")
    bring_up(sup, "api")
    sup.take_transitions()
    sup.restart("db")  # with its dependent, as rest_for_one says
    restarting = [t for t in sup.take_transitions() if t.state is ServiceState.RESTARTING]
    assert [(t.name, t.planned) for t in restarting] == [("db", True), ("api", True)]
    sup.tick()
    sup.health_passed("db", 2)
    sup.died("db", 2, "boom")  # a crash after it is a fault again
    [crash] = [t for t in sup.take_transitions() if t.state is ServiceState.RESTARTING]
    assert (crash.name, crash.planned, crash.reason) == ("db", False, "boom")


def test_a_failed_transition_carries_why_it_was_given_up() -> None:
    sup, _ = make(spec("db", restart={"max_restarts": 0, "backoff_initial_s": 0}))
    sup.tick()
    bring_up(sup, "db")
    sup.take_transitions()
    sup.died("db", 1, "boom")
    [failed] = [t for t in sup.take_transitions() if t.state is ServiceState.FAILED]
    assert "given up" in (failed.reason or "")


def test_records_restored_while_the_app_is_stopped_are_no_fault() -> None:
    sup, _ = make(spec("db"), spec("api", "db"))
    sup.running = False
    sup.restore("db", 3, failed=False, restarts=1, planned=True)
    sup.restore("api", 2, failed=True, restarts=4, planned=True)
    taken = sup.take_transitions()
    assert {(t.name, t.state) for t in taken} == {
        ("db", ServiceState.RESTARTING),
        ("api", ServiceState.FAILED),
    }
    assert all(t.planned for t in taken)
    running, _ = make(spec("db"))  # running, its actor gone: a real restart
    running.restore("db", 3, failed=False, restarts=1)
    [restart] = running.take_transitions()
    assert (restart.state, restart.planned) == (ServiceState.RESTARTING, False)
