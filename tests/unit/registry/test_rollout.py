"""An upgrade's phases, plan and recovery after a registry crash. No Ray."""

from __future__ import annotations

import pytest

from ray_enterprise.registry.rollout import (
    DeploymentError,
    Phase,
    Rollout,
    Strategy,
    choose_strategy,
    recovered_outcome,
)


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


def test_no_rollback_after_the_commit() -> None:
    with pytest.raises(DeploymentError, match="cannot go from committed to rolling_back"):
        rollout().to(Phase.BAKING).to(Phase.COMMITTED).to(Phase.ROLLING_BACK)


def test_the_record_decides_after_a_crash_whatever_the_phase_says() -> None:
    baking = rollout().to(Phase.BAKING)
    assert recovered_outcome(baking, record_generation=4) == "old"
    # Crashed between the record's write and the phase's: the record wins.
    assert recovered_outcome(baking, record_generation=5) == "new"


def test_json_round_trip() -> None:
    r = rollout().to(Phase.BAKING)
    assert Rollout.from_json(r.to_json()) == r
