"""What one replica's failure or health check means for its service: pure, no Ray.

The registry actor observes (a replica died, failed to start, passed or failed a check) and
asks these rules what follows; the supervisor then decides about the service as a whole.
"""

from __future__ import annotations

from enum import Enum

from ray_enterprise.registry.replicas import Replica, ReplicaSet


class FailureScope(str, Enum):
    IGNORED = "ignored"  # no longer a member, or draining: its leaving was planned
    REPLICA = "replica"  # replace it alone: others of its version serve, or it is an upgrade's
    SERVICE = "service"  # the last of the current version: the service itself failed


def failure_scope(replicas: ReplicaSet | None, replica: Replica, *, current: bool) -> FailureScope:
    """Whether a replica that failed takes its service down with it.

    ``current``: the replica is of the service's current generation, which the supervisor
    watches. A replica of an upgrade's new version is the upgrade's business; one of several
    in the current version is replaced alone; only the last one is the service failing.
    """
    if replicas is None or replicas.get(replica.id) is not replica or replica.draining:
        return FailureScope.IGNORED
    if not current or replicas.others_up(replica.id, replica.generation):
        return FailureScope.REPLICA
    return FailureScope.SERVICE


class CheckVerdict(str, Enum):
    READY = "ready"  # passed, and its first pass: it takes calls from now on (routes change)
    PASSED = "passed"
    COUNTED = "counted"  # failed, below the threshold, others serve: nothing to do yet
    SERVICE_CHECK = "service_check"  # failed, and it is all the service has: the supervisor
    # counts it toward the service's threshold (a service fails as a whole)
    REPLACE = "replace"  # failed past the threshold while others serve: replace it alone


def judge_check(
    replicas: ReplicaSet, replica: Replica, ok: bool, *, current: bool, threshold: int
) -> CheckVerdict:
    """Count one health check of ``replica`` and say what it calls for."""
    if ok:
        replica.passed += 1
        return CheckVerdict.READY if replicas.health_passed(replica.id) else CheckVerdict.PASSED
    replica.failed += 1
    past = replicas.health_failed(replica.id, threshold)
    if current and not replicas.others_up(replica.id, replica.generation):
        return CheckVerdict.SERVICE_CHECK
    return CheckVerdict.REPLACE if past else CheckVerdict.COUNTED
