"""What a restarted registry does with what it finds: adopt, restore or kill. Pure, no Ray.

The registry reads its records (generation, failed, restarts per service) from the key-value
store and the names of the live service actors from Ray; this plan says which services are
adopted with their live replicas, which are restored from their record (to be started
again, or left failed), and which live actors are orphans to kill.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ray_enterprise.registry.replicas import parse_replica_id


@dataclass(frozen=True)
class Adopt:
    name: str
    generation: int
    restarts: int
    replica_ids: tuple[str, ...]


@dataclass(frozen=True)
class Restore:
    name: str
    generation: int
    failed: bool
    restarts: int


@dataclass(frozen=True)
class RecoveryPlan:
    adopt: list[Adopt] = field(default_factory=list)
    restore: list[Restore] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # live service actors nobody owns


def plan_recovery(
    records: Mapping[str, Mapping[str, Any]],
    registered: Iterable[str],
    live_names: Iterable[str],
    desired: str | None,
) -> RecoveryPlan:
    """Adopt a service's live actors of its recorded generation when the application was
    running (or stopping: the stop is finished with them) and it had not failed; otherwise
    restore its record. Any other actor named like a service is an orphan of a crash between
    steps (a green of an upgrade that did not commit, a blue of one that did)."""
    live = [(n, parsed) for n in live_names if (parsed := parse_replica_id(n)) is not None]
    plan = RecoveryPlan()
    keep: set[str] = set()
    names = set(registered)
    for name, rec in records.items():
        if name not in names:
            continue
        gen = int(rec.get("generation", 0))
        restarts = int(rec.get("restarts", 0))
        failed = bool(rec.get("failed"))
        mine = [n for n, (svc, g, _) in live if svc == name and g == gen] if gen else []
        if mine and desired in ("running", "stopping") and not failed:
            plan.adopt.append(Adopt(name, gen, restarts, tuple(mine)))
            keep.update(mine)
        else:
            plan.restore.append(Restore(name, gen, failed, restarts))
    plan.orphans.extend(n for n, _ in live if n not in keep)
    return plan
