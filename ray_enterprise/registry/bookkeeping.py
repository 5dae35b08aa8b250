"""What the registry brings up to date after each tick, for the services that changed alone:
the status snapshot, the durable records and the set of services whose replica count must be
looked at again.

It is Ray-free and holds no actor: the RegistryActor feeds it what the supervisor and the
replicas touched and says how to write a record and how to describe a service, and
``benchmarks/registry_scale.py`` drives this same class over a simulated fleet, so the
figure measures the registry's own bookkeeping rather than a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ray_enterprise.errors import ServiceNotFoundError
from ray_enterprise.registry.graph import DependencyGraph
from ray_enterprise.registry.status import ServiceStatus, StatusSnapshot
from ray_enterprise.registry.supervision import ServiceState, Supervisor

RecordWriter = Callable[[str, dict[str, Any]], None]


def durable_record(sup: Supervisor, name: str) -> dict[str, Any]:
    """What must survive the registry (and a full restart) about one service."""
    rec = sup.record(name)
    return {
        "generation": rec.generation,
        "failed": rec.state is ServiceState.FAILED,
        "restarts": rec.restarts,
    }


class RegistryBook:
    """The registry's per-tick bookkeeping, redone for the services that changed only."""

    def __init__(self, write: RecordWriter) -> None:
        self._write = write  # name, record -> the durable store
        self.snapshot = StatusSnapshot()
        self.persisted: dict[str, dict[str, Any]] = {}  # what the store holds, to skip rewrites
        self._graph: DependencyGraph | None = None
        self._stale: set[str] = set()  # status to redo
        self._unpersisted: set[str] = set()  # record to write if it differs
        self._unreconciled: set[str] = set()  # replica count to look at
        self._upgrading: set[str] = set()

    def note(self, changed: set[str], upgrading: Collection[str] = ()) -> None:
        """Services touched since the last call; an upgrade that began or ended changes its
        service's status and hands its replicas over, so both ends count as a change."""
        changed = changed | set(upgrading) | self._upgrading
        self._upgrading = set(upgrading)
        self._stale |= changed
        self._unpersisted |= changed
        self._unreconciled |= changed

    def mark_stale(self, name: str) -> None:
        self._stale.add(name)

    def mark_unreconciled(self, name: str) -> None:
        self._unreconciled.add(name)

    def take_unreconciled(self) -> set[str]:
        names, self._unreconciled = self._unreconciled, set()
        return names

    def persist_one(self, sup: Supervisor, name: str) -> None:
        data = durable_record(sup, name)
        if self.persisted.get(name) != data:
            self._write(name, data)
            self.persisted[name] = data

    def persist(self, sup: Supervisor, *, every: bool = False) -> None:
        """Write the records that changed (``every``: all of them) to the durable store."""
        names, self._unpersisted = self._unpersisted, set()
        if every:
            names = {rec.spec.name for rec in sup.records()}
        for name in names:
            try:
                self.persist_one(sup, name)
            except ServiceNotFoundError:  # unregistered since
                continue

    def refresh(self, sup: Supervisor, status_of: Callable[[str], ServiceStatus]) -> None:
        """Bring the status snapshot up to date with what changed since it last was."""
        if sup.graph is not self._graph:
            self._graph = sup.graph
            self.snapshot.set_levels(sup.graph.levels())
        names, self._stale = self._stale, set()
        for name in names:
            try:
                self.snapshot.put(status_of(name))
            except ServiceNotFoundError:  # unregistered
                self.snapshot.drop(name)

    def view(self, sup: Supervisor) -> dict[str, Any]:
        """The system status as ``get_system_status`` serves it (the actor adds the moves)."""
        status = self.snapshot.view(running=sup.running)
        status["services"] = self.snapshot.services()
        status["levels"] = self.snapshot.levels()
        return status

    def clear(self) -> None:
        self.snapshot.clear()
        self._graph = None
        for pending in (self._stale, self._unpersisted, self._unreconciled, self._upgrading):
            pending.clear()
        self.persisted.clear()
