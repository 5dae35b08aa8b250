"""The incremental supervisor tick and the status snapshot against full recomputation.

The supervisor's tick visits only the records marked since the last tick or whose timer is
due, and the registry's status is a snapshot adjusted by what changed. Both are only right if
no change goes unmarked, so random sequences of events (crashes, failed checks, slow starts,
restarts, stops, re-registrations) are played against a supervisor that walks every record
every tick and a status recomputed over every record, and every step must agree.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ray_enterprise.registry.bookkeeping import RegistryBook, durable_record
from ray_enterprise.registry.status import StatusSnapshot, overall_status, service_status
from ray_enterprise.registry.supervision import LIVE_STATES, ServiceRecord, Supervisor
from ray_enterprise.spec import ServiceSpec
from tests.support import FakeClock

NAMES = [f"s{i}" for i in range(6)]

specs_st = st.builds(
    lambda deps, policy, strategy, crit, threshold, startup, max_restarts, backoff, reset: {
        "deps": deps,
        "restart": {
            "policy": policy,
            "max_restarts": max_restarts,
            "window_s": 30.0,
            "backoff_initial_s": backoff,
            "backoff_max_s": 4 * backoff,
            "backoff_reset_s": reset,
        },
        "strategy": strategy,
        "criticality": crit,
        "health": {"failure_threshold": threshold, "startup_timeout_s": startup},
    },
    st.sets(st.integers(0, 5), max_size=2),
    st.sampled_from(["permanent", "transient", "temporary"]),
    st.sampled_from(["one_for_one", "rest_for_one"]),
    st.sampled_from(["critical", "high", "medium", "low"]),
    st.integers(1, 3),
    st.sampled_from([0.5, 1.0, 3.0]),
    st.integers(0, 4),
    st.sampled_from([0.0, 0.5, 2.0]),
    st.sampled_from([1.0, 5.0]),
)

_tick = st.tuples(st.just("tick"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 3.0]))
_pass_all = st.tuples(st.just("pass_all"), st.just(0))
_one = st.tuples(
    st.sampled_from(
        ["passed", "passed", "failed", "died", "completed", "started", "restart", "replica_lost"]
    ),
    st.integers(0, 5),
)
_rare = st.tuples(st.sampled_from(["stop", "start_all", "reregister"]), st.integers(0, 5))
# Ticks and passing checks dominate, as in a live fleet, so that services get up and far
# enough for crashes, dependency changes and backoffs to matter.
events_st = st.lists(st.one_of(_tick, _tick, _pass_all, _one, _one, _rare), max_size=80)


def build(raw: list[dict[str, Any]], index: int) -> ServiceSpec:
    one = raw[index]
    return ServiceSpec.model_validate(
        {
            "name": NAMES[index],
            "class": "pkg.mod:Cls",
            "depends_on": sorted({NAMES[d % index] for d in one["deps"]} if index else ()),
            "restart": one["restart"],
            "strategy": one["strategy"],
            "criticality": one["criticality"],
            "health": one["health"],
        }
    )


@dataclass
class Pair:
    clock: FakeClock[float]
    fast: Supervisor
    full: Supervisor

    def both(self, method: str, *args: Any) -> Any:
        got = getattr(self.fast, method)(*args)
        want = getattr(self.full, method)(*args)
        assert got == want, method
        return got


def view(rec: ServiceRecord) -> tuple[Any, ...]:
    return (
        rec.state,
        rec.generation,
        rec.restarts,
        rec.consecutive_failures,
        rec.last_error,
        rec.state_since,
        rec.started_at,
        rec.healthy_since,
        rec.restart_at,
        rec.tracker.consecutive,
        dict(rec.seen_dependencies),
    )


def play(pair: Pair, raw: list[dict[str, Any]], event: tuple[str, Any]) -> None:
    kind, arg = event
    if kind == "tick":
        pair.clock.advance(arg)
        pair.both("tick")
        return
    if kind == "pass_all":
        for rec in pair.full.records():
            pair.both("health_passed", rec.spec.name, rec.generation)
        return
    name = NAMES[arg]
    gen = pair.full.record(name).generation
    if kind == "passed":
        pair.both("health_passed", name, gen)
    elif kind == "failed":
        pair.both("health_failed", name, gen, "boom")
    elif kind == "died":
        pair.both("died", name, gen, "killed")
    elif kind == "completed":
        pair.both("completed", name, gen)
    elif kind == "started":
        pair.both("started", name, gen)
    elif kind == "restart":
        pair.both("restart", name)
    elif kind == "replica_lost":
        pair.both("replica_lost", name, gen, "one of two")
    elif kind == "stop":
        for sup in (pair.fast, pair.full):
            sup.running = False
            for level in sup.graph.shutdown_levels():
                for stopping in level:
                    if sup.begin_stop(stopping) is not None:
                        sup.stopped(stopping)
    elif kind == "start_all":
        for sup in (pair.fast, pair.full):
            if not sup.running:
                sup.reset_for_start()
            sup.running = True
    elif kind == "reregister":  # the same service with a tighter health spec
        tighter = raw[arg]["health"] | {"failure_threshold": 1, "startup_timeout_s": 0.5}
        raw[arg] = raw[arg] | {"health": tighter}
        pair.both("register", build(raw, arg))


def chain(**restart: Any) -> list[dict[str, Any]]:
    """Six services, each depending on the one before: s0 <- s1 <- ... <- s5."""
    return [
        {
            "deps": {0},
            "restart": {"window_s": 30.0, "backoff_reset_s": 5.0, **restart},
            "strategy": "one_for_one",
            "criticality": "high",
            "health": {"failure_threshold": 2, "startup_timeout_s": 3.0},
        }
        for _ in NAMES
    ]


_UP = [("tick", 0.1), ("pass_all", 0)] * 6  # the chain comes up one level per tick


# The cases random search finds only now and then, always tried: a dependent waiting on its
# dependency, a backoff delay, a backoff reset after a healthy spell, a startup timeout.
@example(raw=chain(), events=[*_UP, ("died", 0), ("tick", 0.1), ("pass_all", 0), ("tick", 0.1)])
@example(
    raw=chain(backoff_initial_s=0.5),
    events=[("died", 0), ("tick", 0.1), ("died", 0), ("tick", 0.1), ("tick", 1.0), ("tick", 1.0)],
)
@example(
    raw=chain(backoff_initial_s=0.5),
    events=[("died", 0), ("tick", 0.1), ("died", 0), *[("tick", 1.0), ("pass_all", 0)] * 8],
)
@example(raw=chain(), events=[("tick", 1.0), ("started", 0), ("tick", 2.5), ("tick", 1.0)])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.lists(specs_st, min_size=6, max_size=6), events=events_st)
def test_the_incremental_tick_and_the_status_snapshot_equal_a_full_recomputation(
    raw: list[dict[str, Any]], events: list[tuple[str, Any]]
) -> None:
    clock: FakeClock[float] = FakeClock(1000.0)
    # The same jitter draws on both sides: each side its own generator from the same seed.
    pair = Pair(
        clock,
        Supervisor(clock=clock, rng=random.Random(7).random),
        Supervisor(clock=clock, rng=random.Random(7).random, full_scan=True),
    )
    specs = [build(raw, i) for i in range(len(NAMES))]
    pair.both("register_all", specs)
    pair.fast.running = pair.full.running = True
    # The registry actor's own bookkeeping, fed what the fast side touched, as the actor does.
    stored: dict[str, dict[str, Any]] = {}
    book = RegistryBook(stored.__setitem__)
    for event in [("tick", 0.0), *events]:
        play(pair, raw, event)
        for name in NAMES:
            assert view(pair.fast.record(name)) == view(pair.full.record(name)), (name, event)
        assert pair.fast.take_transitions() == pair.full.take_transitions()
        book.note(pair.fast.take_touched())
        book.persist(pair.fast)
        book.refresh(pair.fast, lambda name: service_status(pair.fast.record(name)))
        every = [service_status(r) for r in pair.full.records()]
        shown = book.view(pair.fast)
        assert shown.pop("services") == [s.to_json() for s in every]
        assert shown.pop("levels") == [list(level) for level in pair.full.graph.levels()]
        assert shown == overall_status(every, running=pair.full.running)
        assert stored == {name: durable_record(pair.full, name) for name in NAMES}


def test_a_quiet_fleet_visits_no_record_per_tick() -> None:
    """The property above proves nothing is missed; this, that the work is really skipped."""
    clock: FakeClock[float] = FakeClock(1000.0)
    sup = Supervisor(clock=clock)
    sup.register_all(
        ServiceSpec.model_validate({"name": f"q{i}", "class": "pkg.mod:Cls"}) for i in range(50)
    )
    sup.running = True
    sup.tick()
    for rec in sup.records():
        sup.health_passed(rec.spec.name, rec.generation)
    sup.tick()
    sup.tick()
    visited: list[str] = []
    step = sup._step
    sup._step = lambda rec, now: visited.append(rec.spec.name) or step(rec, now)  # type: ignore[method-assign]
    for _ in range(5):
        clock.advance(1.0)
        sup.health_passed("q7", sup.record("q7").generation)  # a passing check changes nothing
        sup.tick()
    assert visited == []
    sup.died("q7", sup.record("q7").generation, "killed")
    sup.tick()
    assert visited == ["q7"]
    assert sup.record("q7").state in LIVE_STATES  # restarted at once: the first restart


def test_a_snapshot_with_no_services_is_down_like_the_full_view() -> None:
    snapshot = StatusSnapshot()
    assert snapshot.view(running=True) == overall_status([], running=True)
    assert snapshot.services() == []
