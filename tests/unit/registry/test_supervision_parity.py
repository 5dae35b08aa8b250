"""The supervision rules taken from OTP, Akka and Ray Serve (issue 24), on a fake clock:
one_for_all groups, significant services and auto_shutdown, jittered restart backoff, and the
start retry budget."""

from __future__ import annotations

from typing import Any

import pytest

from ray_enterprise.errors import SpecError
from ray_enterprise.registry.auto_shutdown import shutdown_due
from ray_enterprise.registry.supervision import (
    START_FAILED,
    KillService,
    ServiceState,
    ShutdownApplication,
    StartService,
    Supervisor,
)
from ray_enterprise.spec import AutoShutdown, ServiceSpec, parse_app_spec
from tests.support import FakeClock
from tests.unit.registry.test_supervision import bring_up, ran, spec, starts


def make(*specs: ServiceSpec, rng: Any = None, **kwargs: Any) -> tuple[Supervisor, FakeClock]:
    clock = FakeClock(1000.0)
    sup = Supervisor(clock=clock, rng=rng) if rng else Supervisor(clock=clock)
    sup.register_all(specs)
    for key, value in kwargs.items():
        setattr(sup, key, value)
    sup.running = True
    return sup, clock


def all_up(sup: Supervisor) -> None:
    for _ in range(len(sup.records())):
        sup.tick()
        bring_up(sup, *[r.spec.name for r in sup.records() if r.state is ServiceState.STARTING])


def member(name: str, *deps: str, group: str = "pipeline", **fields: Any) -> ServiceSpec:
    return spec(name, *deps, strategy="one_for_all", group=group, **fields)


# -- one_for_all --------------------------------------------------------------------------


def test_one_for_all_restarts_every_member_of_the_group_and_no_one_else() -> None:
    sup, _ = make(
        member("reader"),
        member("parser", "reader"),
        member("writer"),
        spec("api", "parser"),
        member("other", group="elsewhere"),
    )
    all_up(sup)
    actions = sup.died("writer", 1, "boom")
    killed = {a.name for a in actions if isinstance(a, KillService)}
    assert killed == {"reader", "parser"}  # writer is already dead
    for name in ("reader", "parser", "writer"):
        assert sup.record(name).state is ServiceState.RESTARTING
    assert "one_for_all group pipeline" in (sup.record("reader").last_error or "")
    assert sup.record("api").state is ServiceState.HEALTHY  # a dependent, not a member
    assert sup.record("other").state is ServiceState.HEALTHY  # another group


def test_one_for_all_brings_the_group_back_in_dependency_order() -> None:
    sup, _ = make(member("reader"), member("parser", "reader"), member("writer"))
    all_up(sup)
    sup.died("parser", 1, "boom")
    assert starts(sup.tick()) == ["reader", "writer"]  # parser waits for reader to be healthy
    for name in ("reader", "writer"):
        ran(sup, name)
        sup.health_passed(name, 2)
    assert [a for a in sup.tick() if isinstance(a, StartService)] == [StartService("parser", 2)]


def test_one_for_all_members_come_back_after_the_failed_ones_backoff_not_before() -> None:
    restart = {"backoff_initial_s": 4.0, "jitter": 0, "max_restarts": 10}
    sup, clock = make(member("a", restart=restart), member("b"))
    all_up(sup)
    sup.died("a", 1, "first")  # immediate
    sup.tick()
    bring_up(sup, "a", "b")
    sup.died("a", 2, "second")  # waits 4 s, and b waits with it
    assert starts(sup.tick()) == []
    clock.advance(4.0)
    assert starts(sup.tick()) == ["a", "b"]


def test_an_operators_restart_of_a_member_restarts_its_group_without_alerting() -> None:
    sup, _ = make(member("a"), member("b"))
    all_up(sup)
    sup.take_transitions()
    actions = sup.restart("a")
    assert {a.name for a in actions if isinstance(a, KillService)} == {"a", "b"}
    assert all(t.planned for t in sup.take_transitions())


def test_one_for_all_needs_a_group_and_a_group_needs_one_for_all() -> None:
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": [{"name": "a", "class": "m:C", "strategy": "one_for_all"}]})
    assert (info.value.service, info.value.field) == ("a", "group")
    assert "needs group" in str(info.value)
    with pytest.raises(SpecError) as info:
        parse_app_spec({"services": [{"name": "a", "class": "m:C", "group": "g"}]})
    assert (info.value.service, info.value.field) == ("a", "group")
    with pytest.raises(SpecError, match="service name rules"):
        parse_app_spec(
            {"services": [{"name": "a", "class": "m:C", "strategy": "one_for_all", "group": "G!"}]}
        )


# -- start retry budget -------------------------------------------------------------------


def test_a_service_whose_start_keeps_failing_is_failed_after_max_start_attempts() -> None:
    sup, clock = make(spec("a", restart={"max_start_attempts": 3, "backoff_initial_s": 1.0}))
    for attempt in (1, 2):
        sup.tick()
        sup.died("a", attempt, "ValueError: no such file")
        assert sup.record("a").state is ServiceState.RESTARTING
        assert f"{START_FAILED} (attempt {attempt} of 3)" in (sup.record("a").last_error or "")
        clock.advance(10.0)
    sup.tick()
    sup.died("a", 3, "ValueError: no such file")
    rec = sup.record("a")
    assert rec.state is ServiceState.FAILED
    assert rec.last_error == (
        "start failed 3 times in a row (restart.max_start_attempts=3): given up; last error: "
        "ValueError: no such file"
    )
    failed = [t for t in sup.take_transitions() if t.state is ServiceState.FAILED]
    assert [t.reason for t in failed] == [rec.last_error]
    assert sup.tick() == []


def test_failed_starts_do_not_spend_the_crash_intensity_and_a_crash_is_told_apart() -> None:
    sup, clock = make(spec("a", restart={"max_restarts": 1, "max_start_attempts": 5}))
    for generation in (1, 2, 3):  # three failed starts: past max_restarts=1, still retried
        sup.tick()
        sup.died("a", generation, "start() raised RuntimeError: db down")
        clock.advance(60.0)
    assert sup.record("a").state is ServiceState.RESTARTING
    sup.tick()
    ran(sup, "a")  # the fourth start returned: the budget is full again
    assert sup.record("a").start_failures == 0
    sup.died("a", 4, "segfault")
    rec = sup.record("a")
    assert rec.state is ServiceState.RESTARTING
    assert not (rec.last_error or "").startswith(START_FAILED)


def test_failed_starts_back_off_like_restarts() -> None:
    sup, clock = make(spec("a", restart={"backoff_initial_s": 2.0, "jitter": 0}))
    sup.tick()
    sup.died("a", 1, "x")
    assert starts(sup.tick()) == ["a"]  # the first retry is immediate
    sup.died("a", 2, "x")
    assert starts(sup.tick()) == []
    clock.advance(2.0)
    assert starts(sup.tick()) == ["a"]


def test_an_adopted_actor_has_started_so_its_death_is_a_crash() -> None:
    sup, _ = make(spec("a", restart={"max_start_attempts": 1}))
    sup.adopt("a", 4)
    sup.died("a", 4, "node lost")
    assert sup.record("a").state is ServiceState.RESTARTING


# -- jitter -------------------------------------------------------------------------------


def test_restart_backoff_is_jittered_by_the_injected_random_source() -> None:
    restart = {"backoff_initial_s": 2.0, "jitter": 0.5, "max_restarts": 10}
    sup, clock = make(spec("a", restart=restart), rng=lambda: 1.0)
    sup.tick()
    ran(sup, "a")
    sup.died("a", 1, "x")
    sup.tick()
    ran(sup, "a")
    sup.died("a", 2, "x")
    assert sup.record("a").restart_at == pytest.approx(clock.now + 3.0)  # 2 s * (1 + 0.5)


# -- significant services and auto_shutdown -----------------------------------------------


def test_any_significant_stops_the_application_when_one_completes() -> None:
    sup, _ = make(
        spec("batch", significant=True, restart={"policy": "transient"}),
        spec("api"),
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    all_up(sup)
    sup.completed("batch", 1)
    actions = sup.tick()
    [shutdown] = [a for a in actions if isinstance(a, ShutdownApplication)]
    assert shutdown.cause.services == ("batch",)
    assert not shutdown.cause.failed
    assert shutdown.cause.reason == "auto_shutdown=any_significant: batch completed"
    assert not sup.running
    assert sup.shutdown == shutdown.cause
    assert sup.tick() == []  # said once


def test_a_significant_service_failed_past_its_intensity_stops_it_as_a_failure() -> None:
    sup, _ = make(
        spec("core", significant=True, restart={"max_restarts": 0}),
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    all_up(sup)
    sup.died("core", 1, "segfault")
    [shutdown] = [a for a in sup.tick() if isinstance(a, ShutdownApplication)]
    assert shutdown.cause.failed
    assert "core failed: segfault" in shutdown.cause.reason


def test_all_significant_waits_for_every_significant_service() -> None:
    transient = {"policy": "transient"}
    sup, _ = make(
        spec("a", significant=True, restart=transient),
        spec("b", significant=True, restart=transient),
        spec("c"),
        auto_shutdown=AutoShutdown.ALL_SIGNIFICANT,
    )
    all_up(sup)
    sup.completed("a", 1)
    assert not [a for a in sup.tick() if isinstance(a, ShutdownApplication)]
    assert sup.running
    sup.completed("b", 1)
    [shutdown] = [a for a in sup.tick() if isinstance(a, ShutdownApplication)]
    assert shutdown.cause.services == ("a", "b")


def test_never_and_non_significant_services_do_not_stop_the_application() -> None:
    sup, _ = make(spec("batch", restart={"policy": "transient"}))
    all_up(sup)
    sup.completed("batch", 1)
    assert sup.tick() == [] and sup.running
    assert shutdown_due(AutoShutdown.NEVER, [("x", "failed", "boom")]) is None


def test_a_new_start_forgets_the_last_auto_shutdown() -> None:
    sup, _ = make(
        spec("batch", significant=True, restart={"policy": "transient"}),
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    all_up(sup)
    sup.completed("batch", 1)
    sup.tick()
    sup.reset_for_start()
    sup.running = True
    assert sup.shutdown is None
    assert starts(sup.tick()) == ["batch"]


def test_significant_without_auto_shutdown_is_refused_as_otp_does() -> None:
    with pytest.raises(SpecError, match="auto_shutdown is never"):
        parse_app_spec({"services": [{"name": "a", "class": "m:C", "significant": True}]})
    app = parse_app_spec(
        {
            "auto_shutdown": "all_significant",
            "services": [{"name": "a", "class": "m:C", "significant": True}],
        }
    )
    assert app.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT


def test_an_application_about_to_stop_itself_is_not_settled_until_its_tick_stops_it() -> None:
    sup, _ = make(
        spec("store"),
        spec("job", significant=True, restart={"max_restarts": 0}),
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    all_up(sup)
    sup.died("job", 1, "boom")  # seen between ticks: FAILED, everything else up
    assert not sup.settled()  # start_all must not report this as the settled application
    sup.tick()
    assert sup.shutdown is not None and not sup.running
