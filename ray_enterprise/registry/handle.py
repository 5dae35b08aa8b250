"""ServiceHandle: what ``get_service`` returns; ``handle.method.remote(...)`` as on an actor.

It routes each call straight to one replica actor, reading the service's route table from the
GCS key-value store when its copy is older than the table's ``ttl_s``. That is how callers and
dependents follow a scale-up, a scale-down or an upgrade without a failed call: the registry
stops a replica only after every caller's copy of the table without it has had time to expire
and its calls in flight have finished.

Through a restart (a replica killed, the service starting again) a call waits, up to the
spec's ``call_wait_s`` or the call's own ``.options(call_wait_s=...)``, for a live replica
instead of failing at once; a replica is known dead once the table drops it or a call this
handle sent it failed because the actor died, and no call is sent to a replica known dead.
A call that was already sent when its replica died fails (at most once: it may have run).
While the GCS is away the table cannot be read: calls go on by the copy held.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from ray_enterprise import _kv
from ray_enterprise.errors import ServiceUnavailableError
from ray_enterprise.registry.routing import RouteTable, Routing, choose

ROUTES = "registry/routes/"
_RAY_ACTOR_METHODS = frozenset({"__ray_call__", "__ray_ready__"})
DEFAULT_CALL_WAIT_S = 5.0  # before a table was read (ServiceSpec.call_wait_s's default)
_WAIT_POLL_S = 0.05  # how often a waiting call reads the table again


class ServiceHandle:
    """A picklable, routing stand-in for an actor handle; pass it to tasks and actors freely."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._table: RouteTable | None = None
        self._fetched_at = -1e18
        self._turn = 0
        self._actors: dict[str, Any] = {}
        self._pending: dict[str, list[Any]] = {}
        self._last: dict[str, Any] = {}  # replica -> the last call sent to it from here
        self._dead: dict[str, int] = {}  # replica -> epoch of the table it was found dead in
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        # Only the name travels: the receiver reads the table afresh.
        return (ServiceHandle, (self._service,))

    def __repr__(self) -> str:
        replicas = list(self._table.replicas) if self._table else "?"
        return f"ServiceHandle({self._service!r}, replicas={replicas})"

    @property
    def service(self) -> str:
        return self._service

    def __getattr__(self, method: str) -> _Method:
        # Python's and Ray's probes of a handle are not methods; Ray's own actor methods are.
        if method.startswith(("__", "_ray_")) and method not in _RAY_ACTOR_METHODS:
            raise AttributeError(method)
        return _Method(self, method, {})

    @property
    def _ray_method_signatures(self) -> dict[str, Any]:
        """The service class's method signatures, as an actor handle has them, so wrappers
        that read them (``traced_handle``) treat this handle like an actor's."""
        replicas = self.table().replicas
        if not replicas:
            return {}
        signatures: dict[str, Any] = self._actor(replicas[0])._ray_method_signatures
        return signatures

    # -- routing ------------------------------------------------------------------------------

    def table(self, *, fresh: bool = False) -> RouteTable:
        """The route table, read again when the copy held is past its ``ttl_s`` (or ``fresh``)."""
        now = time.monotonic()
        table = self._table
        if fresh or table is None or now - self._fetched_at >= table.ttl_s:
            try:
                raw = _kv.get(ROUTES + self._service)
            except Exception:
                # The GCS is away (restarting from Redis): the replicas it listed still run
                # and take calls, so keep routing by the copy held and read again next time.
                if table is None:
                    raise
                return table
            if raw is None:
                raise ServiceUnavailableError(
                    f"service {self._service!r} has no replica taking calls (not started, or "
                    "stopped); start it, or ask get_service(name, wait_s=...) to wait for it",
                    service=self._service,
                )
            table = RouteTable.from_json(raw)
            self._table, self._fetched_at = table, now
            for rid in [r for r in self._actors if r not in table.replicas]:
                del self._actors[rid]
            # A newer table that still lists a replica found dead lists a new actor of that
            # name (a replaced replica keeps its id): the registry drops the dead one at once.
            self._dead = {r: e for r, e in self._dead.items() if e >= table.epoch}
        return table

    def replicas(self) -> list[Any]:
        """The actor handles of every replica taking calls now (to reach each one)."""
        return [self._actor(rid) for rid in self.table().replicas]

    def _actor(self, rid: str) -> Any:
        actor = self._actors.get(rid)
        if actor is None:
            actor = ray.get_actor(rid, namespace=_kv.NAMESPACE)
            self._actors[rid] = actor
        return actor

    def _pick(self, wait_s: float | None) -> str:
        """A live replica; while there is none (restarting), wait up to ``wait_s`` for one."""
        deadline: float | None = None
        fresh = False
        while True:
            table: RouteTable | None
            try:
                table = self.table(fresh=fresh)
            except ServiceUnavailableError:  # no table: not started yet, or stopped
                table = None
            live = [r for r in table.replicas if r not in self._dead] if table else []
            if table is not None and live:
                with self._lock:
                    self._turn += 1
                    load: dict[str, int] = {}
                    if table.routing is Routing.LEAST_LOADED:
                        load = self._load(tuple(live))
                    rid = choose(live, routing=table.routing, turn=self._turn, load=load)
                if not self._found_dead(rid, table.epoch):
                    return rid
                fresh = True
                continue
            now = time.monotonic()
            if deadline is None:
                waited = wait_s if wait_s is not None else self._wait_limit(table)
                deadline = now + waited
            if now >= deadline:
                raise ServiceUnavailableError(
                    f"service {self._service!r} has no replica taking calls "
                    + ("(not started, or stopped)" if table is None else "(restarting or down)")
                    + f" after {waited:g} s of waiting (call_wait_s); start it, or wait longer "
                    "with handle.method.options(call_wait_s=...) or the spec's call_wait_s",
                    service=self._service,
                )
            time.sleep(_WAIT_POLL_S)
            fresh = True

    def _wait_limit(self, table: RouteTable | None) -> float:
        known = table or self._table
        return known.call_wait_s if known is not None else DEFAULT_CALL_WAIT_S

    def _found_dead(self, rid: str, epoch: int) -> bool:
        """Whether the last call sent from here to ``rid`` failed because its actor died.

        Only that one call is looked at, and only once it finished: a caller that read its
        result has it local already, so this costs a lookup, not a transfer.
        """
        last = self._last.get(rid)
        if last is None:
            return False
        ready, _ = ray.wait([last], timeout=0, fetch_local=False)
        if not ready:
            return False
        self._last.pop(rid, None)
        try:
            ray.get(last, timeout=0)
        except ActorUnavailableError:  # unreachable for now, not known dead
            return False
        except RayActorError:
            self._dead[rid] = epoch
            self._actors.pop(rid, None)
            return True
        except Exception:  # the method's own error: the replica is alive
            return False
        return False

    def _load(self, replicas: tuple[str, ...]) -> dict[str, int]:
        """Calls this caller still waits on, per replica: a cheap, local measure of load."""
        load = {}
        for rid in replicas:
            refs = self._pending.get(rid, [])
            if refs:
                _, refs = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
                self._pending[rid] = refs
            load[rid] = len(refs)
        for rid in list(self._pending):  # replicas that left the table
            if rid not in replicas:
                del self._pending[rid]
        return load

    def _call(self, method: str, options: dict[str, Any], args: Any, kwargs: Any) -> Any:
        options = dict(options)
        wait_s = options.pop("call_wait_s", None)
        rid = self._pick(None if wait_s is None else float(wait_s))
        actor_method = getattr(self._actor(rid), method)
        if options:
            actor_method = actor_method.options(**options)
        ref = actor_method.remote(*args, **kwargs)
        self._last[rid] = ref
        if self._table is not None and self._table.routing is Routing.LEAST_LOADED:
            with self._lock:
                self._pending.setdefault(rid, []).append(ref)
        return ref


class _Method:
    def __init__(self, handle: ServiceHandle, name: str, options: dict[str, Any]) -> None:
        self._handle = handle
        self._name = name
        self._options = options

    def options(self, **options: Any) -> _Method:
        return _Method(self._handle, self._name, {**self._options, **options})

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._handle._call(self._name, self._options, args, kwargs)


def publish_routes(service: str, table: RouteTable) -> None:
    _kv.put(ROUTES + service, table.to_json())


def withdraw_routes(service: str) -> None:
    _kv.delete(ROUTES + service)
