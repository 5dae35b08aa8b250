"""RegistryActor: the thin Ray shell around :class:`Supervisor`.

It does only I/O and scheduling: creates and kills service actors, runs their health probes and
crash watches, executes the supervisor's actions and keeps the desired state in the GCS
key-value store so that a restarted registry rebuilds itself and re-adopts what still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Coroutine
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise import _kv
from ray_enterprise.errors import RayEnterpriseError, ServiceNotFoundError
from ray_enterprise.observability.alert_health import report_health_transition
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
from ray_enterprise.service import CONCURRENCY_GROUPS
from ray_enterprise.spec import ServiceSpec
from ray_enterprise.system_actors import get_system_actor

logger = logging.getLogger("ray_enterprise.registry")

NAMESPACE = _kv.NAMESPACE
SERVICE_PREFIX = "svc:"
_SPEC = "registry/spec/"
_RECORD = "registry/record/"
_DESIRED = "registry/desired"
_WATCH_POLL_S = 30.0
_SUSPECT_S = 30.0  # how long a node whose actors went unreachable gets no new ones
_STARTING_PROBE_S = 0.05  # probe fast until the first healthy check: dependents wait on it


class ServiceUnavailableError(RayEnterpriseError):
    """The service exists but no actor of it is up right now."""


def actor_name(service: str, generation: int) -> str:
    """Service actors are named by service and generation, as Serve names its replicas."""
    return f"{SERVICE_PREFIX}{service}:{generation}"


def _parse_actor_name(name: str) -> tuple[str, int] | None:
    if not name.startswith(SERVICE_PREFIX):
        return None
    service, _, gen = name[len(SERVICE_PREFIX) :].rpartition(":")
    return (service, int(gen)) if gen.isdigit() else None


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
        self._tick_s = tick_s
        self._sup = Supervisor()
        self._handles: dict[str, Any] = {}  # service -> handle of its current generation
        self._nodes: dict[str, str] = {}  # service -> node of its live actor
        self._last_node: dict[str, str] = {}  # service -> node of its latest actor, live or not
        self._moves: deque[dict[str, Any]] = deque(maxlen=200)
        self._placed: dict[str, str] = {}  # service -> node chosen for its latest actor
        self._suspects: dict[str, float] = {}  # node -> until when nothing is placed there
        self._node_info: dict[str, dict[str, Any]] = {}
        self._alive_at = -1e9
        self._monitors: dict[str, list[asyncio.Task[None]]] = {}
        self._persisted: dict[str, dict[str, Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        self._stopping: asyncio.Task[None] | None = None
        self._remote_classes: dict[str, Any] = {}
        self._reported: dict[str, str] = {}  # last state told to the alert manager
        adopted = self._recover()
        loop = asyncio.get_event_loop()
        for name in adopted:
            self._spawn(self._launch(name, self._sup.record(name).generation, created=False))
        if _kv.get(_DESIRED) == "stopping":
            self._stopping = loop.create_task(self._stop_all())
        self._loop_task = loop.create_task(self._reconcile_forever())

    # -- recovery -------------------------------------------------------------------------

    def _recover(self) -> list[str]:
        """Rebuild from the key-value store; returns the services whose actors were adopted."""
        specs = [ServiceSpec.model_validate(v) for v in _kv.scan(_SPEC).values()]
        if specs:
            self._sup.register_all(specs)
        desired = _kv.get(_DESIRED)
        self._sup.running = desired == "running"
        adopted: list[str] = []
        keep: set[str] = set()
        for key, rec in _kv.scan(_RECORD).items():
            name = key[len(_RECORD) :]
            if name not in {s.name for s in specs}:
                continue
            gen = int(rec.get("generation", 0))
            self._persisted[name] = rec
            handle = self._lookup(actor_name(name, gen)) if gen else None
            if handle is not None and desired in ("running", "stopping") and not rec["failed"]:
                self._sup.adopt(name, gen)
                self._sup.record(name).restarts = int(rec.get("restarts", 0))
                self._handles[name] = handle
                keep.add(actor_name(name, gen))
                adopted.append(name)
            else:
                self._sup.restore(
                    name, gen, failed=bool(rec.get("failed")), restarts=int(rec.get("restarts", 0))
                )
                if not self._sup.running:
                    self._sup.stopped(name)
        # Anything else named like a service is an orphan of a crash between steps: kill it.
        for name in ray.util.list_named_actors(all_namespaces=False):
            if _parse_actor_name(name) and name not in keep:
                orphan = self._lookup(name)
                if orphan is not None:
                    ray.kill(orphan, no_restart=True)
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
            try:
                self._execute(self._sup.tick())
                self._persist()
                self._report_transitions()
            except Exception:  # the loop must outlive any one bad step
                logger.exception("reconcile step failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._tick_s)
            self._wake.clear()

    def _report_transitions(self) -> None:
        """FAILED and DEGRADED raise alerts; getting healthy again resolves them.

        Never waits: the alert side queues and sends on its own thread.
        """
        for rec in self._sup.records():
            name, state = rec.spec.name, rec.state.value
            told = self._reported.get(name, "healthy")  # the last state the alerts know of
            alerting = state in ("failed", "degraded")
            if (alerting and state != told) or (state == "healthy" and told != "healthy"):
                self._reported[name] = state
                report_health_transition(
                    name, state, rec.spec.criticality.value, rec.last_error or ""
                )

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StartService):
                self._persist_one(action.name)  # the generation is durable before the actor
                self._spawn(self._launch(action.name, action.generation, created=True))
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
            _kv.put(_RECORD + name, data)
            self._persisted[name] = data

    def _persist(self) -> None:
        for rec in self._sup.records():
            self._persist_one(rec.spec.name)

    # -- service actors -------------------------------------------------------------------

    def _create(self, spec: ServiceSpec, generation: int) -> Any:
        cls = self._remote_classes.get(spec.class_path)
        if cls is None:
            # Concurrency groups can only be declared here, not in .options().
            remote: Any = ray.remote
            cls = remote(concurrency_groups=CONCURRENCY_GROUPS)(spec.load_class())
            self._remote_classes[spec.class_path] = cls
        opts = spec.actor
        options: dict[str, Any] = {
            "name": actor_name(spec.name, generation),
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
            target = None if opts.resources else self._choose_node()
            if target is None:  # custom resources: let Ray find a node that has them
                options["scheduling_strategy"] = "SPREAD"
            else:
                # Hard: Ray's soft affinity may still pick the node we are avoiding. If the
                # target dies first, the start fails and the service is placed again.
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                    node_id=target, soft=False
                )
                self._placed[spec.name] = target
        return cls.options(**options).remote()

    async def _launch(self, name: str, generation: int, *, created: bool) -> None:
        rec = self._sup.record(name)
        spec = rec.spec
        try:
            handle = self._create(spec, generation) if created else self._handles[name]
        except Exception as exc:  # bad class path, bad options: a failed start like any other
            self._execute(self._sup.died(name, generation, f"could not create actor: {exc}"))
            return
        self._handles[name] = handle
        self._monitors[name] = [
            asyncio.current_task(),  # type: ignore[list-item]
            self._spawn(self._watch(name, generation, handle)),
        ]
        try:
            node = await asyncio.wait_for(
                handle._re_start.remote(name, spec.config, generation, spec.config_section),
                timeout=spec.health.startup_timeout_s,
            )
        except asyncio.TimeoutError:
            self._execute(
                self._sup.died(
                    name, generation, f"start() took over {spec.health.startup_timeout_s:g} s"
                )
            )
            self._kill(name, generation)
            return
        except (ActorDiedError, ActorUnavailableError) as exc:
            self._execute(self._sup.died(name, generation, _death_reason(exc)))
            return
        except Exception as exc:
            self._execute(self._sup.died(name, generation, f"start() raised {_error_text(exc)}"))
            self._kill(name, generation)
            return
        self._nodes[name] = node
        self._placed[name] = node
        self._note_move(name, generation, node)
        self._sup.started(name, generation)
        await self._probe(name, generation, handle)

    def _node_table(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        if now - self._alive_at > 1.0:
            self._node_info = {n["NodeID"]: n for n in ray.nodes()}
            self._alive_at = now
        return self._node_info

    def _alive_nodes(self) -> list[str]:
        return sorted(n for n, info in self._node_table().items() if info.get("Alive"))

    async def _node_gone(self, name: str) -> str | None:
        """Why the node of this service is certainly gone, or None if it may still be there.

        Ray declares a node dead only after its own health checks fail for ~15 s. A raylet
        whose port refuses connections is gone for sure, so its services can be restarted
        elsewhere now. A timeout proves nothing (a partition heals): the threshold decides.
        """
        node = self._nodes.get(name) or self._placed.get(name)
        info = self._node_table().get(node or "")
        if node is None or info is None:
            return None
        if not info.get("Alive"):
            return f"node {node[:12]} is dead"
        host, port = info["NodeManagerAddress"], int(info["NodeManagerPort"])
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
        except (ConnectionRefusedError, ConnectionResetError):
            return f"node {node[:12]} lost: its raylet at {host}:{port} refuses connections"
        except (OSError, asyncio.TimeoutError):
            return None
        writer.close()
        return None

    def _choose_node(self) -> str | None:
        """The live, unsuspected node with the fewest of our services.

        Ray takes ~15 s to declare a node dead; its SPREAD strategy may place a restarted
        service back on the node we just saw go unreachable. We spread ourselves, so a service
        that left a lost node starts elsewhere at once.
        """
        now = time.monotonic()
        candidates = [n for n in self._alive_nodes() if self._suspects.get(n, 0.0) < now]
        if not candidates:
            return None
        load = Counter(self._placed.values())
        return min(candidates, key=lambda node: (load[node], node))

    def _suspect(self, name: str) -> None:
        """The service's actor is unreachable: keep new actors off its node for a while."""
        node = self._nodes.get(name) or self._placed.get(name)
        if node:
            self._suspects[node] = time.monotonic() + _SUSPECT_S

    def _note_move(self, name: str, generation: int, node: str) -> None:
        """Remember a service that came back on another node, and why it left the old one."""
        previous = self._last_node.get(name)
        self._last_node[name] = node
        if previous is None or previous == node:
            return
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        self._moves.append(
            {
                "service": name,
                "generation": generation,
                "from_node": previous,
                "to_node": node,
                "node_lost": previous not in alive,
                "reason": self._sup.record(name).last_error,
                "time": time.time(),
            }
        )

    def _is_current(self, name: str, generation: int) -> bool:
        try:
            rec = self._sup.record(name)
        except ServiceNotFoundError:  # forgotten while this monitor was between steps
            return False
        return rec.generation == generation and rec.state in LIVE_STATES

    async def _probe(self, name: str, generation: int, handle: Any) -> None:
        """Health checks for one generation, until it is no longer the live one."""
        while self._is_current(name, generation):
            rec = self._sup.record(name)
            health = rec.spec.health
            try:
                ok, detail = await asyncio.wait_for(
                    handle._re_health.remote(), timeout=health.timeout_s
                )
            except asyncio.TimeoutError:
                ok, detail = False, f"health check timed out after {health.timeout_s:g} s"
                gone = await self._node_gone(name)
                if gone is not None:
                    self._execute(self._sup.died(name, generation, gone))
                    return
            except ActorDiedError as exc:
                self._execute(self._sup.died(name, generation, _death_reason(exc)))
                return
            except ActorUnavailableError:
                ok, detail = False, "actor unreachable"
                self._suspect(name)
                gone = await self._node_gone(name)
                if gone is not None:
                    self._execute(self._sup.died(name, generation, gone))
                    return
            except Exception as exc:
                ok, detail = False, f"check_health raised {_error_text(exc)}"
            if ok:
                before = rec.state
                self._sup.health_passed(name, generation)
                if before is not rec.state:
                    self._wake.set()
            else:
                self._execute(self._sup.health_failed(name, generation, detail))
            starting = rec.state is ServiceState.STARTING
            await asyncio.sleep(_STARTING_PROBE_S if starting else health.period_s)

    async def _watch(self, name: str, generation: int, handle: Any) -> None:
        """A call that is always pending on the actor, so its death is seen at once."""
        while self._is_current(name, generation):
            try:
                outcome = await handle._re_watch.remote(_WATCH_POLL_S)
            except ActorDiedError as exc:
                self._execute(self._sup.died(name, generation, _death_reason(exc)))
                return
            except ActorUnavailableError:
                await asyncio.sleep(0.5)  # unreachable for now; health checks count it
                continue
            if outcome == "completed":
                self._execute(self._sup.completed(name, generation))
                return
            if outcome == "stopped":
                return

    def _cancel_monitors(self, name: str) -> None:
        current = asyncio.current_task()
        for task in self._monitors.pop(name, []):
            if task is not current:
                task.cancel()

    def _kill(self, name: str, generation: int) -> None:
        self._cancel_monitors(name)
        handle = self._handles.get(name)
        if handle is None or generation != self._sup.record(name).generation:
            handle = self._lookup(actor_name(name, generation))
        if handle is not None:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(handle, no_restart=True)
        self._handles.pop(name, None)
        self._nodes.pop(name, None)
        self._placed.pop(name, None)

    async def _notify(self, action: NotifyDependency) -> None:
        handle = self._handles.get(action.target)
        if handle is None or not self._is_current(action.target, action.generation):
            return
        try:
            await asyncio.wait_for(
                handle._re_dependency_change.remote(action.dependency, action.state.value),
                timeout=10.0,
            )
        except Exception as exc:  # a slow or dead dependent must not stall the registry
            logger.warning("on_dependency_change(%s) failed: %s", action.target, exc)

    async def _stop_one(self, name: str) -> None:
        generation = self._sup.begin_stop(name)
        if generation is None:
            return
        self._cancel_monitors(name)
        handle = self._handles.get(name) or self._lookup(actor_name(name, generation))
        if handle is not None:
            timeout = self._sup.record(name).spec.shutdown_timeout_s
            try:
                await asyncio.wait_for(handle._re_stop.remote(), timeout=timeout)
            except Exception as exc:
                logger.warning("stop() of %s did not finish cleanly: %s", name, exc)
        self._kill(name, generation)
        self._sup.stopped(name)

    async def _stop_all(self) -> None:
        _kv.put(_DESIRED, "stopping")  # a registry that dies now finishes the stop on restart
        self._sup.running = False
        for level in self._sup.graph.shutdown_levels():
            await asyncio.gather(*(self._stop_one(name) for name in level))
        self._persist()
        _kv.put(_DESIRED, "stopped")

    # -- public API -----------------------------------------------------------------------

    async def ping(self) -> str:
        return "ok"

    async def register_service(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Add or replace one service; validated here too, since any process may call."""
        parsed = ServiceSpec.model_validate(spec)
        self._sup.register(parsed)
        _kv.put(_SPEC + parsed.name, parsed.to_json())
        self._wake.set()
        return parsed.to_json()

    async def register_services(self, specs: list[dict[str, Any]]) -> list[str]:
        """Register a whole application at once, so services may reference each other."""
        parsed = [ServiceSpec.model_validate(s) for s in specs]
        self._sup.register_all(parsed)
        for spec in parsed:
            _kv.put(_SPEC + spec.name, spec.to_json())
        self._wake.set()
        return [s.name for s in parsed]

    async def start_all(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Start every service in dependency order; waits until all are up or given up on."""
        if self._stopping is not None and not self._stopping.done():
            await self._stopping
        if not self._sup.running:
            self._sup.reset_for_start()
        self._sup.running = True
        _kv.put(_DESIRED, "running")
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

    async def get_service(self, name: str, wait_s: float = 0.0) -> Any:
        """The current actor handle of a service; calls to it never pass through here."""
        deadline = time.monotonic() + wait_s
        while True:
            rec = self._sup.record(name)
            handle = self._handles.get(name)
            if handle is not None and rec.state in UP_STATES | {ServiceState.UNHEALTHY}:
                return handle
            if time.monotonic() >= deadline:
                raise ServiceUnavailableError(
                    f"service {name!r} is {rec.state.value}"
                    + (f" ({rec.last_error})" if rec.last_error else "")
                    + "; retry, or pass wait_s to wait for it"
                )
            await asyncio.sleep(0.02)

    async def validate_service_health(self, name: str) -> dict[str, Any]:
        """Probe the service now, outside the periodic schedule, and report what was seen."""
        rec = self._sup.record(name)
        handle = self._handles.get(name)
        started = time.monotonic()
        ok, detail = False, f"service is {rec.state.value}"
        if handle is not None and rec.state in LIVE_STATES:
            try:
                ok, detail = await asyncio.wait_for(
                    handle._re_health.remote(), timeout=rec.spec.health.timeout_s
                )
            except asyncio.TimeoutError:
                detail = f"health check timed out after {rec.spec.health.timeout_s:g} s"
            except Exception as exc:
                detail = f"health check failed: {_error_text(exc)}"
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
        return service_status(
            rec,
            node_id=self._nodes.get(name) if live else None,
            actor_name=actor_name(name, rec.generation) if live else None,
        )

    async def list_services(self) -> list[dict[str, Any]]:
        return [self._status_of(r.spec.name).to_json() for r in self._sup.records()]

    async def get_system_status(self) -> dict[str, Any]:
        services = [self._status_of(r.spec.name) for r in self._sup.records()]
        status = overall_status(services, running=self._sup.running)
        status["services"] = [s.to_json() for s in services]
        status["levels"] = [list(level) for level in self._sup.graph.levels()]
        status["moves"] = list(self._moves)
        return status

    async def moves(self) -> list[dict[str, Any]]:
        """Services that were restarted on another node than before, newest last."""
        return list(self._moves)

    async def forget(self) -> None:
        """Stop everything and erase the control state: used by ``down`` and between tests."""
        await self.stop_all()
        await self._wait_names_released()
        _kv.delete_prefix("registry/")
        for name in list(self._monitors):
            self._cancel_monitors(name)
        self._sup = Supervisor()
        self._handles.clear()
        self._nodes.clear()
        self._last_node.clear()
        self._moves.clear()
        self._placed.clear()
        self._suspects.clear()
        self._reported.clear()
        self._persisted.clear()

    async def _wait_names_released(self, timeout_s: float = 10.0) -> None:
        """ray.kill is asynchronous: wait until no service actor name is still taken."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(_parse_actor_name(n) for n in ray.util.list_named_actors()):
                return
            await asyncio.sleep(0.05)


def get_registry_handle(*, create: bool) -> Any:
    """The registry actor handle; created when asked and missing."""
    return get_system_actor("registry", RegistryActor, create=create)


__all__ = ["RegistryActor", "ServiceNotFoundError", "ServiceUnavailableError", "actor_name"]
