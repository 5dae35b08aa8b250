"""What one replica's failure or health check means for its service: pure, no Ray."""

from __future__ import annotations

from ray_enterprise.registry.replica_rules import (
    CheckVerdict,
    DrainVerdict,
    FailureScope,
    drain_verdict,
    failure_scope,
    judge_check,
)
from ray_enterprise.registry.replicas import ReplicaSet
from tests.support import FakeClock


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


def test_a_live_replica_that_says_not_ready_leaves_the_routes_at_once_and_is_not_replaced() -> None:
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    judge_check(replicas, one, True, current=True, threshold=1)
    for _ in range(5):  # however long it stays not ready: liveness passed, nothing to restart
        verdict = judge_check(replicas, one, True, ready=False, current=True, threshold=1)
        assert verdict is CheckVerdict.PASSED
    assert replicas.routes() == [] and replicas.not_ready() == [one.id]
    assert one.failures == 0


def test_a_replica_not_ready_at_its_first_check_has_started_but_takes_no_calls() -> None:
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    verdict = judge_check(replicas, one, True, ready=False, current=True, threshold=3)
    assert verdict is CheckVerdict.READY  # started: its service counts it as up
    assert replicas.routes() == []
    judge_check(replicas, one, True, ready=True, current=True, threshold=3)
    assert replicas.routes() == [one.id]


def test_back_in_the_routes_only_after_success_threshold_ready_checks_in_a_row() -> None:
    clock = FakeClock()
    replicas = ReplicaSet("api")
    one = replicas.add(1)

    def probe(ready: bool) -> None:
        clock.advance(1.0)
        judge_check(
            replicas, one, True, ready=ready, current=True, threshold=3, success_threshold=3,
            now=clock(),
        )  # fmt: skip

    probe(True)
    assert replicas.routes() == [one.id] and one.ready_since == clock.now
    probe(False)
    probe(True)
    probe(True)
    probe(False)  # the streak starts over
    probe(True)
    probe(True)
    assert replicas.routes() == []
    probe(True)
    assert replicas.routes() == [one.id]
    assert one.ready_since == clock.now  # min_ready_s counts from here, not from the start


def test_after_a_failed_liveness_check_passes_count_only_from_success_threshold() -> None:
    replicas = ReplicaSet("api")
    sick, well = replicas.add(1), replicas.add(1)
    for replica in (sick, well):
        judge_check(replicas, replica, True, current=True, threshold=2, success_threshold=2)
    assert (
        judge_check(replicas, sick, False, current=True, threshold=2, success_threshold=2)
        is CheckVerdict.COUNTED
    )
    # One pass is not enough to forget the failure: the next failure is the second in a row.
    assert (
        judge_check(replicas, sick, True, current=True, threshold=2, success_threshold=2)
        is CheckVerdict.RECOVERING
    )
    assert (
        judge_check(replicas, sick, False, current=True, threshold=2, success_threshold=2)
        is CheckVerdict.REPLACE
    )


def test_two_passes_in_a_row_make_a_failed_replica_healthy_again() -> None:
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    judge_check(replicas, one, True, current=True, threshold=5, success_threshold=2)
    judge_check(replicas, one, False, current=True, threshold=5, success_threshold=2)
    verdicts = [
        judge_check(replicas, one, True, current=True, threshold=5, success_threshold=2)
        for _ in range(3)
    ]
    assert verdicts == [CheckVerdict.RECOVERING, CheckVerdict.PASSED, CheckVerdict.PASSED]
    assert one.failures == 0


def test_a_failed_liveness_check_leaves_a_serving_replica_in_the_routes() -> None:
    # Liveness restarts past the threshold; taking calls away is readiness' job alone.
    replicas = ReplicaSet("api")
    one = replicas.add(1)
    judge_check(replicas, one, True, current=True, threshold=3)
    judge_check(replicas, one, False, current=True, threshold=3)
    assert replicas.routes() == [one.id]


def test_a_drain_stops_as_soon_as_no_call_is_in_flight() -> None:
    clock = FakeClock()
    began = clock()
    assert drain_verdict(2, began=began, now=clock(), timeout_s=5.0) is DrainVerdict.WAIT
    clock.advance(4.9)
    assert drain_verdict(1, began=began, now=clock(), timeout_s=5.0) is DrainVerdict.WAIT
    assert drain_verdict(0, began=began, now=clock(), timeout_s=5.0) is DrainVerdict.STOP


def test_a_call_that_never_ends_is_cut_at_the_graceful_timeout() -> None:
    clock = FakeClock()
    began = clock()
    clock.advance(5.0)
    assert drain_verdict(1, began=began, now=clock(), timeout_s=5.0) is DrainVerdict.CUT
    # A zero timeout: stop at once, whatever is in flight.
    assert drain_verdict(3, began=began, now=began, timeout_s=0.0) is DrainVerdict.CUT
