"""An upgrade's phases, plan and recovery after a registry crash. No Ray."""

from __future__ import annotations

import pytest

from ray_enterprise.registry.replicas import ReplicaSet
from ray_enterprise.registry.rollout import (
    DeploymentError,
    Phase,
    ProgressDeadline,
    Rollout,
    Step,
    Strategy,
    available,
    choose_strategy,
    recovered_outcome,
    rolling_step,
)
from tests.support import FakeClock


def rollout(strategy: Strategy = Strategy.ROLLING, replicas: int = 3) -> Rollout:
    return Rollout(
        service="api",
        deployment_id="d1",
        kind="upgrade",
        from_generation=4,
        to_generation=5,
        old_spec={"replicas": replicas},
        new_spec={"replicas": replicas},
        strategy=strategy,
    )


def test_a_single_replica_is_always_blue_green() -> None:
    assert choose_strategy(1, "rolling") is Strategy.BLUE_GREEN
    assert choose_strategy(3, "rolling") is Strategy.ROLLING
    assert choose_strategy(3, "blue_green") is Strategy.BLUE_GREEN
    assert choose_strategy(3, "recreate") is Strategy.ROLLING  # no downtime on offer


def test_rolling_bakes_one_canary_and_blue_green_all_of_green() -> None:
    assert rollout(Strategy.ROLLING).first_batch == 1
    assert rollout(Strategy.BLUE_GREEN).first_batch == 3


def test_the_happy_path_and_the_rollback_path() -> None:
    r = rollout().to(Phase.BAKING)
    assert not r.committed
    r = r.to(Phase.COMMITTED)
    assert r.committed and r.to(Phase.DONE).committed
    back = rollout().to(Phase.BAKING).to(Phase.ROLLING_BACK, "error rate")
    assert back.to(Phase.ROLLED_BACK).reason == "error rate"


def test_the_record_decides_after_a_crash_whatever_the_phase_says() -> None:
    baking = rollout().to(Phase.BAKING)
    assert recovered_outcome(baking, record_generation=4) == "old"
    # Crashed between the record's write and the phase's: the record wins.
    assert recovered_outcome(baking, record_generation=5) == "new"


def test_json_round_trip() -> None:
    r = rollout().to(Phase.BAKING)
    assert Rollout.from_json(r.to_json()) == r


def simulate(desired: int, surge: int, unavailable: int) -> list[tuple[int, int]]:
    """Run a rolling upgrade where every new replica is available at once; the (total,
    available) counts after each step's starts and retirements."""
    old, new, seen = desired, 0, []
    while old or new < desired:
        step = rolling_step(
            desired, old=old, new=new, available_now=old + new, max_surge=surge,
            max_unavailable=unavailable,
        )  # fmt: skip
        assert step.start or step.retire, f"stuck at old={old} new={new}"
        new += step.start
        seen.append((old + new, old + new - step.start))  # the new ones are not ready yet
        old -= step.retire
        seen.append((old + new, old + new))
    assert new == desired  # every old replica replaced, none missing at the end
    return seen


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 0), (0, 1), (2, 1), (3, 0), (1, 3)])
def test_a_rolling_upgrade_stays_within_max_surge_and_max_unavailable(
    surge: int, unavailable: int
) -> None:
    for total, serving in simulate(3, surge, unavailable):
        assert total <= 3 + surge
        assert serving >= 3 - unavailable


def test_max_surge_one_adds_one_new_replica_then_retires_one_old() -> None:
    step = rolling_step(3, old=3, new=0, available_now=3, max_surge=1, max_unavailable=0)
    assert step == Step(start=1, retire=0)
    # The new one not available yet: nothing more to do but wait.
    assert rolling_step(3, old=3, new=1, available_now=3, max_surge=1, max_unavailable=0) == Step(
        0, 0
    )
    assert rolling_step(3, old=3, new=1, available_now=4, max_surge=1, max_unavailable=0) == Step(
        0, 1
    )


def test_max_unavailable_retires_old_replicas_before_any_new_one_exists() -> None:
    step = rolling_step(4, old=4, new=0, available_now=4, max_surge=0, max_unavailable=2)
    assert step == Step(start=0, retire=2)
    step = rolling_step(4, old=2, new=0, available_now=2, max_surge=0, max_unavailable=2)
    assert step == Step(start=2, retire=0)


def test_a_new_replica_counts_only_after_min_ready_s_of_serving() -> None:
    clock = FakeClock()
    replicas = ReplicaSet("api")
    green = replicas.add(2)
    assert not available(green, clock(), 5.0)
    green.ready, green.ready_since = True, clock()
    clock.advance(4.9)
    assert not available(green, clock(), 5.0)
    clock.advance(0.1)
    assert available(green, clock(), 5.0)
    green.serving, green.ready_since = False, None  # said not ready: the clock starts over
    assert not available(green, clock(), 5.0)
    assert not available(green, clock(), 0.0)


def test_an_upgrade_stalls_only_when_nothing_progressed_for_the_deadline() -> None:
    clock = FakeClock()
    progress = ProgressDeadline(10.0, clock())
    clock.advance(8.0)
    progress.note(1, clock())  # a new replica became available: the clock restarts
    clock.advance(8.0)
    progress.note(1, clock())  # the same count again is no progress
    assert not progress.stalled(clock())
    clock.advance(2.1)
    assert progress.stalled(clock())
    assert "progress_deadline_s=10 s" in progress.reason()


def test_after_the_commit_only_a_rollback_or_done_follows() -> None:
    committed = rollout().to(Phase.BAKING).to(Phase.COMMITTED)
    assert committed.to(Phase.ROLLING_BACK, "stalled").reason == "stalled"
    with pytest.raises(DeploymentError, match="cannot go from committed to starting"):
        committed.to(Phase.STARTING)
