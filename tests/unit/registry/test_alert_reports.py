"""The registry's alert dedup rule, fed by a Supervisor on a fake clock: no Ray, no alerts."""

from __future__ import annotations

from collections.abc import Callable

from ray_enterprise.registry.alert_reports import AlertReports, HealthReport
from ray_enterprise.registry.supervision import Supervisor
from ray_enterprise.spec import ServiceSpec
from tests.support import FakeClock


def running(*names: str, **fields: object) -> tuple[Supervisor, FakeClock[float]]:
    clock: FakeClock[float] = FakeClock()
    sup = Supervisor(clock=clock)
    sup.register_all(
        ServiceSpec.model_validate({"name": n, "class": "pkg.mod:Cls", **fields}) for n in names
    )
    sup.running = True
    sup.tick()
    for name in names:
        sup.health_passed(name, sup.record(name).generation)
    return sup, clock


def criticality(sup: Supervisor) -> Callable[[str], str | None]:
    return lambda name: sup.record(name).spec.criticality.value if name in names(sup) else None


def names(sup: Supervisor) -> set[str]:
    return {r.spec.name for r in sup.records()}


def states(reports: list[HealthReport]) -> list[tuple[str, str]]:
    return [(r.service, r.state) for r in reports]


def test_a_restart_quicker_than_a_tick_is_told_whole_and_each_state_once() -> None:
    sup, _ = running("db")
    reports = AlertReports()
    assert states(reports.take(sup.take_transitions(), criticality(sup))) == [("db", "healthy")]
    sup.died("db", 1, "actor died: SIGKILL")
    sup.tick()  # restarted at once: RESTARTING -> STARTING -> HEALTHY before the next report
    sup.health_passed("db", 2)
    told = reports.take(sup.take_transitions(), criticality(sup))
    assert states(told) == [("db", "restarting"), ("db", "healthy")]
    assert told[0].reason == "actor died: SIGKILL" and told[0].criticality == "medium"
    assert reports.take(sup.take_transitions(), criticality(sup)) == []


def test_an_operators_restart_raises_nothing_and_its_end_is_told() -> None:
    sup, _ = running("db")
    reports = AlertReports()
    reports.take(sup.take_transitions(), criticality(sup))
    sup.restart("db")
    sup.tick()
    sup.health_passed("db", 2)
    assert states(reports.take(sup.take_transitions(), criticality(sup))) == [("db", "healthy")]


def test_a_service_unregistered_since_its_transition_is_not_told() -> None:
    sup, _ = running("db", "api")
    transitions = sup.take_transitions()
    sup.unregister("api")
    assert states(AlertReports().take(transitions, criticality(sup))) == [("db", "healthy")]


def test_after_a_registry_restart_what_fired_is_told_again_and_resolved_later() -> None:
    sup, clock = running("db", restart={"max_restarts": 0})
    first = AlertReports()
    first.take(sup.take_transitions(), criticality(sup))
    sup.died("db", 1, "boom")
    clock.advance(1.0)
    assert states(first.take(sup.take_transitions(), criticality(sup))) == [("db", "failed")]
    again = AlertReports(first.told)  # what a restarted registry reads back from the store
    [told] = again.again([("db", "medium"), ("other", "high")])
    assert (told.service, told.state, told.reason) == (
        "db",
        "failed",
        "told again after a registry restart",
    )
    sup.restart("db")
    sup.tick()
    sup.health_passed("db", 2)
    assert states(again.take(sup.take_transitions(), criticality(sup))) == [("db", "healthy")]
