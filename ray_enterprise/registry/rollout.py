"""One upgrade of one service as a small state machine: the plan, the phases, and what a
restarted registry keeps of an upgrade it was in the middle of. Pure, no Ray.

The commit point is one write: the service's record switching to the new generation. Before
it, the old version (blue) is the service and the new (green) is a candidate that may be thrown
away; after it, the new version is the service and the old only has to be retired. So an
upgrade interrupted anywhere ends as old or as new, never as both half-running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any

from ray_enterprise.errors import RayEnterpriseError


class DeploymentError(RayEnterpriseError):
    """An upgrade, rollback or scale request that cannot be carried out as asked."""


class Strategy(str, Enum):
    BLUE_GREEN = "blue_green"  # all of green beside all of blue, then switch at once
    ROLLING = "rolling"  # one green first (the canary), then replace blue one at a time


class Phase(str, Enum):
    STARTING = "starting"  # the first greens are starting beside blue
    BAKING = "baking"  # greens take calls beside blue; the gate watches both
    COMMITTED = "committed"  # green is the service now; blue is being retired
    DONE = "done"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"


_NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.BAKING, Phase.ROLLING_BACK}),
    Phase.BAKING: frozenset({Phase.COMMITTED, Phase.ROLLING_BACK}),
    Phase.COMMITTED: frozenset({Phase.DONE}),
    Phase.ROLLING_BACK: frozenset({Phase.ROLLED_BACK}),
    Phase.DONE: frozenset(),
    Phase.ROLLED_BACK: frozenset(),
}


def choose_strategy(replicas: int, configured: str) -> Strategy:
    """A single replica is always blue-green; replicated services follow the config, and the
    config's ``recreate`` (downtime by design) is not offered: it becomes rolling."""
    if replicas == 1:
        return Strategy.BLUE_GREEN
    return Strategy.BLUE_GREEN if configured == Strategy.BLUE_GREEN.value else Strategy.ROLLING


@dataclass(frozen=True)
class Rollout:
    """The durable state of one upgrade, kept in the key-value store while it runs."""

    service: str
    deployment_id: str
    kind: str  # "upgrade" or "rollback"
    from_generation: int
    to_generation: int
    old_spec: dict[str, Any]
    new_spec: dict[str, Any]
    strategy: Strategy
    phase: Phase = Phase.STARTING
    reason: str = ""

    @property
    def first_batch(self) -> int:
        """How many greens start before the bake: all of them, or one canary."""
        replicas = int(self.new_spec.get("replicas", 1))
        return replicas if self.strategy is Strategy.BLUE_GREEN else 1

    def to(self, phase: Phase, reason: str = "") -> Rollout:
        """The next phase; a step the machine does not allow is a bug, said loudly."""
        if phase not in _NEXT[self.phase]:
            raise DeploymentError(
                f"upgrade of {self.service!r} cannot go from {self.phase.value} to {phase.value}"
            )
        return replace(self, phase=phase, reason=reason or self.reason)

    @property
    def committed(self) -> bool:
        return self.phase in (Phase.COMMITTED, Phase.DONE)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["strategy"] = self.strategy.value
        data["phase"] = self.phase.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rollout:
        return cls(
            **{
                **data,
                "strategy": Strategy(data["strategy"]),
                "phase": Phase(data["phase"]),
            }
        )


def recovered_outcome(rollout: Rollout, record_generation: int) -> str:
    """After a registry restart: ``"new"`` if the commit (the record's switch) happened, else
    ``"old"``. The record, not the rollout's phase, decides: it is the one write that counts."""
    return "new" if record_generation == rollout.to_generation else "old"
