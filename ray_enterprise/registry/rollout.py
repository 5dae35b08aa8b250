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
from ray_enterprise.registry.replicas import Replica


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
    # After the commit only a stall (upgrade.progress_deadline_s) goes back: the old version
    # is switched back in and topped up before the new one is retired.
    Phase.COMMITTED: frozenset({Phase.DONE, Phase.ROLLING_BACK}),
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


def available(replica: Replica, now: float, min_ready_s: float) -> bool:
    """A new replica counts only once it has taken calls for ``min_ready_s`` without a break
    (Kubernetes ``minReadySeconds``, Nomad ``min_healthy_time``): one that passes its first
    check and falls over a second later must not let the old version go."""
    if not (replica.ready and replica.serving) or replica.draining:
        return False
    return replica.ready_since is not None and now - replica.ready_since >= min_ready_s


@dataclass(frozen=True)
class Step:
    start: int  # new replicas to start now
    retire: int  # old replicas to take away now


def rolling_step(
    desired: int,
    *,
    old: int,
    new: int,
    available_now: int,
    max_surge: int,
    max_unavailable: int,
) -> Step:
    """One step of a rolling upgrade, bounded as Kubernetes bounds it: never more than
    ``desired + max_surge`` replicas, never fewer than ``desired - max_unavailable`` available.

    ``old``: old replicas still serving; ``new``: new replicas started, ready or not;
    ``available_now``: old ones serving plus new ones :func:`available`.
    """
    start = max(0, min(desired - new, desired + max_surge - (old + new)))
    retire = max(0, min(old, available_now - (desired - max_unavailable)))
    return Step(start, retire)


@dataclass
class ProgressDeadline:
    """An upgrade must progress (another new replica available, another old one retired)
    within ``deadline_s`` (Kubernetes ``progressDeadlineSeconds``, Nomad
    ``progress_deadline``), or it rolls back."""

    deadline_s: float
    last_at: float
    done: int = 0  # steps of progress so far

    def note(self, done: int, now: float) -> None:
        if done > self.done:
            self.done, self.last_at = done, now

    def stalled(self, now: float) -> bool:
        return now - self.last_at > self.deadline_s

    def reason(self) -> str:
        return (
            f"no progress within upgrade.progress_deadline_s={self.deadline_s:g} s "
            f"({self.done} step(s) done)"
        )
