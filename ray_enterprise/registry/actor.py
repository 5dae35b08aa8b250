"""RegistryActor: the thin Ray shell around :class:`Supervisor`.

It does only I/O and scheduling: runs the reconcile loop, executes the supervisor's actions
(the replicas' side of them is :class:`ReplicaManager`'s, every Ray call to a replica goes
through :class:`ReplicaActor`), tells the alerts what :class:`AlertReports` says, and keeps
the desired state in the GCS key-value store, so that a restarted registry rebuilds itself
and re-adopts what still runs (:func:`plan_recovery` decides what). The deployer and the
scaler reach it through :class:`RegistryCore` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Coroutine, Mapping
from dataclasses import astuple
from typing import Any

import ray

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert, report_health_transition
from ray_enterprise.errors import ServiceNotFoundError, ServiceUnavailableError
from ray_enterprise.observability.metrics import MetricType, record_metric
from ray_enterprise.observability.system_metrics import REGISTRY_TICK_METRIC
from ray_enterprise.redaction import redact_text
from ray_enterprise.registry.alert_reports import AlertReports
from ray_enterprise.registry.auto_shutdown import ShutdownCause
from ray_enterprise.registry.bookkeeping import RegistryBook
from ray_enterprise.registry.control_state import (
    APP_KEY,
    DESIRED_KEY,
    RECORD_PREFIX,
    SHUTDOWN_KEY,
    SPEC_PREFIX,
    ControlState,
)
from ray_enterprise.registry.deployer import Deployer
from ray_enterprise.registry.handle import ServiceHandle, withdraw_routes
from ray_enterprise.registry.recovery import plan_recovery
from ray_enterprise.registry.replica_manager import ReplicaManager
from ray_enterprise.registry.replica_wrapper import ReplicaActor
from ray_enterprise.registry.replicas import Replica, ReplicaSet, replica_id
from ray_enterprise.registry.scaling import Scaler
from ray_enterprise.registry.status import ServiceStatus, service_status
from ray_enterprise.registry.supervision import (
    LIVE_STATES,
    UP_STATES,
    Action,
    KillService,
    NotifyDependency,
    ServiceState,
    ShutdownApplication,
    StartService,
    Supervisor,
)
from ray_enterprise.spec import AutoShutdown, ServiceSpec
from ray_enterprise.system_actors import SERVICE_PREFIX, get_system_actor

logger = logging.getLogger("ray_enterprise.registry")

NAMESPACE = _kv.NAMESPACE
_SPEC = SPEC_PREFIX
_RECORD = RECORD_PREFIX
_DESIRED = DESIRED_KEY
_REPORTED = "registry/reported"  # the last state told to the alerts, per service


def actor_name(service: str, generation: int, index: int = 0) -> str:
    """Service actors are named by service, generation and replica, as Serve names replicas."""
    return replica_id(service, generation, index)


class RegistryActor:
    """Named, detached, restartable; one reconcile loop over every service."""

    def __init__(self, tick_s: float = 0.05) -> None:
        restart_alert = RestartAlert(system_actors.REGISTRY)
        self._tick_s = tick_s
        self._sup = Supervisor()
        self._state = ControlState()  # the GCS KV, and what should run in the durable store
        self._fleet = ReplicaManager(self)  # every replica, its actor, its route table
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._reports = AlertReports()  # what the alert manager was told last
        # The status snapshot, the durable records and the replica counts, each redone for
        # the services that changed alone.
        self._book = RegistryBook(lambda name, data: self._state.put(_RECORD + name, data))
        self.deployer = Deployer(self)
        self.scaler = Scaler(self, self.deployer)
        adopted = self._recover()
        self._report_again()
        loop = asyncio.get_event_loop()
        for name in adopted:
            spec = self._sup.record(name).spec
            for replica in list(self._fleet.replicas[name].members.values()):
                self.spawn(self._fleet.run(name, replica, spec, created=False))
            self._fleet.publish(name)
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
        app = _kv.get(APP_KEY, {})
        self._sup.auto_shutdown = AutoShutdown(app.get("auto_shutdown", "never"))
        if (cause := _kv.get(SHUTDOWN_KEY)) is not None:
            self._sup.shutdown = ShutdownCause.from_json(cause)
        records = {key[len(_RECORD) :]: rec for key, rec in _kv.scan(_RECORD).items()}
        # An upgrade cut short ends here, as old or new: the record's generation says which.
        generations = {n: int(r.get("generation", 0)) for n, r in records.items()}
        for committed in self.deployer.recover(generations):
            self._sup.register(committed)
        for name in records.keys() & {r.spec.name for r in self._sup.records()}:
            self._book.persisted[name] = records[name]
        plan = plan_recovery(
            records,
            [r.spec.name for r in self._sup.records()],
            ray.util.list_named_actors(all_namespaces=False),
            desired,
        )
        for adopt in plan.adopt:
            self._sup.adopt(adopt.name, adopt.generation)
            self._sup.record(adopt.name).restarts = adopt.restarts
            replicas = self._fleet.replicas.setdefault(adopt.name, ReplicaSet(adopt.name))
            replicas.adopt(adopt.replica_ids)
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
            if (actor := ReplicaActor.lookup(orphan)) is not None:
                actor.kill()
        adopted = [a.name for a in plan.adopt]
        for name in {r.spec.name for r in self._sup.records()} - set(adopted):
            withdraw_routes(name)
        if specs:
            logger.info("registry recovered %d specs, adopted %s", len(specs), adopted)
        return adopted

    # -- what the deployer and the scaler ask (RegistryCore) ------------------------------

    @property
    def supervisor(self) -> Supervisor:
        return self._sup

    def replica_set(self, name: str) -> ReplicaSet | None:
        return self._fleet.replicas.get(name)

    def replica_actors(self) -> Mapping[str, ReplicaActor]:
        return self._fleet.actors

    def routed(self, name: str) -> bool:
        return name in self._fleet.routes

    def kill_generation(self, name: str, generation: int) -> None:
        self._fleet.kill(name, generation)

    def start_replica(self, name: str, generation: int, spec: ServiceSpec) -> Replica:
        """One more replica of ``generation`` running ``spec``: how an upgrade adds greens."""
        return self._fleet.start_replica(name, generation, spec)

    def retire(self, name: str, replica: Replica) -> asyncio.Task[None]:
        """Take a replica out of the routes, let its calls finish, stop it. Idempotent."""
        return self._fleet.retire(name, replica)

    def persist(self, name: str) -> None:
        self._book.persist_one(self._sup, name)

    def wake(self, name: str | None = None) -> None:
        if name is not None:
            self._book.mark_unreconciled(name)
        self._wake.set()

    # -- the loop -------------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            began = time.monotonic()
            try:
                self._report_transitions()  # a death seen since: told before its restart starts
                self.execute(self._sup.tick())
                self._collect_changes()
                self._reconcile_replicas()
                self._book.persist(self._sup)
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

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartService):
                # The generation is durable before the actor exists.
                self._book.persist_one(self._sup, action.name)
                self._fleet.launch(action.name, action.generation)
            elif isinstance(action, KillService):
                self._fleet.kill(action.name, action.generation)
            elif isinstance(action, NotifyDependency):
                self.spawn(self._fleet.notify(action))
            elif isinstance(action, ShutdownApplication):
                # Said before the stop, so that `up` and a restarted registry know why.
                _kv.put(SHUTDOWN_KEY, action.cause.to_json())
                logger.warning("application stops by itself: %s", action.cause.reason)
                if self._stopping is None or self._stopping.done():
                    self._stopping = asyncio.get_event_loop().create_task(self._stop_all())
        if actions:
            self._wake.set()

    def _collect_changes(self) -> None:
        """Take what the supervisor and the replicas changed since the last call; an upgrade
        that began or ended changes its service's status and hands its replicas over."""
        changed = self._sup.take_touched() | self._fleet.take_changed()
        self._book.note(changed, self.deployer.phases())

    def _reconcile_replicas(self) -> None:
        """Desired replica count against actual, one step: start the missing, retire extras.

        Only for a service that is up and not being upgraded (an upgrade owns its replicas
        until it finishes); a starting service already starts all its replicas at once. Only
        services that changed are looked at: a replica lost, a state, a scale, an upgrade's
        end all mark theirs.
        """
        for name in self._book.take_unreconciled():
            try:
                rec = self._sup.record(name)
            except ServiceNotFoundError:
                continue
            if rec.state not in UP_STATES or self.deployer.busy(name):
                continue
            replicas = self._fleet.replicas.setdefault(name, ReplicaSet(name))
            wanted = self.scaler.desired_replicas(rec)
            missing = replicas.shortfall(rec.generation, wanted)
            if missing:
                self._book.mark_stale(name)
            for _ in range(missing):
                replica = replicas.add(rec.generation)
                self.spawn(self._fleet.run(name, replica, rec.spec, created=True))
            for replica in replicas.to_retire(rec.generation, -missing):
                self._fleet.retire(name, replica)

    async def _stop_one(self, name: str) -> None:
        await self.deployer.abandon(name)
        generation = self._sup.begin_stop(name)
        replicas = self._fleet.replicas.get(name)
        if generation is None and not (replicas and replicas.members):
            return
        withdraw_routes(name)
        self._fleet.routes.pop(name, None)
        await self._fleet.stop_all_of(name, self._sup.record(name).spec)
        if generation is not None:
            self._fleet.kill(name, generation)
        self._sup.stopped(name)

    async def _stop_all(self) -> None:
        # A registry that dies now finishes the stop on restart.
        self._state.put(_DESIRED, "stopping")
        self._sup.running = False
        for level in self._sup.graph.shutdown_levels():
            await asyncio.gather(*(self._stop_one(name) for name in level))
        self._book.persist(self._sup, every=True)
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

    async def register_services(
        self, specs: list[dict[str, Any]], auto_shutdown: str | None = None
    ) -> list[str]:
        """Register a whole application at once, so services may reference each other;
        ``auto_shutdown`` is the application's (None: as it was)."""
        parsed = [ServiceSpec.model_validate(s) for s in specs]
        policy = AutoShutdown(auto_shutdown) if auto_shutdown is not None else None
        self._sup.register_all(parsed)
        if policy is not None:
            self._sup.auto_shutdown = policy
            self._state.put(APP_KEY, {"auto_shutdown": policy.value})
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
            _kv.delete(SHUTDOWN_KEY)
        self._sup.running = True
        self._state.put(_DESIRED, "running")
        self._wake.set()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # Not running any more: an auto_shutdown (or a stop) came first; nothing will settle.
        while (
            (deadline is None or time.monotonic() < deadline)
            and self._sup.running
            and not self._sup.settled()
        ):
            await asyncio.sleep(0.02)
        if self._sup.shutdown is not None and self._stopping is not None:
            await self._stopping  # the application stopped itself: report it stopped
        return await self.get_system_status()

    async def stop_all(self) -> dict[str, Any]:
        """Stop every service in reverse dependency order; each gets its shutdown timeout."""
        if self._stopping is None or self._stopping.done():
            self._stopping = asyncio.get_event_loop().create_task(self._stop_all())
        await self._stopping
        return await self.get_system_status()

    async def auto_shutdown(self) -> dict[str, Any] | None:
        """Why the application stopped itself (its auto_shutdown), or None: what ``up`` asks."""
        cause = self._sup.shutdown
        return cause.to_json() if cause is not None else None

    async def restart(self, name: str) -> dict[str, Any]:
        self.execute(self._sup.restart(name))
        return self._status_of(name).to_json()

    async def get_service(self, name: str, wait_s: float = 0.0) -> ServiceHandle:
        """A handle that routes each call straight to one replica; never through here."""
        deadline = time.monotonic() + wait_s
        while True:
            rec = self._sup.record(name)
            routes = self._fleet.routes.get(name)
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
        replicas = self._fleet.replicas.get(name)
        members = replicas.of(rec.generation) if replicas else []
        started = time.monotonic()
        ok, detail = False, f"service is {rec.state.value}"
        if members and rec.state in LIVE_STATES:
            ok, detail = await self._fleet.check_now(members, rec.spec.health.timeout_s)
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

    def _status_of(self, name: str) -> ServiceStatus:
        rec = self._sup.record(name)
        live = rec.state in LIVE_STATES
        replicas = self._fleet.replicas.get(name)
        routes = self._fleet.routes.get(name)
        return service_status(
            rec,
            node_id=self._fleet.place.nodes.get(name) if live else None,
            actor_name=actor_name(name, rec.generation) if live else None,
            replicas=len(routes.replicas) if routes is not None and live else 0,
            replica_ids=tuple(replicas.members) if replicas is not None and live else (),
            upgrading=self.deployer.busy(name),
            not_ready=tuple(replicas.not_ready()) if replicas is not None and live else (),
            pending=tuple(replicas.pending()) if replicas is not None and live else (),
        )

    def _refresh_status(self) -> None:
        """Bring the status snapshot up to date with what changed since it last was."""
        self._collect_changes()
        self._book.refresh(self._sup, self._status_of)

    async def list_services(self) -> list[dict[str, Any]]:
        self._refresh_status()
        return list(self._book.snapshot.services())

    async def get_system_status(self) -> dict[str, Any]:
        """Served from the snapshot: its cost is what changed since the last call."""
        self._refresh_status()
        status = self._book.view(self._sup)
        status["moves"] = list(self._fleet.place.moves)
        return status

    async def upgrade_phases(self) -> dict[str, str]:
        """Upgrades in progress and their phase, for the CLI's progress lines."""
        return self.deployer.phases()

    async def moves(self) -> list[dict[str, Any]]:
        """Services that were restarted on another node than before, newest last."""
        return list(self._fleet.place.moves)

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
        await self._fleet.wait_names_released()
        self._report_transitions()  # STOPPED resolves what fired: no alert outlives `down`
        self._state.delete_prefix("registry/")
        # `down` returns only once the durable copy is gone too: nothing left to --restore.
        await asyncio.to_thread(self._state.mirror.flush)
        self._fleet.clear()
        self._sup = Supervisor()
        self._book.clear()
        self._reports.clear()
        self.deployer.forget()
        self.scaler.forget()


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
