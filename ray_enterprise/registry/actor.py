"""RegistryActor: the thin Ray shell around :class:`Supervisor`.

It does only I/O and scheduling: creates and kills service actors, runs their health probes and
crash watches, executes the supervisor's actions and keeps the desired state in the GCS
key-value store so that a restarted registry rebuilds itself and re-adopts what still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Coroutine
from dataclasses import astuple, replace
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert, report_health_transition
from ray_enterprise.errors import ServiceNotFoundError, ServiceUnavailableError
from ray_enterprise.observability.metrics import MetricType, record_metric
from ray_enterprise.observability.system_metrics import REGISTRY_TICK_METRIC
from ray_enterprise.redaction import redact_text
from ray_enterprise.registry.alert_reports import AlertReports
from ray_enterprise.registry.control_state import ControlState
from ray_enterprise.registry.handle import ServiceHandle, publish_routes, withdraw_routes
from ray_enterprise.registry.placement import Placement
from ray_enterprise.registry.recovery import plan_recovery
from ray_enterprise.registry.replica_rules import (
    CheckVerdict,
    FailureScope,
    failure_scope,
    judge_check,
)
from ray_enterprise.registry.replicas import Replica, ReplicaSet, parse_replica_id, replica_id
from ray_enterprise.registry.routing import RouteTable
from ray_enterprise.registry.status import overall_status, service_status
from ray_enterprise.registry.supervision import (
    LIVE_STATES,
    UP_STATES,
    Action,
    KillService,
    NotifyDependency,
    ServiceState,
    StartService,
    Supervisor,
)
from ray_enterprise.service import CONCURRENCY_GROUPS, counted
from ray_enterprise.spec import ServiceSpec
from ray_enterprise.system_actors import SERVICE_PREFIX, get_system_actor

logger = logging.getLogger("ray_enterprise.registry")

NAMESPACE = _kv.NAMESPACE
_SPEC = "registry/spec/"
_RECORD = "registry/record/"
_DESIRED = "registry/desired"
_REPORTED = "registry/reported"  # the last state told to the alerts, per service
_WATCH_POLL_S = 30.0
_STARTING_PROBE_S = 0.05  # probe fast until the first healthy check: dependents wait on it
_ROUTE_TTL_S = 0.5  # how stale a caller's route table may be (deployment.route_ttl_seconds)
_DRAIN_MARGIN_S = 0.2  # beyond the TTL: a call sent just before it expired is still on its way


def actor_name(service: str, generation: int, index: int = 0) -> str:
    """Service actors are named by service, generation and replica, as Serve names replicas."""
    return replica_id(service, generation, index)


def _error_text(exc: BaseException) -> str:
    """The user's exception, not Ray's wrapper with its remote traceback."""
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:500]


def _death_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"actor died: {text[0] if text else type(exc).__name__}"[:300]


class RegistryActor:
    """Named, detached, restartable; one reconcile loop over every service."""

    def __init__(self, tick_s: float = 0.05) -> None:
        restart_alert = RestartAlert(system_actors.REGISTRY)
        self._tick_s = tick_s
        self._sup = Supervisor()
        self._state = ControlState()  # the GCS KV, and what should run in the durable store
        self._replicas: dict[str, ReplicaSet] = {}  # service -> its replica actors
        self._actors: dict[str, Any] = {}  # replica id -> actor handle
        self._routes: dict[str, RouteTable] = {}  # service -> the table callers read
        self._retiring: dict[str, asyncio.Task[None]] = {}  # replica id -> its drain
        self._place = Placement()
        self._monitors: dict[str, list[asyncio.Task[None]]] = {}  # replica id -> its tasks
        self._persisted: dict[str, dict[str, Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._remote_classes: dict[str, Any] = {}
        self._reports = AlertReports()  # what the alert manager was told last
        from ray_enterprise.registry.deployer import Deployer
        from ray_enterprise.registry.scaling import Scaler

        self.deployer = Deployer(self)
        self.scaler = Scaler(self, self.deployer)
        adopted = self._recover()
        self._report_again()
        loop = asyncio.get_event_loop()
        for name in adopted:
            spec = self._sup.record(name).spec
            for replica in list(self._replicas[name].members.values()):
                self._spawn(self._run_replica(name, replica, spec, created=False))
            self._publish(name)
        if _kv.get(_DESIRED) == "stopping":
            self._stopping = loop.create_task(self._stop_all())
        self._loop_task = loop.create_task(self._reconcile_forever())
        self._autoscale_task = loop.create_task(self.scaler.autoscale_forever())
        restart_alert.recovered()  # specs reloaded, live actors adopted: serving again

    # -- recovery -------------------------------------------------------------------------

    def _recover(self) -> list[str]:
        """Rebuild from the key-value store; returns the services whose actors were adopted."""
        specs = [ServiceSpec.model_validate(v) for v in _kv.scan(_SPEC).values()]
        if specs:
            self._sup.register_all(specs)
        desired = _kv.get(_DESIRED)
        self._sup.running = desired == "running"
        records = {key[len(_RECORD) :]: rec for key, rec in _kv.scan(_RECORD).items()}
        # An upgrade cut short ends here, as old or new: the record's generation says which.
        generations = {n: int(r.get("generation", 0)) for n, r in records.items()}
        for committed in self.deployer.recover(generations):
            self._sup.register(committed)
        for name in records.keys() & {r.spec.name for r in self._sup.records()}:
            self._persisted[name] = records[name]
        plan = plan_recovery(
            records,
            [r.spec.name for r in self._sup.records()],
            ray.util.list_named_actors(all_namespaces=False),
            desired,
        )
        for adopt in plan.adopt:
            self._sup.adopt(adopt.name, adopt.generation)
            self._sup.record(adopt.name).restarts = adopt.restarts
            self._replicas.setdefault(adopt.name, ReplicaSet(adopt.name)).adopt(adopt.replica_ids)
        for restore in plan.restore:
            self._sup.restore(
                restore.name,
                restore.generation,
                failed=restore.failed,
                restarts=restore.restarts,
                planned=not self._sup.running,
            )
            if not self._sup.running:
                self._sup.stopped(restore.name)
        for orphan in plan.orphans:
            handle = self._lookup(orphan)
            if handle is not None:
                ray.kill(handle, no_restart=True)
        adopted = [a.name for a in plan.adopt]
        for name in {r.spec.name for r in self._sup.records()} - set(adopted):
            withdraw_routes(name)
        if specs:
            logger.info("registry recovered %d specs, adopted %s", len(specs), adopted)
        return adopted

    @staticmethod
    def _lookup(name: str) -> Any:
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return None

    # -- the loop -------------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            began = time.monotonic()
            try:
                self._report_transitions()  # a death seen since: told before its restart starts
                self._execute(self._sup.tick())
                self._reconcile_replicas()
                self._persist()
                self._report_transitions()
            except Exception:  # the loop must outlive any one bad step
                logger.exception("reconcile step failed")
            record_metric(REGISTRY_TICK_METRIC, time.monotonic() - began, MetricType.HISTOGRAM)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._tick_s)
            self._wake.clear()

    def _report_transitions(self) -> None:
        """Tell the alerts what changed since the last tick (the rule: :class:`AlertReports`).
        Never waits: the alert side queues and sends on its own thread."""
        reports = self._reports.take(self._sup.take_transitions(), self._criticality)
        if reports:
            # Durable before it is sent: a registry killed in between tells it again. A store
            # that cannot be written costs that guarantee, never the reports themselves.
            try:
                _kv.put(_REPORTED, self._reports.told)
            except Exception:
                logger.exception("could not record the alerts told; sending them anyway")
        for report in reports:
            report_health_transition(*astuple(report))

    def _criticality(self, name: str) -> str | None:
        try:
            return self._sup.record(name).spec.criticality.value
        except ServiceNotFoundError:  # unregistered since
            return None

    def _report_again(self) -> None:
        self._reports = AlertReports(_kv.get(_REPORTED, {}))
        services = [(r.spec.name, r.spec.criticality.value) for r in self._sup.records()]
        for report in self._reports.again(services):
            report_health_transition(*astuple(report))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartService):
                self._persist_one(action.name)  # the generation is durable before the actor
                self._launch(action.name, action.generation)
            elif isinstance(action, KillService):
                self._kill(action.name, action.generation)
            elif isinstance(action, NotifyDependency):
                self._spawn(self._notify(action))
        if actions:
            self._wake.set()

    def _persist_one(self, name: str) -> None:
        rec = self._sup.record(name)
        data = {
            "generation": rec.generation,
            "failed": rec.state is ServiceState.FAILED,
            "restarts": rec.restarts,
        }
        if self._persisted.get(name) != data:
            self._state.put(_RECORD + name, data)
            self._persisted[name] = data

    def _reconcile_replicas(self) -> None:
        """Desired replica count against actual, one step: start the missing, retire extras.

        Only for a service that is up and not being upgraded (an upgrade owns its replicas
        until it finishes); a starting service already starts all its replicas at once.
        """
        for rec in self._sup.records():
            name = rec.spec.name
            if rec.state not in UP_STATES or self.deployer.busy(name):
                continue
            replicas = self._replicas.setdefault(name, ReplicaSet(name))
            wanted = self.scaler.desired_replicas(rec)
            missing = replicas.shortfall(rec.generation, wanted)
            for _ in range(missing):
                replica = replicas.add(rec.generation)
                self._spawn(self._run_replica(name, replica, rec.spec, created=True))
            for replica in replicas.to_retire(rec.generation, -missing):
                self.retire(name, replica)

    def _persist(self) -> None:
        for rec in self._sup.records():
            self._persist_one(rec.spec.name)

    # -- service actors -------------------------------------------------------------------

    def _create(self, spec: ServiceSpec, rid: str) -> Any:
        cls = self._remote_classes.get(spec.class_path)
        if cls is None:
            # Concurrency groups can only be declared here, not in .options().
            remote: Any = ray.remote
            cls = remote(concurrency_groups=CONCURRENCY_GROUPS)(counted(spec.load_class()))
            self._remote_classes[spec.class_path] = cls
        opts = spec.actor
        options: dict[str, Any] = {
            "name": rid,
            "namespace": NAMESPACE,
            "lifetime": "detached",  # owned by no process: the registry kills it itself
            "max_restarts": 0,  # restarts are ours, under our policy
            "max_concurrency": opts.max_concurrency,
            "num_cpus": opts.num_cpus,
            "num_gpus": opts.num_gpus,
        }
        if opts.resources:
            options["resources"] = dict(opts.resources)
        if opts.memory is not None:
            options["memory"] = opts.memory
        if opts.runtime_env is not None:
            options["runtime_env"] = dict(opts.runtime_env)
        if opts.node_id:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                node_id=opts.node_id, soft=opts.node_soft
            )
        elif opts.spread:
            target = None if opts.resources else self._place.choose_node()
            if target is None:  # custom resources: let Ray find a node that has them
                options["scheduling_strategy"] = "SPREAD"
            else:
                # Hard: Ray's soft affinity may still pick the node we are avoiding. If the
                # target dies first, the start fails and the service is placed again.
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    node_id=target, soft=False
                )
                self._place.placed[spec.name] = target
        return cls.options(**options).remote()

    # -- replicas -------------------------------------------------------------------------

    def _launch(self, name: str, generation: int) -> None:
        """Start every replica of a new generation at once."""
        rec = self._sup.record(name)
        replicas = self._replicas.setdefault(name, ReplicaSet(name))
        for _ in range(rec.spec.replicas):
            replica = replicas.add(generation)
            self._spawn(self._run_replica(name, replica, rec.spec, created=True))

    def start_replica(self, name: str, generation: int, spec: ServiceSpec) -> Replica:
        """One more replica of ``generation`` running ``spec``: how an upgrade adds greens."""
        replica = self._replicas.setdefault(name, ReplicaSet(name)).add(generation)
        self._spawn(self._run_replica(name, replica, spec, created=True))
        return replica

    def _is_member(self, name: str, replica: Replica) -> bool:
        replicas = self._replicas.get(name)
        return replicas is not None and replicas.get(replica.id) is replica

    def _is_current(self, name: str, replica: Replica) -> bool:
        """A member of the service's current generation, which the supervisor watches."""
        try:
            rec = self._sup.record(name)
        except ServiceNotFoundError:  # forgotten while this monitor was between steps
            return False
        return rec.generation == replica.generation and rec.state in LIVE_STATES

    async def _run_replica(
        self, name: str, replica: Replica, spec: ServiceSpec, *, created: bool
    ) -> None:
        """Create (or adopt), start and then health-check one replica until it leaves."""
        try:
            handle = self._create(spec, replica.id) if created else self._lookup(replica.id)
            if handle is None:
                raise RuntimeError(f"actor {replica.id} is gone")
        except Exception as exc:  # bad class path, bad options: a failed start like any other
            self._replica_failed(name, replica, f"could not create actor: {exc}", alive=False)
            return
        self._actors[replica.id] = handle
        self._monitors[replica.id] = [
            asyncio.current_task(),  # type: ignore[list-item]
            self._spawn(self._watch(name, replica, handle)),
        ]
        try:
            node = await asyncio.wait_for(
                handle._re_start.remote(name, spec.config, replica.generation, spec.config_section),
                timeout=spec.health.startup_timeout_s,
            )
        except asyncio.TimeoutError:
            reason = f"start() took over {spec.health.startup_timeout_s:g} s"
            self._replica_failed(name, replica, reason, alive=True)
            return
        except (ActorDiedError, ActorUnavailableError) as exc:
            self._replica_failed(name, replica, _death_reason(exc), alive=False)
            return
        except Exception as exc:
            self._replica_failed(name, replica, f"start() raised {_error_text(exc)}", alive=True)
            return
        replica.node = node
        if self._is_current(name, replica):
            self._place.nodes[name] = node
            self._place.placed[name] = node
            why = self._sup.record(name).last_error
            self._place.note_move(name, replica.generation, node, why)
            self._sup.started(name, replica.generation)
        await self._probe(name, replica, handle, spec)

    def _replica_failed(
        self, name: str, replica: Replica, reason: str, *, alive: bool, health: bool = False
    ) -> None:
        """One replica died, failed to start, or failed its checks past the threshold; whether
        that is the service failing is :func:`failure_scope`'s rule, what then the supervisor's."""
        current = self._is_current(name, replica)
        scope = failure_scope(self._replicas.get(name), replica, current=current)
        if scope is FailureScope.REPLICA:
            self._replicas[name].remove(replica.id)
            self._drop_actor(replica.id)
            self._publish(name)
            replica.failures = -1  # the upgrade reads this: gone for a reason, not retired
            self.deployer.replica_gone(name, replica, reason)
            if current:
                self._execute(self._sup.replica_lost(name, replica.generation, reason))
                self._wake.set()
        elif scope is FailureScope.SERVICE and health:
            self._execute(self._sup.health_failed(name, self._sup.record(name).generation, reason))
        elif scope is FailureScope.SERVICE:
            self._execute(self._sup.died(name, replica.generation, reason))
            self._kill(name, replica.generation)  # with any sibling still starting

    async def _probe(self, name: str, replica: Replica, handle: Any, spec: ServiceSpec) -> None:
        """Health checks for one replica, until it is no longer one of the service's."""
        replicas = self._replicas[name]
        while self._is_member(name, replica):
            current = self._is_current(name, replica)
            health = self._sup.record(name).spec.health if current else spec.health
            try:
                ok, detail = await asyncio.wait_for(
                    handle._re_health.remote(), timeout=health.timeout_s
                )
            except asyncio.TimeoutError:
                ok, detail = False, f"health check timed out after {health.timeout_s:g} s"
                gone = await self._place.node_gone(name, replica.node)
                if gone is not None:
                    self._replica_failed(name, replica, gone, alive=False)
                    return
            except ActorDiedError as exc:
                self._replica_failed(name, replica, _death_reason(exc), alive=False)
                return
            except ActorUnavailableError:
                ok, detail = False, "actor unreachable"
                self._place.suspect(name, replica.node)
                gone = await self._place.node_gone(name, replica.node)
                if gone is not None:
                    self._replica_failed(name, replica, gone, alive=False)
                    return
            except Exception as exc:
                ok, detail = False, f"check_health raised {_error_text(exc)}"
            if not self._is_member(name, replica):
                return
            current = self._is_current(name, replica)
            verdict = judge_check(
                replicas, replica, ok, current=current, threshold=health.failure_threshold
            )
            if verdict is CheckVerdict.READY:
                self._publish(name)
            if verdict in (CheckVerdict.READY, CheckVerdict.PASSED) and current:
                before = self._sup.record(name).state
                self._sup.health_passed(name, replica.generation)
                if before is not self._sup.record(name).state:
                    self._wake.set()
            elif verdict is CheckVerdict.SERVICE_CHECK:
                self._replica_failed(name, replica, detail, alive=True, health=True)
            elif verdict is CheckVerdict.REPLACE:
                detail = f"health check failed {replica.failures} times in a row: {detail}"
                self._replica_failed(name, replica, detail, alive=True)
                return
            starting = not replica.ready
            await asyncio.sleep(_STARTING_PROBE_S if starting else health.period_s)

    async def _watch(self, name: str, replica: Replica, handle: Any) -> None:
        """A call that is always pending on the actor, so its death is seen at once."""
        while self._is_member(name, replica):
            try:
                outcome = await handle._re_watch.remote(_WATCH_POLL_S)
            except ActorDiedError as exc:
                self._replica_failed(name, replica, _death_reason(exc), alive=False)
                return
            except ActorUnavailableError:
                await asyncio.sleep(0.5)  # unreachable for now; health checks count it
                continue
            if outcome == "completed" and self._is_current(name, replica):
                self._execute(self._sup.completed(name, replica.generation))
                return
            if outcome in ("stopped", "completed"):
                return

    def _publish(self, name: str) -> None:
        """Tell callers which replicas take calls now, if that changed."""
        replicas = self._replicas.get(name)
        if replicas is None:
            return
        ids = tuple(replicas.routes())
        old = self._routes.get(name)
        spec = self._sup.record(name).spec
        ttl = self.deployer.route_ttl_s
        epoch = (old.epoch if old else 0) + 1
        table = RouteTable(epoch, ids, ttl, spec.routing, spec.call_wait_s)
        if old is not None and replace(old, epoch=epoch) == table:
            return
        self._routes[name] = table
        publish_routes(name, table)

    def retire(self, name: str, replica: Replica) -> asyncio.Task[None]:
        """Take a replica out of the routes, let its calls finish, stop it. Idempotent."""
        task = self._retiring.get(replica.id)
        if task is None:
            replica.draining = True
            self._publish(name)
            task = self._spawn(self._drain(name, replica))
            self._retiring[replica.id] = task
        return task

    async def _drain(self, name: str, replica: Replica) -> None:
        """Wait out every caller's route table, then the calls in flight, then stop and kill."""
        try:
            await asyncio.sleep(self.deployer.route_ttl_s + _DRAIN_MARGIN_S)
            handle = self._actors.get(replica.id)
            deadline = time.monotonic() + self.deployer.drain_timeout_s
            while handle is not None and time.monotonic() < deadline:
                try:
                    stats = await asyncio.wait_for(handle._re_stats.remote(), timeout=2.0)
                except Exception:
                    break  # gone or stuck: nothing more to wait for
                if stats["inflight"] <= 0:
                    break
                await asyncio.sleep(0.05)
            if handle is not None:
                spec = self._sup.record(name).spec
                try:
                    await asyncio.wait_for(
                        handle._re_stop.remote(), timeout=spec.shutdown_timeout_s
                    )
                except Exception as exc:
                    logger.warning("stop() of %s did not finish cleanly: %s", replica.id, exc)
        finally:
            replicas = self._replicas.get(name)
            if replicas is not None and replicas.get(replica.id) is replica:
                replicas.remove(replica.id)
            self._drop_actor(replica.id)
            self._retiring.pop(replica.id, None)

    def _cancel_monitors(self, rid: str) -> None:
        current = asyncio.current_task()
        for task in self._monitors.pop(rid, []):
            if task is not current:
                task.cancel()

    def _drop_actor(self, rid: str) -> None:
        self._cancel_monitors(rid)
        handle = self._actors.pop(rid, None) or self._lookup(rid)
        if handle is not None:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(handle, no_restart=True)

    def _kill(self, name: str, generation: int) -> None:
        """Kill every replica of one generation of a service."""
        replicas = self._replicas.get(name)
        if replicas is not None:
            for replica in [r for r in replicas.members.values() if r.generation == generation]:
                replicas.remove(replica.id)
                self._drop_actor(replica.id)
            self._publish(name)
        self._drop_actor(actor_name(name, generation))  # one a registry restart did not adopt
        if generation == self._sup.record(name).generation:
            self._place.forget(name)

    async def _notify(self, action: NotifyDependency) -> None:
        replicas = self._replicas.get(action.target)
        if replicas is None:
            return
        for replica in replicas.of(action.generation):
            handle = self._actors.get(replica.id)
            if handle is None or not self._is_current(action.target, replica):
                continue
            try:
                await asyncio.wait_for(
                    handle._re_dependency_change.remote(action.dependency, action.state.value),
                    timeout=10.0,
                )
            except Exception as exc:  # a slow or dead dependent must not stall the registry
                logger.warning("on_dependency_change(%s) failed: %s", replica.id, exc)

    async def _stop_one(self, name: str) -> None:
        await self.deployer.abandon(name)
        generation = self._sup.begin_stop(name)
        replicas = self._replicas.get(name)
        if generation is None and not (replicas and replicas.members):
            return
        withdraw_routes(name)
        self._routes.pop(name, None)
        timeout = self._sup.record(name).spec.shutdown_timeout_s
        members = list(replicas.members.values()) if replicas else []
        for replica in members:
            self._cancel_monitors(replica.id)

        async def stop(replica: Replica) -> None:
            handle = self._actors.get(replica.id) or self._lookup(replica.id)
            if handle is None:
                return
            try:
                await asyncio.wait_for(handle._re_stop.remote(), timeout=timeout)
            except Exception as exc:
                logger.warning("stop() of %s did not finish cleanly: %s", replica.id, exc)

        await asyncio.gather(*(stop(r) for r in members))
        for replica in members:
            if replicas is not None:
                replicas.remove(replica.id)
            self._drop_actor(replica.id)
        if generation is not None:
            self._kill(name, generation)
        self._sup.stopped(name)

    async def _stop_all(self) -> None:
        # A registry that dies now finishes the stop on restart.
        self._state.put(_DESIRED, "stopping")
        self._sup.running = False
        for level in self._sup.graph.shutdown_levels():
            await asyncio.gather(*(self._stop_one(name) for name in level))
        self._persist()
        self._state.put(_DESIRED, "stopped")

    # -- public API -----------------------------------------------------------------------

    async def ping(self) -> str:
        return "ok"

    async def pid(self) -> int:
        return os.getpid()

    async def register_service(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add or replace one service; validated here too, since any process may call."""
        parsed = ServiceSpec.model_validate(spec)
        self._sup.register(parsed)
        self._state.put(_SPEC + parsed.name, parsed.to_json())
        self._wake.set()
        return parsed.to_json()

    async def register_services(self, specs: list[dict[str, Any]]) -> list[str]:
        """Register a whole application at once, so services may reference each other."""
        parsed = [ServiceSpec.model_validate(s) for s in specs]
        self._sup.register_all(parsed)
        for spec in parsed:
            self._state.put(_SPEC + spec.name, spec.to_json())
        self._wake.set()
        return [s.name for s in parsed]

    async def get_specs(self, names: list[str]) -> list[dict[str, Any]]:
        """The running specs of those of ``names`` that are registered."""
        known = {r.spec.name: r.spec for r in self._sup.records()}
        return [known[n].to_json() for n in names if n in known]

    def save_spec(self, spec: ServiceSpec) -> None:
        """Make a replaced spec durable (an upgrade's commit, a scale)."""
        self._state.put(_SPEC + spec.name, spec.to_json())

    async def start_all(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Start every service in dependency order; waits until all are up or given up on."""
        if self._stopping is not None and not self._stopping.done():
            await self._stopping
        if not self._sup.running:
            self._sup.reset_for_start()
        self._sup.running = True
        self._state.put(_DESIRED, "running")
        self._wake.set()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (deadline is None or time.monotonic() < deadline) and not self._sup.settled():
            await asyncio.sleep(0.02)
        return await self.get_system_status()

    async def stop_all(self) -> dict[str, Any]:
        """Stop every service in reverse dependency order; each gets its shutdown timeout."""
        if self._stopping is None or self._stopping.done():
            self._stopping = asyncio.get_event_loop().create_task(self._stop_all())
        await self._stopping
        return await self.get_system_status()

    async def restart(self, name: str) -> dict[str, Any]:
        self._execute(self._sup.restart(name))
        return self._status_of(name).to_json()

    async def get_service(self, name: str, wait_s: float = 0.0) -> ServiceHandle:
        """A handle that routes each call straight to one replica; never through here."""
        deadline = time.monotonic() + wait_s
        while True:
            rec = self._sup.record(name)
            routes = self._routes.get(name)
            if (
                routes is not None
                and routes.replicas
                and rec.state in UP_STATES | {ServiceState.UNHEALTHY}
            ):
                return ServiceHandle(name)
            if time.monotonic() >= deadline:
                raise ServiceUnavailableError(
                    f"service {name!r} is {rec.state.value}"
                    + (f" ({redact_text(rec.last_error)})" if rec.last_error else "")
                    + "; retry, or pass wait_s to wait for it",
                    service=name,
                )
            await asyncio.sleep(0.02)

    async def validate_service_health(self, name: str) -> dict[str, Any]:
        """Probe every replica now, outside the periodic schedule, and report what was seen."""
        rec = self._sup.record(name)
        replicas = self._replicas.get(name)
        members = replicas.of(rec.generation) if replicas else []
        started = time.monotonic()
        ok, detail = False, f"service is {rec.state.value}"
        if members and rec.state in LIVE_STATES:
            details = []
            ok = True
            for replica in members:
                handle = self._actors.get(replica.id)
                one_ok, one = False, "not created yet"
                if handle is not None:
                    try:
                        one_ok, one = await asyncio.wait_for(
                            handle._re_health.remote(), timeout=rec.spec.health.timeout_s
                        )
                    except asyncio.TimeoutError:
                        one = f"health check timed out after {rec.spec.health.timeout_s:g} s"
                    except Exception as exc:
                        one = f"health check failed: {_error_text(exc)}"
                ok = ok and bool(one_ok)
                if one:
                    details.append(one if len(members) == 1 else f"{replica.id}: {one}")
            detail = "; ".join(details)
        status = self._status_of(name).to_json()
        status.update(
            {
                "healthy": bool(ok) and rec.state in UP_STATES,
                "check_ok": bool(ok),
                "detail": detail,
                "latency_ms": round((time.monotonic() - started) * 1000, 3),
            }
        )
        return status

    def _status_of(self, name: str) -> Any:
        rec = self._sup.record(name)
        live = rec.state in LIVE_STATES
        replicas = self._replicas.get(name)
        routes = self._routes.get(name)
        return service_status(
            rec,
            node_id=self._place.nodes.get(name) if live else None,
            actor_name=actor_name(name, rec.generation) if live else None,
            replicas=len(routes.replicas) if routes is not None and live else 0,
            replica_ids=tuple(replicas.members) if replicas is not None and live else (),
            upgrading=self.deployer.busy(name),
        )

    async def list_services(self) -> list[dict[str, Any]]:
        return [self._status_of(r.spec.name).to_json() for r in self._sup.records()]

    async def get_system_status(self) -> dict[str, Any]:
        services = [self._status_of(r.spec.name) for r in self._sup.records()]
        status = overall_status(services, running=self._sup.running)
        status["services"] = [s.to_json() for s in services]
        status["levels"] = [list(level) for level in self._sup.graph.levels()]
        status["moves"] = list(self._place.moves)
        return status

    async def upgrade_phases(self) -> dict[str, str]:
        """Upgrades in progress and their phase, for the CLI's progress lines."""
        return self.deployer.phases()

    async def moves(self) -> list[dict[str, Any]]:
        """Services that were restarted on another node than before, newest last."""
        return list(self._place.moves)

    # -- deployments (the logic lives in the Deployer) ------------------------------------

    async def upgrade(
        self,
        name: str,
        spec: dict[str, Any],
        bake_s: float | None = None,
        deployment_id: str | None = None,
    ) -> dict[str, Any]:
        return await self.deployer.upgrade(name, spec, bake_s=bake_s, deployment_id=deployment_id)

    async def rollback(self, name: str, deployment_id: str | None = None) -> dict[str, Any]:
        return await self.deployer.rollback(name, deployment_id)

    async def scale(self, name: str, replicas: int, wait_s: float = 60.0) -> dict[str, Any]:
        return await self.scaler.scale(name, replicas, wait_s=wait_s)

    async def deployment_history(self, name: str | None = None, limit: int = 50) -> list[Any]:
        return await self.deployer.history(name, limit)

    async def forget(self) -> None:
        """Stop everything and erase the control state: used by ``down`` and between tests."""
        await self.stop_all()
        await self._wait_names_released()
        self._report_transitions()  # STOPPED resolves what fired: no alert outlives `down`
        self._state.delete_prefix("registry/")
        # `down` returns only once the durable copy is gone too: nothing left to --restore.
        await asyncio.to_thread(self._state.mirror.flush)
        for rid in list(self._monitors):
            self._cancel_monitors(rid)
        self._sup = Supervisor()
        self._replicas.clear()
        self._actors.clear()
        self._routes.clear()
        self._retiring.clear()
        self._place.clear()
        self._reports.clear()
        self._persisted.clear()
        self.deployer.forget()
        self.scaler.forget()

    async def _wait_names_released(self, timeout_s: float = 10.0) -> None:
        """ray.kill is asynchronous: wait until no service actor name is still taken."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(parse_replica_id(n) for n in ray.util.list_named_actors()):
                return
            await asyncio.sleep(0.05)


def get_registry_handle(*, create: bool) -> Any:
    """The registry actor handle; created when asked and missing."""
    return get_system_actor(system_actors.REGISTRY, RegistryActor, create=create)


__all__ = [
    "SERVICE_PREFIX",
    "RegistryActor",
    "ServiceNotFoundError",
    "ServiceUnavailableError",
    "actor_name",
]
