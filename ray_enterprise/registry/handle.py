"""ServiceHandle: what ``get_service`` returns; ``handle.method.remote(...)`` as on an actor.

It routes each call straight to one replica actor, reading the service's route table from the
GCS key-value store when its copy is older than the table's ``ttl_s``. That is how callers and
dependents follow a scale-up, a scale-down or an upgrade without a failed call: the registry
stops a replica only after every caller's copy of the table without it has had time to expire
and its calls in flight have finished.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ray

from ray_enterprise import _kv
from ray_enterprise.errors import ServiceUnavailableError
from ray_enterprise.registry.routing import RouteTable, Routing, choose

ROUTES = "registry/routes/"
_RAY_ACTOR_METHODS = frozenset({"__ray_call__", "__ray_ready__"})


class ServiceHandle:
    """A picklable, routing stand-in for an actor handle; pass it to tasks and actors freely."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._table: RouteTable | None = None
        self._fetched_at = -1e18
        self._turn = 0
        self._actors: dict[str, Any] = {}
        self._pending: dict[str, list[Any]] = {}
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

    def table(self) -> RouteTable:
        """The route table, read again when the copy held is past its ``ttl_s``."""
        now = time.monotonic()
        table = self._table
        if table is None or now - self._fetched_at >= table.ttl_s:
            raw = _kv.get(ROUTES + self._service)
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

    def _pick(self) -> str:
        table = self.table()
        if not table.replicas:
            raise ServiceUnavailableError(
                f"service {self._service!r} has no replica taking calls right now; retry",
                service=self._service,
            )
        with self._lock:
            self._turn += 1
            load: dict[str, int] = {}
            if table.routing is Routing.LEAST_LOADED:
                load = self._load(table.replicas)
            return choose(table.replicas, routing=table.routing, turn=self._turn, load=load)

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
        rid = self._pick()
        actor_method = getattr(self._actor(rid), method)
        if options:
            actor_method = actor_method.options(**options)
        ref = actor_method.remote(*args, **kwargs)
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
