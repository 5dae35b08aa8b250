"""The management API as a Ray Serve application, and starting and stopping it.

The FastAPI app is built in the replica (Serve's late-bound ``__serve_build_asgi_app__``), not
in the driver: CORS and rate limits come from the security section the ConfigActor holds when
the replica starts, and the key store opens the database from the replica's own process.
Changing CORS or limits therefore takes a redeploy (``serve.run`` again, or ``up --api``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from ray import serve

from ray_enterprise.security.audit import platform_audit_log
from ray_enterprise.serve.backends import SystemBackends, security_section
from ray_enterprise.serve.gate import gate_for
from ray_enterprise.serve.policy import cors_options, route_limits
from ray_enterprise.serve.routes import ROUTES, build_app
from ray_enterprise.system_actors import HEAD_RESOURCE

logger = logging.getLogger("ray_enterprise.serve")

APP_NAME = "ray_enterprise_api"
DEPLOYMENT_NAME = "ManagementAPI"
LIMITER_ROUTE_PREFIX = "api:"


# On the head, with its one proxy (HeadOnly): the head's Kubernetes Service and the address an
# operator knows reach it, whichever worker nodes come and go under autoscaling.
@serve.deployment(
    name=DEPLOYMENT_NAME,
    ray_actor_options={"num_cpus": 0, "resources": dict(HEAD_RESOURCE)},
    health_check_period_s=5,
)
@serve.ingress()
class ManagementAPI:
    """One replica is plenty: every route is a call to a system actor or the database."""

    def __init__(self, db_url: str | None = None, proof_ttl_s: float = 60.0) -> None:
        self._db_url = db_url
        self._proof_ttl_s = proof_ttl_s

    async def __serve_build_asgi_app__(self) -> FastAPI:
        from ray_enterprise.security.limiter_actor import get_limiter_handle
        from ray_enterprise.security.limiter_client import LeasingLimiter
        from ray_enterprise.storage import make_engine

        security = await security_section()
        engine = make_engine(self._db_url, create=False)
        audit = platform_audit_log(engine) if security.audit_enabled else None
        limiter = None
        if security.rate_limit.enabled:
            handle = get_limiter_handle(create=True)
            paths = {path for _, path in ROUTES}
            for path, limit in route_limits(security, paths).items():
                await handle.set_limit.remote(
                    "*", LIMITER_ROUTE_PREFIX + path, limit.rate, limit.burst
                )
            limiter = LeasingLimiter(handle)
        gate = gate_for(
            engine,
            audit,
            proof_ttl_s=self._proof_ttl_s,
            limiter=limiter,
            key_header=security.api_key_header,
            key_max_age_s=security.api_key_ttl_days * 86_400.0,
            security=security,
            key_by=security.rate_limit.key_by,
            route_prefix=LIMITER_ROUTE_PREFIX,
        )
        return build_app(gate, SystemBackends(), audit, cors=cors_options(security))


def start_management_api(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    db_url: str | None = None,
    route_prefix: str = "/",
    proof_ttl_s: float = 60.0,
) -> str:
    """Deploy the management API (starting Serve on ``host:port`` if it does not run yet) and
    return its URL. ``db_url`` is where the API keys and the audit trail are; default the
    platform's durable store as this process sees it. A Serve that already runs keeps its own
    host and port (Serve cannot change them while running)."""
    from ray_enterprise.storage import default_db_url

    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    app = ManagementAPI.bind(db_url or default_db_url(), proof_ttl_s)  # type: ignore[attr-defined]
    serve.run(app, name=APP_NAME, route_prefix=route_prefix)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}{route_prefix.rstrip('/')}"


def stop_management_api(*, shutdown_serve: bool = True) -> None:
    """Remove the management API; with ``shutdown_serve``, also stop Serve when no other
    application is left on it (Serve's proxies and controller hold ~2 GB)."""
    try:
        serve.delete(APP_NAME)
    except Exception as exc:  # Serve already gone: nothing to remove
        logger.warning("could not delete the management API: %s", type(exc).__name__)
        return
    if shutdown_serve and not serve.status().applications:
        serve.shutdown()


__all__ = [
    "APP_NAME",
    "DEPLOYMENT_NAME",
    "ManagementAPI",
    "start_management_api",
    "stop_management_api",
]
