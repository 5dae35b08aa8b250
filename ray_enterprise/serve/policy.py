"""The security config section as HTTP policy: CORS options and the rate limit of each route.

Pure functions over :class:`~ray_enterprise.config.schema.SecurityFrameworkConfig`, so what a
config means for the API is decided (and tested) without a server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ray_enterprise.config.schema import SecurityFrameworkConfig
from ray_enterprise.security.ratelimit import RateLimit


def cors_options(security: SecurityFrameworkConfig) -> dict[str, Any]:
    """Keyword arguments of Starlette's ``CORSMiddleware``.

    ``Retry-After`` is exposed so that a browser client can honour a 429.
    """
    return {
        "allow_origins": list(security.cors_origins),
        "allow_methods": list(security.cors_allow_methods),
        "allow_headers": list(security.cors_allow_headers),
        "allow_credentials": security.cors_allow_credentials,
        "max_age": security.cors_max_age_seconds,
        "expose_headers": ["Retry-After"],
    }


def route_limits(security: SecurityFrameworkConfig, routes: Iterable[str]) -> dict[str, RateLimit]:
    """Each route's limit per caller: its own entry under ``rate_limit.routes``, else the
    section's default. An entry for a route the API does not have is an error, since a typo
    there would silently leave the intended route at the default."""
    config = security.rate_limit
    paths = set(routes)
    unknown = sorted(set(config.routes) - paths)
    if unknown:
        raise ValueError(
            f"security.rate_limit.routes names unknown routes {unknown}; "
            f"routes are: {sorted(paths)}"
        )
    default = RateLimit(config.requests_per_minute / 60.0, float(config.burst))
    limits = {}
    for path in sorted(paths):
        entry = config.routes.get(path)
        limits[path] = (
            RateLimit(entry.requests_per_minute / 60.0, float(entry.burst)) if entry else default
        )
    return limits


__all__ = ["cors_options", "route_limits"]
