"""The supervisor: desired state against actual state, one step per tick, no Ray.

The registry actor feeds it what it observed (an actor started, a health check passed or failed,
an actor died) and executes the actions it returns (start, kill, notify). Everything about
*when* to restart, *what* to restart with it and *which* state a service is in lives here, so
that it can be tested with a fake clock in milliseconds.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from ray_enterprise.backoff import Random
from ray_enterprise.errors import ServiceNotFoundError
from ray_enterprise.redaction import redact_text
from ray_enterprise.registry.auto_shutdown import ShutdownCause, shutdown_due
from ray_enterprise.registry.graph import DependencyGraph
from ray_enterprise.registry.restarts import RestartTracker
from ray_enterprise.spec import AutoShutdown, RestartPolicy, ServiceSpec, Strategy


class ServiceState(str, Enum):
    PENDING = "pending"  # registered, waiting for start_all or for its dependencies
    STARTING = "starting"  # actor exists, waiting for its first healthy check
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # answers its health checks, but a dependency does not
    UNHEALTHY = "unhealthy"  # failing health checks, not yet past the threshold
    RESTARTING = "restarting"  # gone; will be started again after backoff
    FAILED = "failed"  # past the restart intensity, or a temporary service that died
    STOPPING = "stopping"
    STOPPED = "stopped"


#: States in which a service answers calls and may be depended on.
UP_STATES = frozenset({ServiceState.HEALTHY, ServiceState.DEGRADED})
#: States in which an actor of the current generation is (believed) alive.
LIVE_STATES = frozenset(
    {ServiceState.STARTING, ServiceState.HEALTHY, ServiceState.DEGRADED, ServiceState.UNHEALTHY}
)


@dataclass(frozen=True)
class StartService:
    name: str
    generation: int


@dataclass(frozen=True)
class KillService:
    name: str
    generation: int
    reason: str


@dataclass(frozen=True)
class NotifyDependency:
    """Tell ``target`` that its dependency ``dependency`` is now in ``state``."""

    target: str
    generation: int
    dependency: str
    state: ServiceState


@dataclass(frozen=True)
class ShutdownApplication:
    """Stop every service in reverse dependency order: the app's auto_shutdown is due."""

    cause: ShutdownCause


Action = StartService | KillService | NotifyDependency | ShutdownApplication

#: How a significant service ended for good, as auto_shutdown reads it (other states: running).
_ENDED = {ServiceState.FAILED: "failed", ServiceState.STOPPED: "completed"}

#: The start of a FAILED reason when start() never returned: alerts and readers tell a service
#: that cannot start from one that crashes while running by it.
START_FAILED = "start failed"


@dataclass(frozen=True)
class Transition:
    """A service entered ``state``. Kept until the registry takes it, so that a restart
    quicker than a reconcile tick (RESTARTING -> STARTING -> HEALTHY) is still seen whole.

    ``planned`` marks an operator's restart, which is no fault.
    """

    name: str
    state: ServiceState
    reason: str | None
    planned: bool = False


@dataclass
class ServiceRecord:
    """What the supervisor knows about one service; the actor persists the durable part."""

    spec: ServiceSpec
    tracker: RestartTracker
    state: ServiceState = ServiceState.PENDING
    generation: int = 0
    restarts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    state_since: float = 0.0
    started_at: float | None = None
    healthy_since: float | None = None
    restart_at: float = 0.0
    reserved_generation: int = 0  # the highest generation an upgrade took for its new version
    seen_dependencies: dict[str, bool] = field(default_factory=dict)
    start_returned: bool = False  # the current generation's start() returned
    start_failures: int = 0  # consecutive starts that never returned (restart.max_start_attempts)


class Supervisor:
    """Reconciles a set of services toward 'running' or 'stopped'.

    A tick visits only the records that may have something to do: those marked since the last
    tick (an observation changed them, or a dependency changed state) and those whose timer
    (restart backoff, startup timeout, backoff reset) is due. Every other record would be a
    no-op to visit, so a fleet of 10,000 quiet services costs nothing per tick.
    ``full_scan=True`` visits every record every tick, as the supervisor did before: the
    reference the tests and the scale benchmark hold the incremental tick against.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rng: Random = random.random,
        full_scan: bool = False,
    ) -> None:
        self._clock = clock
        self._rng = rng  # the backoffs' jitter; a test fixes it
        self._full_scan = full_scan
        self._records: dict[str, ServiceRecord] = {}
        self._graph = DependencyGraph({})
        self._ordered: list[ServiceRecord] = []  # start order, rebuilt with the graph
        self._position: dict[str, int] = {}  # name -> index in start order
        self._transitions: list[Transition] = []
        self._dirty: set[str] = set()  # to visit at the next tick
        self._timers: list[tuple[float, str]] = []  # (due, name), a heap
        self._next_due: dict[str, float] = {}  # the earliest timer queued per name
        self._queue: list[tuple[int, str]] = []  # this tick's visits, by start position
        self._queued: set[str] = set()
        self._cursor = -1  # start position of the record being visited, -1 outside a tick
        self._touched: set[str] = set()  # changed since the registry last took them
        self._running = False
        self.auto_shutdown = AutoShutdown.NEVER  # the application's (AppSpec.auto_shutdown)
        self.shutdown: ShutdownCause | None = None  # set once the application stopped itself
        # Indexes of the specs, rebuilt on first use after a registration: a crash must not
        # cost a walk over every service, nor auto_shutdown one per tick.
        self._groups: dict[str, tuple[str, ...]] | None = None
        self._significant: tuple[ServiceRecord, ...] | None = None
        self._autoscaled: tuple[ServiceRecord, ...] | None = None

    @property
    def running(self) -> bool:
        """Desired state: start_all sets it, stop_all clears it."""
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        if value and not self._running:
            self._dirty.update(self._records)  # what waited for start_all may act now
        self._running = value

    # -- registration ---------------------------------------------------------------------

    def register(self, spec: ServiceSpec) -> None:
        """Add or replace a service spec; the graph must stay valid with it."""
        self.register_all([spec])

    def register_all(self, specs: Iterable[ServiceSpec]) -> None:
        """Register several services at once, so they may depend on each other in any order.

        The graph is validated with all of them before any is added: a bad batch changes
        nothing.
        """
        specs = list(specs)
        deps = {name: rec.spec.depends_on for name, rec in self._records.items()}
        deps.update({spec.name: spec.depends_on for spec in specs})
        self._validate(deps)
        for spec in specs:
            old = self._records.get(spec.name)
            if old is not None:
                old.spec = spec
                old.tracker.spec = spec.restart
            else:
                self._records[spec.name] = ServiceRecord(
                    spec=spec,
                    tracker=RestartTracker(spec.restart, rng=self._rng),
                    state_since=self._clock(),
                )
        self._reorder()
        for spec in specs:
            self._mark(spec.name, dependents=True)

    def _validate(self, deps: dict[str, tuple[str, ...]]) -> None:
        self._graph = DependencyGraph(deps)
        self._groups = None
        self._significant = None
        self._autoscaled = None

    def _reorder(self) -> None:
        order = [n for level in self._graph.levels() for n in level]
        self._position = {n: i for i, n in enumerate(order)}
        self._ordered = [self._records[n] for n in order]

    def unregister(self, name: str) -> None:
        self.record(name)
        deps = {n: r.spec.depends_on for n, r in self._records.items() if n != name}
        self._validate(deps)
        del self._records[name]
        self._reorder()
        self._dirty.discard(name)
        self._touched.add(name)  # the registry drops what it showed of it

    @property
    def graph(self) -> DependencyGraph:
        return self._graph

    def record(self, name: str) -> ServiceRecord:
        try:
            return self._records[name]
        except KeyError:
            raise ServiceNotFoundError(name, list(self._records)) from None

    def records(self) -> list[ServiceRecord]:
        """All records in start order."""
        return list(self._ordered)

    def autoscaled(self) -> tuple[ServiceRecord, ...]:
        """Records whose spec has ``autoscale``, in start order: the autoscaler's only visits,
        so that it costs the autoscaled services, not the fleet, four times a second."""
        if self._autoscaled is None:
            self._autoscaled = tuple(r for r in self._ordered if r.spec.autoscale is not None)
        return self._autoscaled

    def take_touched(self) -> set[str]:
        """Names whose record changed since the last call (state, counters, spec, error), or
        that were unregistered: what a status snapshot must rebuild, and nothing else."""
        taken, self._touched = self._touched, set()
        return taken

    # -- what the next tick visits --------------------------------------------------------

    def _mark(self, name: str, *, dependents: bool = False) -> None:
        """``name`` changed: the registry sees it, and the tick visits it (and, when its state
        changed, its direct dependents, whose readiness and DEGRADED follow that state)."""
        self._touched.add(name)
        self._visit(name)
        if dependents and name in self._records:
            for dep in self._graph.dependents(name, transitive=False):
                self._visit(dep)

    def _visit(self, name: str) -> None:
        position = self._position.get(name)
        if position is None:
            return
        if position > self._cursor >= 0:  # later in this tick's start order: this tick
            if name not in self._queued:
                self._queued.add(name)
                heapq.heappush(self._queue, (position, name))
        else:
            self._dirty.add(name)

    def _schedule(self, name: str, due: float) -> None:
        """Visit ``name`` at the first tick at or after ``due``."""
        if self._next_due.get(name, due + 1.0) <= due:
            return  # an earlier visit is queued; it schedules again if still needed
        self._next_due[name] = due
        heapq.heappush(self._timers, (due, name))

    # -- observations ---------------------------------------------------------------------

    def _set_state(self, rec: ServiceRecord, state: ServiceState, *, planned: bool = False) -> None:
        if rec.state is not state:
            rec.state = state
            rec.state_since = self._clock()
            reason = redact_text(rec.last_error) if rec.last_error else rec.last_error
            self._transitions.append(Transition(rec.spec.name, state, reason, planned))
            self._mark(rec.spec.name, dependents=True)

    def take_transitions(self) -> list[Transition]:
        """Every state change since the last call, oldest first (the alerts' feed)."""
        taken, self._transitions = self._transitions, []
        return taken

    def _current(self, name: str, generation: int) -> ServiceRecord | None:
        """The record if the observation is about its current generation, else None."""
        rec = self._records.get(name)
        if rec is None or rec.generation != generation or rec.state not in LIVE_STATES:
            return None
        return rec

    def adopt(self, name: str, generation: int) -> None:
        """A registry that restarted found this generation's actor alive: supervise it again."""
        rec = self.record(name)
        rec.generation = generation
        rec.started_at = self._clock()
        rec.consecutive_failures = 0
        rec.start_returned = True  # it ran under the registry that died
        self._mark(name)
        self._set_state(rec, ServiceState.STARTING)

    def restore(
        self, name: str, generation: int, *, failed: bool, restarts: int, planned: bool = False
    ) -> None:
        """Reload the durable part of a record after a registry restart (actor not found).

        ``planned``: the application is stopped, so the record passes through these states on
        its way to STOPPED and nothing about it is a fault to alert on.
        """
        rec = self.record(name)
        rec.generation = generation
        rec.restarts = restarts
        self._mark(name)
        if failed:
            self._set_state(rec, ServiceState.FAILED, planned=planned)
        elif generation > 0:
            rec.restart_at = self._clock()
            self._set_state(rec, ServiceState.RESTARTING, planned=planned)

    def health_passed(self, name: str, generation: int) -> None:
        rec = self._current(name, generation)
        if rec is None:
            return
        if rec.consecutive_failures or rec.healthy_since is None:
            self._mark(name)  # a passing check on a quiet service changes nothing: no mark
        rec.consecutive_failures = 0
        if rec.healthy_since is None:
            rec.healthy_since = self._clock()
        if rec.state in (ServiceState.STARTING, ServiceState.UNHEALTHY):
            self._set_state(rec, ServiceState.HEALTHY)
            rec.seen_dependencies = {}  # re-announce dependency states to a fresh start

    def health_failed(self, name: str, generation: int, detail: str) -> list[Action]:
        rec = self._current(name, generation)
        if rec is None:
            return []
        rec.last_error = detail
        self._mark(name)
        if rec.state is ServiceState.STARTING:
            return []  # the startup grace period; tick() enforces startup_timeout_s
        rec.healthy_since = None
        rec.consecutive_failures += 1
        if rec.consecutive_failures >= rec.spec.health.failure_threshold:
            return self._fail(
                rec, f"health check failed {rec.consecutive_failures} times in a row: {detail}"
            )
        self._set_state(rec, ServiceState.UNHEALTHY)
        return []

    def died(self, name: str, generation: int, reason: str) -> list[Action]:
        """The actor of this generation is gone (crash, kill, node loss, failed start)."""
        rec = self._current(name, generation)
        if rec is None:
            return []
        if rec.state is ServiceState.STARTING and not rec.start_returned:
            return self._start_failed(rec, reason)
        return self._fail(rec, reason, alive=False)

    def completed(self, name: str, generation: int) -> list[Action]:
        """The service ended itself cleanly: only a permanent service comes back."""
        rec = self._current(name, generation)
        if rec is None:
            return []
        if rec.spec.restart.policy is RestartPolicy.PERMANENT:
            return self._fail(rec, "exited on its own; permanent services are restarted")
        rec.last_error = None
        self._mark(name)
        self._set_state(rec, ServiceState.STOPPED)
        return [KillService(name, generation, "completed")]

    # -- decisions ------------------------------------------------------------------------

    def _start_failed(self, rec: ServiceRecord, reason: str) -> list[Action]:
        """start() never returned (the constructor or the hook raised, the actor could not be
        created): its own budget, ``max_start_attempts``, not the crash intensity, and no
        strategy: nothing ran, so nothing started with it needs restarting."""
        limit = rec.spec.restart.max_start_attempts
        self._mark(rec.spec.name)  # its new restart time must reach the tick's timers
        rec.start_failures += 1
        rec.healthy_since = None
        rec.consecutive_failures = 0
        if rec.spec.restart.policy is RestartPolicy.TEMPORARY:
            rec.last_error = f"{START_FAILED}: {reason} (temporary service: not restarted)"
            self._set_state(rec, ServiceState.FAILED)
            return []
        if rec.start_failures >= limit:
            times = f"{rec.start_failures} time{'s' if rec.start_failures > 1 else ''}"
            rec.last_error = (
                f"{START_FAILED} {times} in a row (restart.max_start_attempts={limit}): "
                f"given up; last error: {reason}"
            )
            self._set_state(rec, ServiceState.FAILED)
            return []
        rec.last_error = f"{START_FAILED} (attempt {rec.start_failures} of {limit}): {reason}"
        rec.tracker.record_backoff()
        rec.restart_at = self._clock() + rec.tracker.next_delay()
        self._set_state(rec, ServiceState.RESTARTING)
        return []

    def _fail(self, rec: ServiceRecord, reason: str, *, alive: bool = True) -> list[Action]:
        now = self._clock()
        rec.last_error = reason
        rec.healthy_since = None
        rec.consecutive_failures = 0
        self._mark(rec.spec.name)
        actions: list[Action] = []
        if alive:
            actions.append(KillService(rec.spec.name, rec.generation, reason))
        if rec.spec.restart.policy is RestartPolicy.TEMPORARY:
            rec.last_error = f"{reason} (temporary service: not restarted)"
            self._set_state(rec, ServiceState.FAILED)  # the transition carries the reason
            return actions
        rec.tracker.record(now)
        if rec.tracker.exceeded(now):
            rec.last_error = (
                f"{reason} (more than {rec.spec.restart.max_restarts} restarts within "
                f"{rec.spec.restart.window_s:g} s: given up)"
            )
            self._set_state(rec, ServiceState.FAILED)
            return actions
        rec.restart_at = now + rec.tracker.next_delay()
        self._set_state(rec, ServiceState.RESTARTING)
        actions.extend(self._restart_with(rec, reason))
        return actions

    def _restart_with(
        self, rec: ServiceRecord, reason: str, *, planned: bool = False
    ) -> list[Action]:
        """What the service's strategy restarts with it."""
        if rec.spec.strategy is Strategy.REST_FOR_ONE:
            return self._restart_dependents(rec.spec.name, reason, planned=planned)
        if rec.spec.strategy is Strategy.ONE_FOR_ALL:
            return self._restart_group(rec, reason, planned=planned)
        return []

    def group(self, name: str) -> list[str]:
        """The services restarting with ``name`` under one_for_all, itself included, in start
        order: those naming the same ``group``."""
        group = self.record(name).spec.group
        if group is None:
            return [name]
        if self._groups is None:
            groups: dict[str, list[str]] = {}
            for rec in self.records():
                if rec.spec.group is not None:
                    groups.setdefault(rec.spec.group, []).append(rec.spec.name)
            self._groups = {g: tuple(members) for g, members in groups.items()}
        return list(self._groups.get(group, (name,)))

    def _restart_group(self, rec: ServiceRecord, reason: str, *, planned: bool) -> list[Action]:
        """one_for_all: every live member goes down and comes back with ``rec``, at its time;
        the tick then starts them in dependency order, as after rest_for_one."""
        name = rec.spec.name
        actions: list[Action] = []
        for member_name in self.group(name):
            member = self._records[member_name]
            if member_name == name or member.state not in LIVE_STATES:
                continue
            group = rec.spec.group
            actions.append(KillService(member_name, member.generation, f"one_for_all: {name}"))
            member.last_error = f"restarted with {name} (one_for_all group {group}): {reason}"
            member.healthy_since = None
            member.restart_at = rec.restart_at
            self._set_state(member, ServiceState.RESTARTING, planned=planned)
        return actions

    def _restart_dependents(self, name: str, reason: str, *, planned: bool = False) -> list[Action]:
        actions: list[Action] = []
        for dep_name in self._graph.dependents(name):
            dep = self._records[dep_name]
            if dep.state in LIVE_STATES:
                actions.append(KillService(dep_name, dep.generation, f"rest_for_one: {name}"))
                dep.last_error = f"restarted with {name} (rest_for_one): {reason}"
                dep.healthy_since = None
                dep.restart_at = self._clock()
                self._mark(dep_name)
                self._set_state(dep, ServiceState.RESTARTING, planned=planned)
        return actions

    def restart(self, name: str) -> list[Action]:
        """An operator's restart: now, without backoff, and a FAILED service gets a fresh count."""
        rec = self.record(name)
        actions: list[Action] = []
        if rec.state in LIVE_STATES:
            actions.append(KillService(name, rec.generation, "restart requested"))
        rec.tracker.reset()
        rec.restart_at = self._clock()
        rec.healthy_since = None
        rec.last_error = None
        rec.start_failures = 0
        self._mark(name)
        self._set_state(rec, ServiceState.RESTARTING, planned=True)
        actions.extend(self._restart_with(rec, "restart requested", planned=True))
        return actions

    def replica_lost(self, name: str, generation: int, reason: str) -> list[Action]:
        """One replica of several died or failed its checks; the others still take calls.

        The replica is replaced, and the replacement counts against the restart intensity like
        any restart: a version whose replicas keep dying is given up on as a whole.
        """
        rec = self._current(name, generation)
        if rec is None:
            return []
        now = self._clock()
        rec.last_error = f"replica lost: {reason}"
        rec.restarts += 1
        self._mark(name)
        rec.tracker.record(now)
        if rec.tracker.exceeded(now):
            return self._fail(rec, f"replicas keep failing: {reason}")
        return []

    def reserve_generation(self, name: str) -> int:
        """A generation for an upgrade's new version, which a restart will never reuse."""
        rec = self.record(name)
        rec.reserved_generation = max(rec.generation, rec.reserved_generation) + 1
        return rec.reserved_generation

    def check_replacement(self, spec: ServiceSpec) -> None:
        """Raise if ``spec`` could not replace its service's spec (unknown or cyclic deps)."""
        self.record(spec.name)
        deps = {n: r.spec.depends_on for n, r in self._records.items()}
        deps[spec.name] = spec.depends_on
        DependencyGraph(deps)

    def switch_generation(self, name: str, generation: int, spec: ServiceSpec) -> None:
        """An upgrade's commit: ``generation``, running ``spec``, is now the service."""
        self.check_replacement(spec)
        rec = self.record(name)
        rec.generation = generation
        rec.spec = spec
        rec.tracker.spec = spec.restart
        rec.consecutive_failures = 0
        self.register(spec)  # marks it

    def started(self, name: str, generation: int) -> None:
        """The actor of ``generation`` was created and its start() hook returned."""
        rec = self._records.get(name)
        if rec is not None and rec.generation == generation and rec.state is ServiceState.STARTING:
            rec.started_at = self._clock()
            rec.start_returned = True
            rec.start_failures = 0
            self._mark(name)  # its startup timeout counts from now

    def _ready(self, name: str) -> bool:
        return all(self._records[d].state in UP_STATES for d in self._graph.dependencies(name))

    def tick(self) -> list[Action]:
        """One reconcile step over the services that may have something to do, in start order.

        A record marked while the tick runs (a dependency started, rest_for_one restarted a
        dependent) is visited in the same tick when it comes later in start order, as a walk
        over every record would have; otherwise at the next tick.
        """
        if not self.running:
            return []
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            due, name = heapq.heappop(self._timers)
            if self._next_due.get(name) == due:
                del self._next_due[name]
            self._dirty.add(name)
        if self._full_scan:
            self._dirty.update(self._records)
        self._queue = [(self._position[n], n) for n in self._dirty if n in self._position]
        heapq.heapify(self._queue)
        self._queued = set(self._dirty)
        self._dirty = set()
        actions: list[Action] = []
        try:
            while self._queue:
                self._cursor, name = heapq.heappop(self._queue)
                actions.extend(self._step(self._records[name], now))
        finally:
            self._cursor = -1
            self._queued = set()
        actions.extend(self._check_auto_shutdown())
        return actions

    def _step(self, rec: ServiceRecord, now: float) -> list[Action]:
        """One record's reconcile step; a no-op for a record with nothing to do."""
        actions: list[Action] = []
        name = rec.spec.name
        state = rec.state
        if state is ServiceState.RESTARTING and now < rec.restart_at:
            self._schedule(name, rec.restart_at)
        if state is ServiceState.PENDING or (
            state is ServiceState.RESTARTING and now >= rec.restart_at
        ):
            if self._ready(name):
                rec.generation = max(rec.generation, rec.reserved_generation) + 1
                if state is ServiceState.RESTARTING:
                    rec.restarts += 1
                rec.started_at = now
                rec.consecutive_failures = 0
                rec.start_returned = False
                self._set_state(rec, ServiceState.STARTING)
                actions.append(StartService(name, rec.generation))
            return actions
        if state is ServiceState.STARTING and rec.started_at is not None:
            if now - rec.started_at > rec.spec.health.startup_timeout_s:
                detail = rec.last_error or "no healthy check"
                actions.extend(
                    self._fail(
                        rec,
                        f"not healthy within startup_timeout_s="
                        f"{rec.spec.health.startup_timeout_s:g}: {detail}",
                    )
                )
                return actions
            self._schedule(name, rec.started_at + rec.spec.health.startup_timeout_s)
        if state in UP_STATES:
            actions.extend(self._reconcile_dependencies(rec))
            if rec.healthy_since is not None:
                rec.tracker.note_healthy(rec.healthy_since, now)
                if rec.tracker.consecutive:
                    self._schedule(name, rec.healthy_since + rec.spec.restart.backoff_reset_s)
        return actions

    def _shutdown_due(self) -> ShutdownCause | None:
        """The auto_shutdown the next tick will act on, if its significant services say so."""
        if self.auto_shutdown is AutoShutdown.NEVER or self.shutdown is not None:
            return None
        if self._significant is None:
            self._significant = tuple(r for r in self.records() if r.spec.significant)
        if not any(r.state in _ENDED for r in self._significant):
            return None
        return shutdown_due(
            self.auto_shutdown,
            (
                (r.spec.name, _ENDED.get(r.state, "running"), r.last_error)
                for r in self._significant
            ),
        )

    def _check_auto_shutdown(self) -> list[Action]:
        """Stop the application, once, when its significant services ended as its policy says."""
        cause = self._shutdown_due()
        if cause is None:
            return []
        self.shutdown = cause
        self.running = False
        return [ShutdownApplication(cause)]

    def _reconcile_dependencies(self, rec: ServiceRecord) -> list[Action]:
        actions: list[Action] = []
        all_up = True
        for dep in self._graph.dependencies(rec.spec.name):
            dep_state = self._records[dep].state
            up = dep_state in UP_STATES
            all_up = all_up and up
            if rec.seen_dependencies.get(dep, True) != up:
                actions.append(NotifyDependency(rec.spec.name, rec.generation, dep, dep_state))
            rec.seen_dependencies[dep] = up
        self._set_state(rec, ServiceState.HEALTHY if all_up else ServiceState.DEGRADED)
        return actions

    def settled(self) -> bool:
        """Every service is up, or given up on, or waiting behind one that was given up on;
        and the application is not about to stop itself (its next tick would)."""
        if self._shutdown_due() is not None:
            return False
        failed = {n for n, r in self._records.items() if r.state is ServiceState.FAILED}
        blocked = set(failed)
        for name in failed:
            blocked.update(self._graph.dependents(name))
        return all(rec.state in UP_STATES or name in blocked for name, rec in self._records.items())

    def begin_stop(self, name: str) -> int | None:
        """Mark a service as stopping; returns the generation to stop, or None if none runs."""
        rec = self.record(name)
        live = rec.state in LIVE_STATES
        self._set_state(rec, ServiceState.STOPPING if live else ServiceState.STOPPED)
        return rec.generation if live else None

    def stopped(self, name: str) -> None:
        rec = self.record(name)
        rec.healthy_since = None
        self._set_state(rec, ServiceState.STOPPED)

    def reset_for_start(self) -> None:
        """After a full stop, let start_all start everything again from PENDING."""
        self.shutdown = None
        for rec in self._records.values():
            rec.start_failures = 0
            if rec.state in (ServiceState.STOPPED, ServiceState.FAILED):
                rec.tracker.reset()
                rec.last_error = None if rec.state is ServiceState.STOPPED else rec.last_error
                self._mark(rec.spec.name)
                self._set_state(rec, ServiceState.PENDING)
