"""API-key auth and rate limits for a user's Serve deployment, from the security config.

Built once per replica at the first request (not in the driver, where the decorator runs): the
key store opens the database from the replica's process, and the security section is the one
the ConfigActor holds then. The deployment's bucket at the cluster-wide limiter is named
``serve:<deployment>`` and gets the section's default limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray_enterprise.security.apikeys import ApiKey, Scope
from ray_enterprise.security.audit import platform_audit_log
from ray_enterprise.serve.backends import security_section
from ray_enterprise.serve.gate import Gate, gate_for

ROUTE_PREFIX = "serve:"


class DeploymentGuard:
    """The :class:`Gate` of one deployment, made on first use; ``admit`` as the gate's."""

    def __init__(self, scope: Scope, db_url: str | None) -> None:
        self.scope = scope
        self._db_url = db_url
        self._gate: Gate | None = None
        self._lock: asyncio.Lock | None = None

    async def _build(self, deployment: str) -> Gate:
        from ray_enterprise.security.limiter_actor import get_limiter_handle
        from ray_enterprise.security.limiter_client import LeasingLimiter
        from ray_enterprise.storage import make_engine

        security = await security_section()
        engine = make_engine(self._db_url, create=False)
        audit = platform_audit_log(engine) if security.audit_enabled else None
        limiter = None
        if security.rate_limit.enabled:
            handle = await asyncio.to_thread(get_limiter_handle, create=True)
            rate = security.rate_limit
            await handle.set_limit.remote(
                "*", ROUTE_PREFIX + deployment, rate.requests_per_minute / 60.0, float(rate.burst)
            )
            limiter = LeasingLimiter(handle)
        return gate_for(
            engine,
            audit,
            limiter=limiter,
            key_header=security.api_key_header,
            key_max_age_s=security.api_key_ttl_days * 86_400.0,
            security=security,
            key_by=security.rate_limit.key_by,
            route_prefix=ROUTE_PREFIX,
        )

    async def admit(self, deployment: str, request: Any) -> ApiKey:
        """The caller's key; raises :class:`~ray_enterprise.serve.gate.Refusal` otherwise."""
        if self._gate is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._gate is None:
                    self._gate = await self._build(deployment)
        client = getattr(getattr(request, "client", None), "host", None)
        headers = getattr(request, "headers", None) or {}  # a handle call carries no key
        return await self._gate.admit(headers, deployment, self.scope, client)


__all__ = ["ROUTE_PREFIX", "DeploymentGuard"]
