"""Which replica actors a service has, which of them take calls, and which to add or retire.

Pure bookkeeping, no Ray: the registry actor holds one :class:`ReplicaSet` per service, feeds
it what it saw (a replica started, passed or failed a check, died) and asks it what to do. A
replica is one actor; its id is its actor name, so a restarted registry finds it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ray_enterprise.system_actors import SERVICE_PREFIX


def replica_id(service: str, generation: int, index: int = 0) -> str:
    """``svc:<service>:<generation>`` for the first replica, ``...:<generation>.<index>`` after.

    The first replica keeps the name a single-actor service always had, so nothing that knows
    that name breaks.
    """
    base = f"{SERVICE_PREFIX}{service}:{generation}"
    return base if index == 0 else f"{base}.{index}"


def parse_replica_id(name: str) -> tuple[str, int, int] | None:
    """``(service, generation, index)`` of a service actor name, or None for any other name."""
    if not name.startswith(SERVICE_PREFIX):
        return None
    service, _, tail = name[len(SERVICE_PREFIX) :].rpartition(":")
    gen, _, index = tail.partition(".")
    if not service or not gen.isdigit() or (index and not index.isdigit()):
        return None
    return service, int(gen), int(index or 0)


@dataclass
class Replica:
    """One actor of a service; ``ready`` once it passed a health check and may take calls.

    ``serving`` is the readiness probe's verdict: a ready replica that said not ready is out
    of the routes until ``success_threshold`` ready checks in a row (``ready_streak``).
    ``recovering``: it failed a check since it last counted as healthy, so a pass alone is
    not yet enough. ``ready_since`` (the registry's clock) is when it last began to serve.
    """

    id: str
    generation: int
    index: int
    ready: bool = False
    draining: bool = False  # out of the routes, finishing the calls it has
    failures: int = 0  # consecutive failed health checks
    node: str | None = None
    passed: int = 0  # health checks passed and failed in all: what an upgrade's gate reads
    failed: int = 0
    serving: bool = True
    streak: int = 0  # live checks in a row
    ready_streak: int = 0  # ready checks in a row
    recovering: bool = False
    ready_since: float | None = None
    pending: bool = False  # no node has room for it (actor.max_replicas_per_node)


@dataclass
class ReplicaSet:
    """The replicas of one service, in the order they were added."""

    service: str
    members: dict[str, Replica] = field(default_factory=dict)

    def add(self, generation: int, index: int | None = None) -> Replica:
        """A new replica of ``generation``; without ``index`` the lowest one not in use."""
        if index is None:
            used = {r.index for r in self.members.values() if r.generation == generation}
            index = next(i for i in range(len(used) + 1) if i not in used)
        rid = replica_id(self.service, generation, index)
        replica = Replica(rid, generation, index)
        self.members[rid] = replica
        return replica

    def adopt(self, ids: Iterable[str]) -> list[Replica]:
        """Replicas a restarted registry found alive: ready until a check says otherwise."""
        adopted = []
        for rid in ids:
            parsed = parse_replica_id(rid)
            if parsed is None or parsed[0] != self.service:
                continue
            replica = Replica(rid, parsed[1], parsed[2], ready=True)
            self.members[rid] = replica
            adopted.append(replica)
        return adopted

    def remove(self, rid: str) -> Replica | None:
        return self.members.pop(rid, None)

    def get(self, rid: str) -> Replica | None:
        return self.members.get(rid)

    def of(self, generation: int) -> list[Replica]:
        """The replicas of one generation that are not on their way out."""
        return [r for r in self.members.values() if r.generation == generation and not r.draining]

    def routes(self) -> list[str]:
        """The replicas callers may reach: ready, serving and not draining, any generation."""
        return [r.id for r in self.members.values() if r.ready and r.serving and not r.draining]

    def pending(self) -> list[str]:
        """Replicas waiting for a node with room: no actor exists for them yet."""
        return [r.id for r in self.members.values() if r.pending]

    def not_ready(self) -> list[str]:
        """Replicas alive and started but out of the routes because they said not ready."""
        return [r.id for r in self.members.values() if r.ready and not r.serving]

    def health_failed(self, rid: str, threshold: int) -> bool:
        """Count a failed check; True when the replica is past the threshold and must go."""
        replica = self.members.get(rid)
        if replica is None:
            return False
        replica.failures += 1
        return replica.failures >= threshold

    def health_passed(self, rid: str) -> bool:
        """Count a passed check; True when this made the replica ready (routes changed)."""
        replica = self.members.get(rid)
        if replica is None:
            return False
        replica.failures = 0
        became_ready = not replica.ready
        replica.ready = True
        return became_ready

    def others_up(self, rid: str, generation: int) -> bool:
        """Whether some other ready replica of ``generation`` still takes calls without it."""
        return any(r.id != rid and r.ready for r in self.of(generation))

    def to_retire(self, generation: int, count: int) -> list[Replica]:
        """Which ``count`` replicas of ``generation`` to take away first.

        Ones not ready yet go first (they take no calls), then the highest indices, so the
        survivors keep the low, stable names.
        """
        candidates = sorted(self.of(generation), key=lambda r: (r.ready, -r.index))
        return candidates[: max(count, 0)]

    def shortfall(self, generation: int, desired: int) -> int:
        """How many replicas of ``generation`` to add (positive) or retire (negative)."""
        return desired - len(self.of(generation))
