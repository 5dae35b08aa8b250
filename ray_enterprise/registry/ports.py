"""What the deployer and the scaler may ask of the registry: a small, explicit interface.

The RegistryActor implements it; :class:`~ray_enterprise.registry.deployer.Deployer` and
:class:`~ray_enterprise.registry.scaling.Scaler` are written against it alone, never against
the actor's own fields, and import no registry actor (so no import circle runs through them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from ray_enterprise.registry.replicas import Replica, ReplicaSet
from ray_enterprise.registry.supervision import Supervisor
from ray_enterprise.spec import ServiceSpec

if TYPE_CHECKING:
    from ray_enterprise.registry.replica_wrapper import ReplicaActor


class RegistryCore(Protocol):
    @property
    def supervisor(self) -> Supervisor:
        """The service state machine: records, generations, commits."""

    def replica_set(self, name: str) -> ReplicaSet | None:
        """The replicas of ``name``, or None before it ever had one."""

    def replica_actors(self) -> Mapping[str, ReplicaActor]:
        """Replica id -> its actor, for every replica created and not yet dropped."""

    def routed(self, name: str) -> bool:
        """Whether callers have a route table for ``name``."""

    def start_replica(self, name: str, generation: int, spec: ServiceSpec) -> Replica:
        """One more replica of ``generation`` running ``spec`` (an upgrade's green)."""

    def retire(self, name: str, replica: Replica) -> asyncio.Task[None]:
        """Take a replica out of the routes, let its calls finish, stop it."""

    def kill_generation(self, name: str, generation: int) -> None:
        """Kill every replica of one generation at once (an abandoned upgrade's greens)."""

    def persist(self, name: str) -> None:
        """Make the service's record (its generation: the upgrade's commit) durable."""

    def save_spec(self, spec: ServiceSpec) -> None:
        """Make a replaced spec durable (an upgrade's commit, a scale)."""

    def wake(self, name: str | None = None) -> None:
        """Run the reconcile loop now rather than at the next tick; ``name``: that service's
        replica count may have changed (a scale, an autoscaler's decision, an upgrade's end),
        since the loop looks only at services that changed."""
