"""The replicas of every service: create, start, health-check, watch, drain and kill them,
and publish the route table callers read. The registry's replica half.

It holds the per-replica state (which replicas each service has, their actors, their tasks,
the route tables, node placement) and runs each replica's start and drain as asyncio tasks on
the registry's loop; its health checks and watch call run in one loop for all replicas
(:mod:`replica_checks`). Every Ray call goes through :class:`ReplicaActor`; what a failure or
a check means is :mod:`replica_rules`; what it means for the service, the supervisor's
decision, is executed by the host (the RegistryActor).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, Protocol

import ray

from ray_enterprise.errors import ServiceNotFoundError
from ray_enterprise.registry.handle import publish_routes
from ray_enterprise.registry.placement import Placement, node_with_room
from ray_enterprise.registry.replica_checks import ReplicaChecks
from ray_enterprise.registry.replica_rules import FailureScope, failure_scope
from ray_enterprise.registry.replica_wrapper import ReplicaActor, StartFailed
from ray_enterprise.registry.replicas import Replica, ReplicaSet, parse_replica_id, replica_id
from ray_enterprise.registry.routing import RouteTable
from ray_enterprise.registry.supervision import LIVE_STATES, Action, NotifyDependency, Supervisor
from ray_enterprise.spec import ServiceSpec

_DRAIN_MARGIN_S = 0.2  # beyond the TTL: a call sent just before it expired is still on its way
_PENDING_RETRY_S = 1.0  # a replica no node has room for looks again this often


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
        self.checks = ReplicaChecks(self, host)  # every replica's probes and watch call, one loop
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
        self.checks.clear()
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
        self.checks.watch(name, replica, spec, actor)  # a death during start() is seen too
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
        self.checks.probe(replica.id)  # from the next tick until it leaves

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
        self.checks.stop(rid)
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
