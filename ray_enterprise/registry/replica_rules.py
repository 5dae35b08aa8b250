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
    READY = "ready"  # its first pass: started, it counts for its service from now on
    PASSED = "passed"
    RECOVERING = "recovering"  # passed, but it failed lately: success_threshold not yet met,
    # so the service is not told it is healthy again and the failures still count
    COUNTED = "counted"  # failed, below the threshold, others serve: nothing to do yet
    SERVICE_CHECK = "service_check"  # failed, and it is all the service has: the supervisor
    # counts it toward the service's threshold (a service fails as a whole)
    REPLACE = "replace"  # failed past the threshold while others serve: replace it alone


def judge_check(
    replicas: ReplicaSet,
    replica: Replica,
    ok: bool,
    *,
    current: bool,
    threshold: int,
    ready: bool | None = None,
    success_threshold: int = 1,
    now: float = 0.0,
) -> CheckVerdict:
    """Count one probe of ``replica`` and say what it calls for.

    ``ok`` is liveness, ``ready`` readiness (None: ready whenever live). Liveness failures
    count toward ``threshold`` (restart); readiness only moves the replica in or out of the
    routes (``replica.serving``), at once on a no, after ``success_threshold`` yeses in a row
    to come back. The first live check ends the startup: that one alone makes it serve.
    """
    ready = ok if ready is None else ok and ready
    if ok:
        replica.passed += 1
        replica.streak += 1
        replica.ready_streak = replica.ready_streak + 1 if ready else 0
        if not replica.ready:  # the startup probe passed
            replica.ready = True
            replica.failures = 0
            replica.recovering = False
            _serve(replica, ready, now)
            return CheckVerdict.READY
        if not ready:
            _serve(replica, False, now)
        elif not replica.serving and replica.ready_streak >= success_threshold:
            _serve(replica, True, now)
        if replica.recovering and replica.streak < success_threshold:
            return CheckVerdict.RECOVERING
        replica.recovering = False
        replica.failures = 0
        return CheckVerdict.PASSED
    replica.failed += 1
    replica.streak = replica.ready_streak = 0
    replica.recovering = True
    past = replicas.health_failed(replica.id, threshold)
    if current and not replicas.others_up(replica.id, replica.generation):
        return CheckVerdict.SERVICE_CHECK
    return CheckVerdict.REPLACE if past else CheckVerdict.COUNTED


def _serve(replica: Replica, serving: bool, now: float) -> None:
    """Into or out of the routes; ``ready_since`` is when it last began to serve."""
    if not serving:
        replica.ready_since = None
    elif not replica.serving or replica.ready_since is None:
        replica.ready_since = now
    replica.serving = serving


class DrainVerdict(str, Enum):
    STOP = "stop"  # no call in flight: run stop() now
    WAIT = "wait"  # calls in flight, time left: look again after the wait loop period
    CUT = "cut"  # graceful_shutdown_timeout_s is over: stop() and the kill cut what still runs


def drain_verdict(inflight: int, *, began: float, now: float, timeout_s: float) -> DrainVerdict:
    """Graceful stop (Ray Serve's): a replica taken away waits for its calls in flight, but a
    call that never ends must not hold a scale-down or an upgrade forever."""
    if inflight <= 0:
        return DrainVerdict.STOP
    return DrainVerdict.CUT if now - began >= timeout_s else DrainVerdict.WAIT
