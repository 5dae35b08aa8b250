"""How long the audit trail keeps records: ``security.audit_retention_days``, read from the
running configuration each time retention runs, so a changed setting applies at the next run
without a restart. The schedule itself belongs to a system actor (the alert actor runs it in
its hourly history-retention loop, on the same database); the cut is
:meth:`~ray_enterprise.security.audit.AuditLog.apply_retention`, which writes its own record.
"""

from __future__ import annotations

import logging

from ray_enterprise import _kv
from ray_enterprise.config.schema import SecurityFrameworkConfig

DAY_S = 86_400.0
CONFIG_ACTOR = "config"
_logger = logging.getLogger("ray_enterprise.security.audit")


def retention_cutoff(days: int, now: float) -> float:
    """Records stamped before this are past ``days`` of retention."""
    return now - days * DAY_S


async def configured_retention_days() -> int | None:
    """The running security section's ``audit_retention_days``; ``None`` when audit is
    disabled there (nothing is cut). Without a ConfigActor, the section's default."""
    import ray

    try:
        config = ray.get_actor(CONFIG_ACTOR, namespace=_kv.NAMESPACE)
    except ValueError:
        section = SecurityFrameworkConfig()
    else:
        section = await config.get.remote("security")
    if not section.audit_enabled:
        return None
    return int(section.audit_retention_days)


__all__ = ["DAY_S", "configured_retention_days", "retention_cutoff"]
