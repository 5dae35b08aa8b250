"""A restarted registry's plan: adopt, restore or kill what it finds. Pure, no Ray."""

from __future__ import annotations

from ray_enterprise.registry.recovery import Adopt, Restore, plan_recovery


def record(generation: int, *, failed: bool = False, restarts: int = 0) -> dict[str, object]:
    return {"generation": generation, "failed": failed, "restarts": restarts}


def test_live_replicas_of_the_recorded_generation_are_adopted_and_others_killed() -> None:
    plan = plan_recovery(
        {"api": record(3, restarts=2)},
        ["api"],
        ["svc:api:3", "svc:api:3.1", "svc:api:4", "config", "svc:gone:1"],
        "running",
    )
    assert plan.adopt == [Adopt("api", 3, 2, ("svc:api:3", "svc:api:3.1"))]
    assert plan.restore == []
    # An upgrade's uncommitted green, and a service nobody registers any more.
    assert plan.orphans == ["svc:api:4", "svc:gone:1"]


def test_a_service_without_a_live_actor_is_restored_to_be_started_again() -> None:
    plan = plan_recovery({"db": record(2, restarts=1)}, ["db"], [], "running")
    assert plan.restore == [Restore("db", 2, False, 1)] and plan.adopt == []


def test_a_failed_service_or_a_stopped_application_adopts_nothing() -> None:
    live = ["svc:db:2", "svc:api:5"]
    records = {"db": record(2, failed=True), "api": record(5)}
    failed = plan_recovery(records, ["db", "api"], live, "running")
    assert [a.name for a in failed.adopt] == ["api"] and failed.orphans == ["svc:db:2"]
    stopped = plan_recovery(records, ["db", "api"], live, "stopped")
    assert stopped.adopt == [] and sorted(stopped.orphans) == live[::-1]
    stopping = plan_recovery({"api": record(5)}, ["api"], ["svc:api:5"], "stopping")
    assert [a.name for a in stopping.adopt] == ["api"]  # the stop is finished with them


def test_records_of_unregistered_services_are_skipped() -> None:
    plan = plan_recovery({"old": record(1)}, ["new"], ["svc:old:1"], "running")
    assert plan.adopt == [] and plan.restore == [] and plan.orphans == ["svc:old:1"]
