"""When the application stops by itself: OTP's ``auto_shutdown`` over significant services.

A significant service that *ends for good* (it completed and its policy does not bring it
back, or it is FAILED: a temporary one that died, one past its restart intensity or its start
budget) may end the whole application, so that a job built from services finishes, and
``ray job submit`` sees how. Pure: the supervisor asks, the registry actor stops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ray_enterprise.spec import AutoShutdown


@dataclass(frozen=True)
class ShutdownCause:
    """Why the application stopped itself; ``failed`` when a significant service FAILED (the
    ``up`` job then exits non-zero), not when they all completed cleanly."""

    policy: AutoShutdown
    services: tuple[str, ...]  # the significant services that ended, in start order
    failed: bool
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy.value,
            "services": list(self.services),
            "failed": self.failed,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ShutdownCause:
        services = data.get("services") or []
        assert isinstance(services, list)
        return cls(
            AutoShutdown(str(data["policy"])),
            tuple(str(s) for s in services),
            bool(data.get("failed")),
            str(data.get("reason", "")),
        )


def shutdown_due(
    policy: AutoShutdown, significant: Iterable[tuple[str, str, str | None]]
) -> ShutdownCause | None:
    """The cause if the application should stop now, else None.

    ``significant`` holds ``(name, outcome, last_error)`` per significant service, where
    outcome is ``"running"`` (anything not ended), ``"completed"`` or ``"failed"``.
    """
    if policy is AutoShutdown.NEVER:
        return None
    rows = list(significant)
    ended = [(name, outcome, error) for name, outcome, error in rows if outcome != "running"]
    if not ended:
        return None
    if policy is AutoShutdown.ALL_SIGNIFICANT and len(ended) < len(rows):
        return None
    failed = [(name, error) for name, outcome, error in ended if outcome == "failed"]
    if failed:
        why = "; ".join(f"{name} failed: {error or 'no reason given'}" for name, error in failed)
    else:
        why = f"{', '.join(name for name, _, _ in ended)} completed"
    return ShutdownCause(
        policy,
        tuple(name for name, _, _ in ended),
        bool(failed),
        f"auto_shutdown={policy.value}: {why}",
    )
