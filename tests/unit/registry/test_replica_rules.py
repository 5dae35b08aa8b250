"""What one replica's failure or health check means for its service: pure, no Ray."""

from __future__ import annotations

from ray_enterprise.registry.replica_rules import (
    CheckVerdict,
    FailureScope,
    failure_scope,
    judge_check,
)
from ray_enterprise.registry.replicas import ReplicaSet


def test_the_last_replica_of_the_current_version_failing_is_the_service_failing() -> None:
    replicas = ReplicaSet("api")
    only = replicas.add(1)
    only.ready = True
    assert failure_scope(replicas, only, current=True) is FailureScope.SERVICE


def test_one_of_several_or_an_upgrades_replica_is_replaced_alone() -> None:
    replicas = ReplicaSet("api")
    first, second = replicas.add(1), replicas.add(1)
    first.ready = second.ready = True
    green = replicas.add(2)
    assert failure_scope(replicas, first, current=True) is FailureScope.REPLICA
    assert failure_scope(replicas, green, current=False) is FailureScope.REPLICA


def test_a_draining_or_departed_replica_failing_is_ignored() -> None:
    replicas = ReplicaSet("api")
    draining, gone = replicas.add(1), replicas.add(1)
    draining.draining = True
    replicas.remove(gone.id)
    assert failure_scope(replicas, draining, current=True) is FailureScope.IGNORED
    assert failure_scope(replicas, gone, current=True) is FailureScope.IGNORED
    assert failure_scope(None, gone, current=True) is FailureScope.IGNORED


def test_the_first_pass_makes_a_replica_ready_and_later_ones_only_count() -> None:
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    assert judge_check(replicas, one, True, current=True, threshold=3) is CheckVerdict.READY
    assert judge_check(replicas, one, True, current=True, threshold=3) is CheckVerdict.PASSED
    assert (one.ready, one.passed) == (True, 2)


def test_a_lone_replicas_failed_check_goes_to_the_service_threshold() -> None:
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    judge_check(replicas, one, True, current=True, threshold=2)
    for _ in range(3):  # the supervisor counts these, not the replica
        verdict = judge_check(replicas, one, False, current=True, threshold=2)
        assert verdict is CheckVerdict.SERVICE_CHECK
    assert one.failed == 3


def test_with_others_serving_a_replica_is_replaced_past_the_threshold_only() -> None:
    replicas = ReplicaSet("api")
    sick, well = replicas.add(1), replicas.add(1)
    for replica in (sick, well):
        judge_check(replicas, replica, True, current=True, threshold=2)
    assert judge_check(replicas, sick, False, current=True, threshold=2) is CheckVerdict.COUNTED
    assert judge_check(replicas, sick, False, current=True, threshold=2) is CheckVerdict.REPLACE
    judge_check(replicas, well, True, current=True, threshold=2)
    assert well.failures == 0
