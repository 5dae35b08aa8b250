"""The replicas of every service: create, start, health-check, watch, drain and kill them,
and publish the route table callers read. The registry's replica half.

It holds the per-replica state (which replicas each service has, their actors, their tasks,
the route tables, node placement) and runs each replica's life as asyncio tasks on the
registry's loop. Every Ray call goes through :class:`ReplicaActor`; what a failure or a check
means is :mod:`replica_rules`; what it means for the service, the supervisor's decision, is
executed by the host (the RegistryActor).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any, Protocol

import ray

from ray_enterprise.errors import ServiceNotFoundError
from ray_enterprise.registry.handle import publish_routes
from ray_enterprise.registry.placement import Placement, node_with_room
from ray_enterprise.registry.prober import Prober
from ray_enterprise.registry.replica_rules import (
    CheckVerdict,
    FailureScope,
    failure_scope,
    judge_check,
)
from ray_enterprise.registry.replica_wrapper import Check, Probe, ReplicaActor, StartFailed
from ray_enterprise.registry.replicas import Replica, ReplicaSet, parse_replica_id, replica_id
from ray_enterprise.registry.routing import RouteTable
from ray_enterprise.registry.supervision import LIVE_STATES, Action, NotifyDependency, Supervisor
from ray_enterprise.spec import HealthSpec, ServiceSpec

_STARTING_PROBE_S = 0.05  # probe fast until the first healthy check: dependents wait on it
_DRAIN_MARGIN_S = 0.2  # beyond the TTL: a call sent just before it expired is still on its way
_PENDING_RETRY_S = 1.0  # a replica no node has room for looks again this often
_UNREACHABLE_WATCH_S = 0.5  # a watch call that found the actor unreachable is sent again then


@dataclass(eq=False)
class _Probed:
    """A replica the prober checks, and the settings of the probe out for it now."""

    name: str
    replica: Replica
    spec: ServiceSpec  # what it was started with: its probe settings while not current
    health: HealthSpec | None = None


class _Rollouts(Protocol):
    """What the replicas ask of the deployer."""

    @property
    def route_ttl_s(self) -> float: ...

    @property
    def drain_timeout_s(self) -> float: ...

    def replica_gone(self, name: str, replica: Replica, reason: str) -> None: ...


class ReplicaHost(Protocol):
    """What the replicas ask of the registry that holds them."""

    @property
    def supervisor(self) -> Supervisor: ...

    @property
    def deployer(self) -> _Rollouts: ...

    def execute(self, actions: list[Action]) -> None: ...

    def wake(self) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...


class ReplicaManager:
    """Owned by the RegistryActor; runs on its event loop."""

    def __init__(self, host: ReplicaHost) -> None:
        self._host = host
        self.replicas: dict[str, ReplicaSet] = {}  # service -> its replica actors
        self.actors: dict[str, ReplicaActor] = {}  # replica id -> its actor
        self.routes: dict[str, RouteTable] = {}  # service -> the table callers read
        self.retiring: dict[str, asyncio.Task[None]] = {}  # replica id -> its drain
        self.monitors: dict[str, list[asyncio.Task[None]]] = {}  # replica id -> its tasks
        self.probed: dict[str, _Probed] = {}  # replica id -> what its probes are for
        self.prober = Prober(self)  # every replica's probes and watch call, in one loop
        self.place = Placement()
        self.changed: set[str] = set()  # services whose replicas, routes or node changed

    def take_changed(self) -> set[str]:
        """Services whose replicas, routes or node changed since the last call: what the
        registry's status snapshot and replica count must look at again."""
        taken, self.changed = self.changed, set()
        return taken

    def clear(self) -> None:
        for rid in list(self.monitors):
            self.cancel_monitors(rid)
        self.prober.clear()
        self.probed.clear()
        self.replicas.clear()
        self.actors.clear()
        self.routes.clear()
        self.retiring.clear()
        self.place.clear()
        self.changed.clear()

    def _new_actor(self, spec: ServiceSpec, replica: Replica) -> ReplicaActor | None:
        """The replica's actor, placed; None while ``max_replicas_per_node`` leaves no node
        with room (it stays pending, as in Ray Serve, until a node joins or a replica goes)."""
        rid, opts = replica.id, spec.actor
        if opts.max_replicas_per_node is not None:
            members = self.replicas.get(spec.name)
            others = [r for r in members.members.values() if r is not replica] if members else []
            target = node_with_room(
                self.place.candidates(opts.resources, opts.node_id),
                Counter(r.node for r in others if r.node),
                opts.max_replicas_per_node,
            )
            if target is None:
                return None
            replica.node = target  # counted for its siblings before it reports its node
            return ReplicaActor.create(spec, rid, spread_to=target)
        target = None
        if opts.spread and not opts.node_id and not opts.resources:
            target = self.place.choose_node()
            if target is not None:
                self.place.placed[spec.name] = target
        return ReplicaActor.create(spec, rid, spread_to=target)

    def launch(self, name: str, generation: int) -> None:
        """Start every replica of a new generation at once."""
        rec = self._host.supervisor.record(name)
        replicas = self.replicas.setdefault(name, ReplicaSet(name))
        self.changed.add(name)
        for _ in range(rec.spec.replicas):
            replica = replicas.add(generation)
            self._host.spawn(self.run(name, replica, rec.spec, created=True))

    def start_replica(self, name: str, generation: int, spec: ServiceSpec) -> Replica:
        """One more replica of ``generation`` running ``spec``: how an upgrade adds greens."""
        replica = self.replicas.setdefault(name, ReplicaSet(name)).add(generation)
        self.changed.add(name)
        self._host.spawn(self.run(name, replica, spec, created=True))
        return replica

    def is_member(self, name: str, replica: Replica) -> bool:
        replicas = self.replicas.get(name)
        return replicas is not None and replicas.get(replica.id) is replica

    def is_current(self, name: str, replica: Replica) -> bool:
        """A member of the service's current generation, which the supervisor watches."""
        try:
            rec = self._host.supervisor.record(name)
        except ServiceNotFoundError:  # forgotten while this monitor was between steps
            return False
        return rec.generation == replica.generation and rec.state in LIVE_STATES

    async def run(self, name: str, replica: Replica, spec: ServiceSpec, *, created: bool) -> None:
        """Create (or adopt) and start one replica, then hand it to the prober, which
        health-checks and watches it until it leaves."""
        self.monitors[replica.id] = [asyncio.current_task()]  # type: ignore[list-item]
        try:
            actor = self._new_actor(spec, replica) if created else ReplicaActor.lookup(replica.id)
            while created and actor is None:  # pending: no node has room for it
                replica.pending = True
                await asyncio.sleep(_PENDING_RETRY_S)
                if not self.is_member(name, replica):
                    return
                actor = self._new_actor(spec, replica)
            replica.pending = False
            if actor is None:
                raise RuntimeError(f"actor {replica.id} is gone")
        except Exception as exc:  # bad class path, bad options: a failed start like any other
            self.replica_failed(name, replica, f"could not create actor: {exc}", alive=False)
            return
        self.actors[replica.id] = actor
        self.probed[replica.id] = _Probed(name, replica, spec)
        self.prober.add(replica.id, actor)  # watched from now: a death during start() is seen
        try:
            node = await actor.start(spec, replica.generation)
        except StartFailed as failed:
            self.replica_failed(name, replica, failed.reason, alive=failed.alive)
            return
        replica.node = node
        if self.is_current(name, replica):
            self.changed.add(name)
            self.place.nodes[name] = node
            self.place.placed[name] = node
            why = self._host.supervisor.record(name).last_error
            self.place.note_move(name, replica.generation, node, why)
            self._host.supervisor.started(name, replica.generation)
        self.prober.again(replica.id, 0.0)  # probed from the next tick until it leaves

    def replica_failed(
        self, name: str, replica: Replica, reason: str, *, alive: bool, health: bool = False
    ) -> None:
        """One replica died, failed to start, or failed its checks past the threshold; whether
        that is the service failing is :func:`failure_scope`'s rule, what then the supervisor's."""
        current = self.is_current(name, replica)
        scope = failure_scope(self.replicas.get(name), replica, current=current)
        if scope is FailureScope.REPLICA:
            self.replicas[name].remove(replica.id)
            self.drop_actor(replica.id)
            self.publish(name)
            replica.failures = -1  # the upgrade reads this: gone for a reason, not retired
            self._host.deployer.replica_gone(name, replica, reason)
            if current:
                self._host.execute(
                    self._host.supervisor.replica_lost(name, replica.generation, reason)
                )
                self._host.wake()
        elif scope is FailureScope.SERVICE and health:
            self._host.execute(
                self._host.supervisor.health_failed(
                    name, self._host.supervisor.record(name).generation, reason
                )
            )
        elif scope is FailureScope.SERVICE:
            self._host.execute(self._host.supervisor.died(name, replica.generation, reason))
            self.kill(name, replica.generation)  # with any sibling still starting

    # -- the prober's owner: what a probe or a watch call seen by the prober means ----------

    def probe_timeout(self, rid: str) -> float | None:
        """The timeout of the replica's next probe (the service's current spec's, or its own
        while it is not of the current generation); None once it is no longer a member."""
        probed = self.probed.get(rid)
        if probed is None or not self.is_member(probed.name, probed.replica):
            self._stop_probing(rid)
            return None
        if self.is_current(probed.name, probed.replica):
            probed.health = self._host.supervisor.record(probed.name).spec.health
        else:
            probed.health = probed.spec.health
        return probed.health.timeout_s

    def checked(self, rid: str, check: Check) -> None:
        probed = self.probed.get(rid)
        if probed is None:
            return
        name, replica = probed.name, probed.replica
        if check.outcome is Probe.DIED:
            self.replica_failed(name, replica, check.detail, alive=False)
            self._stop_probing(rid)
            return
        if check.outcome is Probe.UNREACHABLE:
            self.place.suspect(name, replica.node)
        if check.outcome in (Probe.UNREACHABLE, Probe.TIMED_OUT):
            # A timeout proves nothing (a partition heals), a refused raylet does: looking
            # takes a connection attempt, so it runs beside the prober, not inside its tick.
            task = self._host.spawn(self._judge_after_node_check(probed, check))
            monitors = self.monitors.get(rid)
            if monitors is not None:
                monitors.append(task)
            return
        self.judge(probed, check)

    async def _judge_after_node_check(self, probed: _Probed, check: Check) -> None:
        gone = await self.place.node_gone(probed.name, probed.replica.node)
        if gone is not None:
            self.replica_failed(probed.name, probed.replica, gone, alive=False)
            self._stop_probing(probed.replica.id)
            return
        self.judge(probed, check)

    def judge(self, probed: _Probed, check: Check) -> None:
        """One probe's outcome, counted against the replica and its service; then the next
        probe is scheduled: every 50 ms until the first healthy check, then each period_s."""
        name, replica = probed.name, probed.replica
        health = probed.health or probed.spec.health
        if not self.is_member(name, replica):
            self._stop_probing(replica.id)
            return
        current = self.is_current(name, replica)
        serving = replica.serving
        verdict = judge_check(
            self.replicas[name],
            replica,
            check.ok,
            ready=check.ready,
            current=current,
            threshold=health.failure_threshold,
            success_threshold=health.success_threshold,
            now=time.monotonic(),
        )
        if verdict is CheckVerdict.READY or replica.serving != serving:
            self.publish(name)  # started, or readiness moved it in or out of the routes
        if verdict in (CheckVerdict.READY, CheckVerdict.PASSED) and current:
            before = self._host.supervisor.record(name).state
            self._host.supervisor.health_passed(name, replica.generation)
            if before is not self._host.supervisor.record(name).state:
                self._host.wake()
        elif verdict is CheckVerdict.SERVICE_CHECK:
            self.replica_failed(name, replica, check.detail, alive=True, health=True)
        elif verdict is CheckVerdict.REPLACE:
            detail = f"health check failed {replica.failures} times in a row: {check.detail}"
            self.replica_failed(name, replica, detail, alive=True)
            self._stop_probing(replica.id)
            return
        starting = not replica.ready
        self.prober.again(replica.id, _STARTING_PROBE_S if starting else health.period_s)

    def watched(self, rid: str, outcome: str) -> None:
        """The call always pending on the replica returned: it died, or the service ended."""
        probed = self.probed.get(rid)
        if probed is None:
            return
        name, replica = probed.name, probed.replica
        if not self.is_member(name, replica):
            self._stop_probing(rid)
            return
        if outcome.startswith("died: "):
            self.replica_failed(name, replica, outcome[len("died: ") :], alive=False)
            self._stop_probing(rid)
            return
        if outcome == "unreachable":  # unreachable for now; the health checks count it
            self.prober.watch_again(rid, _UNREACHABLE_WATCH_S)
            return
        if outcome == "completed" and self.is_current(name, replica):
            self._host.execute(self._host.supervisor.completed(name, replica.generation))
        if outcome in ("stopped", "completed") or outcome.startswith("failed: "):
            self.prober.watch_again(rid, None)  # nothing more to wait for; probes go on
            return
        self.prober.watch_again(rid, 0.0)  # the poll ran out: wait again

    def _stop_probing(self, rid: str) -> None:
        self.prober.remove(rid)
        self.probed.pop(rid, None)

    def publish(self, name: str) -> None:
        """Tell callers which replicas take calls now, if that changed."""
        replicas = self.replicas.get(name)
        if replicas is None:
            return
        self.changed.add(name)  # called after every change of membership as well
        ids = tuple(replicas.routes())
        old = self.routes.get(name)
        spec = self._host.supervisor.record(name).spec
        ttl = self._host.deployer.route_ttl_s
        epoch = (old.epoch if old else 0) + 1
        table = RouteTable(epoch, ids, ttl, spec.routing, spec.call_wait_s)
        if old is not None and replace(old, epoch=epoch) == table:
            return
        self.routes[name] = table
        publish_routes(name, table)

    def retire(self, name: str, replica: Replica) -> asyncio.Task[None]:
        """Take a replica out of the routes, let its calls finish, stop it. Idempotent."""
        task = self.retiring.get(replica.id)
        if task is None:
            replica.draining = True
            self.publish(name)
            task = self._host.spawn(self._drain(name, replica))
            self.retiring[replica.id] = task
        return task

    async def _drain(self, name: str, replica: Replica) -> None:
        """Wait out every caller's route table, then the calls in flight, then stop and kill."""
        try:
            await asyncio.sleep(self._host.deployer.route_ttl_s + _DRAIN_MARGIN_S)
            actor = self.actors.get(replica.id)
            if actor is not None:
                spec = self._host.supervisor.record(name).spec
                await actor.drain(*self.graceful(spec))
                await actor.stop(spec.shutdown_timeout_s)
        finally:
            replicas = self.replicas.get(name)
            if replicas is not None and replicas.get(replica.id) is replica:
                replicas.remove(replica.id)
                self.changed.add(name)
            self.drop_actor(replica.id)
            self.retiring.pop(replica.id, None)

    def graceful(self, spec: ServiceSpec) -> tuple[float, float]:
        """How long a replica taken away waits for its calls in flight, and how often it
        looks (Ray Serve's graceful_shutdown_timeout_s and _wait_loop_s); then stop(), within
        shutdown_timeout_s, then the kill cuts whatever still runs."""
        timeout = spec.graceful_shutdown_timeout_s
        if timeout is None:
            timeout = self._host.deployer.drain_timeout_s
        return timeout, spec.graceful_shutdown_wait_loop_s

    def cancel_monitors(self, rid: str) -> None:
        self._stop_probing(rid)
        current = asyncio.current_task()
        for task in self.monitors.pop(rid, []):
            if task is not current:
                task.cancel()

    def drop_actor(self, rid: str) -> None:
        self.cancel_monitors(rid)
        actor = self.actors.pop(rid, None) or ReplicaActor.lookup(rid)
        if actor is not None:
            actor.kill()

    def kill(self, name: str, generation: int) -> None:
        """Kill every replica of one generation of a service."""
        replicas = self.replicas.get(name)
        if replicas is not None:
            for replica in [r for r in replicas.members.values() if r.generation == generation]:
                replicas.remove(replica.id)
                self.drop_actor(replica.id)
            self.publish(name)
        self.drop_actor(replica_id(name, generation))  # one a registry restart did not adopt
        if generation == self._host.supervisor.record(name).generation:
            self.place.forget(name)
            self.changed.add(name)

    async def notify(self, action: NotifyDependency) -> None:
        replicas = self.replicas.get(action.target)
        if replicas is None:
            return
        for replica in replicas.of(action.generation):
            actor = self.actors.get(replica.id)
            if actor is not None and self.is_current(action.target, replica):
                await actor.notify(action.dependency, action.state.value)

    async def stop_all_of(self, name: str, spec: ServiceSpec) -> None:
        """Stop every replica of ``name`` (its routes already withdrawn): let the calls in
        flight finish, run stop() within ``shutdown_timeout_s``, then kill it."""
        replicas = self.replicas.get(name)
        members = list(replicas.members.values()) if replicas else []
        for replica in members:
            self.cancel_monitors(replica.id)

        async def stop(replica: Replica) -> None:
            actor = self.actors.get(replica.id) or ReplicaActor.lookup(replica.id)
            if actor is not None:
                await actor.drain(*self.graceful(spec))
                await actor.stop(spec.shutdown_timeout_s)

        await asyncio.gather(*(stop(r) for r in members))
        self.changed.add(name)
        for replica in members:
            if replicas is not None:
                replicas.remove(replica.id)
            self.drop_actor(replica.id)

    async def check_now(self, members: list[Replica], timeout_s: float) -> tuple[bool, str]:
        """Probe ``members`` now, outside the periodic schedule: all passed, and what was seen."""
        ok, details = True, []
        for replica in members:
            actor = self.actors.get(replica.id)
            one_ok, one = False, "not created yet"
            if actor is not None:
                check = await actor.check(timeout_s)
                one_ok, one = check.ok, check.detail
                if check.error is not None:
                    one = f"health check failed: {check.error}"
            ok = ok and one_ok
            if one:
                details.append(one if len(members) == 1 else f"{replica.id}: {one}")
        return ok, "; ".join(details)

    async def wait_names_released(self, timeout_s: float = 10.0) -> None:
        """ray.kill is asynchronous: wait until no service actor name is still taken."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if not any(parse_replica_id(n) for n in ray.util.list_named_actors()):
                return
            await asyncio.sleep(0.05)
