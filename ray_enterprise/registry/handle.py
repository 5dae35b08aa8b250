"""ServiceHandle: what ``get_service`` returns; ``handle.method.remote(...)`` as on an actor.

It routes each call straight to one replica actor, reading the service's route table from the
GCS key-value store when its copy is older than the table's ``ttl_s``. That is how callers and
dependents follow a scale-up, a scale-down or an upgrade without a failed call: the registry
stops a replica only after every caller's copy of the table without it has had time to expire
and its calls in flight have finished.

Through a restart (a replica killed, the service starting again) a call waits, up to the
spec's ``call_wait_s`` or the call's own ``.options(call_wait_s=...)``, for a live replica
instead of failing at once. A replica is known dead once the table drops it or any call this
handle sent to its actor, from any thread, ended with ``ActorDiedError``; no call is sent to a
replica known dead. A call that was already sent when its replica died fails (at most once: it
may have run). That includes a call sent between the death and its first failure coming back:
Ray fails a call that was running and one pushed to the dead process after it alike (the
same ``ActorDiedError``, built from the actor's death cause alone), so it cannot be re-sent
safely; only an acknowledgement from the replica before it runs a call (Serve's "rejection"
reply) would tell them apart. While the GCS is away the table cannot be read: calls go on by
the copy held.
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
# Calls tracked per replica: all pending calls to a dead actor fail together, so the newest
# ones tell its death as well as all would, and ray.wait stays cheap for fire-and-forget callers.
_TRACKED = 64


class ServiceHandle:
    """A picklable, routing stand-in for an actor handle; pass it to tasks and actors freely."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._table: RouteTable | None = None
        self._fetched_at = -1e18
        self._turn = 0
        self._actors: dict[str, Any] = {}
        # replica -> (the actor they went to, calls sent there from here whose end this
        # handle has not looked at yet)
        self._sent: dict[str, tuple[Any, list[Any]]] = {}
        self._dead: dict[str, int] = {}  # replica -> epoch of the table held when found dead
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
            with self._lock:
                if self._table is None or self._table.epoch != table.epoch:
                    # Any replica may be a new actor under its old name (replaced after a
                    # death this handle never saw): look each up again on its next call.
                    self._actors.clear()
                    for rid in [r for r in self._sent if r not in table.replicas]:
                        del self._sent[rid]
                self._table, self._fetched_at = table, now
                # Another table that still lists a replica found dead lists a new actor of
                # that name (a replaced replica keeps its id): the registry drops the dead
                # one at once. Epochs start again when the registry does: unequal, not newer.
                for rid in [r for r, e in self._dead.items() if e != table.epoch]:
                    del self._dead[rid]
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

    def _pick(self, wait_s: float | None) -> tuple[str, Any]:
        """A live replica and its actor; while there is none (restarting), wait up to
        ``wait_s`` for one."""
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
                    turn = self._turn
                load: dict[str, int] = {}
                if table.routing is Routing.LEAST_LOADED:
                    load = {rid: self._settle(rid, None) for rid in live}
                    live = [rid for rid in live if rid not in self._dead]
                if live:
                    rid = choose(live, routing=table.routing, turn=turn, load=load)
                    actor = self._live_actor(rid)
                    if actor is not None and self._settle(rid, actor) >= 0:
                        return rid, actor
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

    def _live_actor(self, rid: str) -> Any | None:
        """The replica's actor, or None when its name is gone: it died, and the registry has
        not replaced it yet (a table read between the death and the drop still lists it)."""
        try:
            return self._actor(rid)
        except ValueError:
            self._mark_dead(rid)
            return None

    def _mark_dead(self, rid: str) -> None:
        with self._lock:
            self._mark_dead_locked(rid)

    def _mark_dead_locked(self, rid: str) -> None:
        # Dead until a table other than the one held now lists it again.
        self._dead[rid] = self._table.epoch if self._table is not None else -1
        self._actors.pop(rid, None)
        self._sent.pop(rid, None)

    def _settle(self, rid: str, actor: Any | None) -> int:
        """How many calls sent from here to ``rid`` are still pending, or -1 once the replica
        is known dead: one of those calls ended failed because its actor died.

        Every call this handle still tracks there is looked at, not only the last one sent:
        with several threads on one handle the last one may still be pending (a call submitted
        to a dead actor fails a moment later, not inside ``.remote()``) while an earlier one
        already came back failed. The look and the verdict are one step under the lock, so no
        thread can pick the replica between another taking a failed call off the list and
        marking the replica dead. Finished calls are local by then: a lookup, not a transfer.
        Calls that went to an earlier actor of that name (``actor`` is the one to call now)
        say nothing of it and are dropped.
        """
        with self._lock:
            if rid in self._dead:
                return -1
            went_to, refs = self._sent.get(rid, (None, []))
            if actor is not None and went_to is not None and went_to != actor:
                del self._sent[rid]
                return 0
            if not refs:
                return 0
            done, pending = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
            if done and _any_died(done):
                self._mark_dead_locked(rid)
                return -1
            self._sent[rid] = (went_to, pending)
            return len(pending)

    def _call(self, method: str, options: dict[str, Any], args: Any, kwargs: Any) -> Any:
        options = dict(options)
        wait_s = options.pop("call_wait_s", None)
        rid, actor = self._pick(None if wait_s is None else float(wait_s))
        actor_method = getattr(actor, method)
        if options:
            actor_method = actor_method.options(**options)
        ref = actor_method.remote(*args, **kwargs)
        first = ref[0] if isinstance(ref, list) and ref else ref  # num_returns > 1
        if isinstance(first, ray.ObjectRef):  # a generator's end is not looked at
            with self._lock:
                went_to, sent = self._sent.get(rid, (None, []))
                if rid in self._dead:
                    pass  # found dead since it was picked: this call tells nothing new
                elif went_to is None or went_to != actor:
                    self._sent[rid] = (actor, [first])
                else:
                    sent.append(first)
                    if len(sent) > _TRACKED:
                        del sent[: len(sent) - _TRACKED]
        return ref


def _any_died(refs: list[Any]) -> bool:
    """Whether one of these finished calls failed because its actor died (not merely
    unreachable for now: ``ActorUnavailableError`` says the actor may come back)."""
    try:
        ray.get(refs, timeout=0)  # the usual case, every call answered: one look for all
    except ActorUnavailableError:
        pass
    except RayActorError:
        return True
    except Exception:  # one method's own error hides the others: look at each
        pass
    else:
        return False
    return any(_died(ref) for ref in refs)


def _died(ref: Any) -> bool:
    try:
        ray.get(ref, timeout=0)
    except ActorUnavailableError:
        return False
    except RayActorError:
        return True
    except Exception:  # the method's own error: the replica is alive
        return False
    return False


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
