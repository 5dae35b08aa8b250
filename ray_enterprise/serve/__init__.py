"""Ray Serve: the management HTTP API, and instrumentation for users' own Serve deployments.

Everything here needs ``ray[serve]`` (the ``serve`` extra), so the names are imported lazily:
importing :mod:`ray_enterprise` never imports Serve.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ManagementAPI": "ray_enterprise.serve.api",
    "start_management_api": "ray_enterprise.serve.api",
    "stop_management_api": "ray_enterprise.serve.api",
    "instrument_deployment": "ray_enterprise.serve.instrument",
    "InstrumentationMiddleware": "ray_enterprise.serve.instrument",
    "build_app": "ray_enterprise.serve.routes",
    "ROUTES": "ray_enterprise.serve.routes",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ROUTES",
    "InstrumentationMiddleware",
    "ManagementAPI",
    "build_app",
    "instrument_deployment",
    "start_management_api",
    "stop_management_api",
]
