"""What a replica's health check or watch call means, as the prober delivers them: the
registry's half of :class:`~ray_enterprise.registry.prober.Prober`.

Every replica of every service is probed and watched from one loop (the prober); each answer
comes here, is counted against its replica by :func:`judge_check`, and what that means for its
service goes to the supervisor (passed, failed past the threshold, died), the same decisions
the per-replica loop made before the prober: 50 ms probes until the first healthy check, then
``health.period_s`` of the service's current spec, its ``timeout_s``, thresholds, readiness.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from ray_enterprise.registry.placement import Placement
from ray_enterprise.registry.prober import Prober
from ray_enterprise.registry.replica_rules import CheckVerdict, judge_check
from ray_enterprise.registry.replica_wrapper import Check, Probe, ReplicaActor
from ray_enterprise.registry.replicas import Replica, ReplicaSet
from ray_enterprise.registry.supervision import Action, Supervisor
from ray_enterprise.spec import HealthSpec, ServiceSpec

_STARTING_PROBE_S = 0.05  # probe fast until the first healthy check: dependents wait on it
_UNREACHABLE_WATCH_S = 0.5  # a watch call that found the actor unreachable is sent again then


class _Fleet(Protocol):
    """What the checks ask of the replicas' keeper (:class:`ReplicaManager`)."""

    replicas: dict[str, ReplicaSet]
    monitors: dict[str, list[asyncio.Task[None]]]
    place: Placement

    def is_member(self, name: str, replica: Replica) -> bool: ...

    def is_current(self, name: str, replica: Replica) -> bool: ...

    def publish(self, name: str) -> None: ...

    def replica_failed(
        self, name: str, replica: Replica, reason: str, *, alive: bool, health: bool = False
    ) -> None: ...


class _Host(Protocol):
    """What the checks ask of the registry."""

    @property
    def supervisor(self) -> Supervisor: ...

    def execute(self, actions: list[Action]) -> None: ...

    def wake(self) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


@dataclass(eq=False)
class _Probed:
    """A replica the prober checks, and the settings of the probe out for it now."""

    name: str
    replica: Replica
    spec: ServiceSpec  # what it was started with: its probe settings while not current
    health: HealthSpec | None = None


class ReplicaChecks:
    """The prober's owner (:class:`~ray_enterprise.registry.prober.ProbeOwner`)."""

    def __init__(self, fleet: _Fleet, host: _Host) -> None:
        self._fleet = fleet
        self._host = host
        self._probed: dict[str, _Probed] = {}  # replica id -> what its probes are for
        self.prober = Prober(self)

    def watch(self, name: str, replica: Replica, spec: ServiceSpec, actor: ReplicaActor) -> None:
        """Watch the replica from now on (it is probed from :meth:`probe` on)."""
        self._probed[replica.id] = _Probed(name, replica, spec)
        self.prober.add(replica.id, actor)

    def probe(self, rid: str) -> None:
        self.prober.again(rid, 0.0)

    def stop(self, rid: str) -> None:
        self.prober.remove(rid)
        self._probed.pop(rid, None)

    def clear(self) -> None:
        self.prober.clear()
        self._probed.clear()

    def probe_timeout(self, rid: str) -> float | None:
        """The timeout of the replica's next probe (the service's current spec's, or its own
        while it is not of the current generation); None once it is no longer a member."""
        probed = self._probed.get(rid)
        if probed is None or not self._fleet.is_member(probed.name, probed.replica):
            self.stop(rid)
            return None
        if self._fleet.is_current(probed.name, probed.replica):
            probed.health = self._host.supervisor.record(probed.name).spec.health
        else:
            probed.health = probed.spec.health
        return probed.health.timeout_s

    def checked(self, rid: str, check: Check) -> None:
        probed = self._probed.get(rid)
        if probed is None:
            return
        name, replica = probed.name, probed.replica
        if check.outcome is Probe.DIED:
            self._fleet.replica_failed(name, replica, check.detail, alive=False)
            self.stop(rid)
            return
        if check.outcome is Probe.UNREACHABLE:
            self._fleet.place.suspect(name, replica.node)
        if check.outcome in (Probe.UNREACHABLE, Probe.TIMED_OUT):
            # A timeout proves nothing (a partition heals), a refused raylet does: looking
            # takes a connection attempt, so it runs beside the prober, not inside its tick.
            task = self._host.spawn(self._judge_after_node_check(probed, check))
            monitors = self._fleet.monitors.get(rid)
            if monitors is not None:
                monitors.append(task)
            return
        self.judge(probed, check)

    async def _judge_after_node_check(self, probed: _Probed, check: Check) -> None:
        gone = await self._fleet.place.node_gone(probed.name, probed.replica.node)
        if gone is not None:
            self._fleet.replica_failed(probed.name, probed.replica, gone, alive=False)
            self.stop(probed.replica.id)
            return
        self.judge(probed, check)

    def judge(self, probed: _Probed, check: Check) -> None:
        """One probe's outcome, counted against the replica and its service; then the next
        probe is scheduled: every 50 ms until the first healthy check, then each period_s."""
        name, replica = probed.name, probed.replica
        health = probed.health or probed.spec.health
        if not self._fleet.is_member(name, replica):
            self.stop(replica.id)
            return
        current = self._fleet.is_current(name, replica)
        serving = replica.serving
        verdict = judge_check(
            self._fleet.replicas[name],
            replica,
            check.ok,
            ready=check.ready,
            current=current,
            threshold=health.failure_threshold,
            success_threshold=health.success_threshold,
            now=time.monotonic(),
        )
        if verdict is CheckVerdict.READY or replica.serving != serving:
            self._fleet.publish(name)  # started, or readiness moved it in or out of the routes
        if verdict in (CheckVerdict.READY, CheckVerdict.PASSED) and current:
            before = self._host.supervisor.record(name).state
            self._host.supervisor.health_passed(name, replica.generation)
            if before is not self._host.supervisor.record(name).state:
                self._host.wake()
        elif verdict is CheckVerdict.SERVICE_CHECK:
            self._fleet.replica_failed(name, replica, check.detail, alive=True, health=True)
        elif verdict is CheckVerdict.REPLACE:
            detail = f"health check failed {replica.failures} times in a row: {check.detail}"
            self._fleet.replica_failed(name, replica, detail, alive=True)
            self.stop(replica.id)
            return
        starting = not replica.ready
        self.prober.again(replica.id, _STARTING_PROBE_S if starting else health.period_s)

    def watched(self, rid: str, outcome: str) -> None:
        """The call always pending on the replica returned: it died, or the service ended."""
        probed = self._probed.get(rid)
        if probed is None:
            return
        name, replica = probed.name, probed.replica
        if not self._fleet.is_member(name, replica):
            self.stop(rid)
            return
        if outcome.startswith("died: "):
            self._fleet.replica_failed(name, replica, outcome[len("died: ") :], alive=False)
            self.stop(rid)
            return
        if outcome == "unreachable":  # unreachable for now; the health checks count it
            self.prober.watch_again(rid, _UNREACHABLE_WATCH_S)
            return
        if outcome == "completed" and self._fleet.is_current(name, replica):
            self._host.execute(self._host.supervisor.completed(name, replica.generation))
        if outcome in ("stopped", "completed") or outcome.startswith("failed: "):
            self.prober.watch_again(rid, None)  # nothing more to wait for; probes go on
            return
        self.prober.watch_again(rid, 0.0)  # the poll ran out: wait again
