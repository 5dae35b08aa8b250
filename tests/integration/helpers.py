"""Small helpers for integration tests: specs of the controllable FaultyService, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ray_enterprise.spec import ServiceSpec

T = TypeVar("T")

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def faulty(name: str, *deps: str, **fields: Any) -> ServiceSpec:
    """A FaultyService spec with fast health checks, so tests finish quickly."""
    health = {"period_s": 0.2, "timeout_s": 2.0, "failure_threshold": 2}
    health.update(fields.pop("health", {}))
    return ServiceSpec.model_validate(
        {"name": name, "class": FAULTY, "depends_on": list(deps), "health": health, **fields}
    )


def wait_for(
    probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on the deadline."""
    deadline = time.monotonic() + timeout
    last: T = probe()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last={last!r}")
        time.sleep(interval)
        last = probe()
    return last


def states(registry: Any) -> dict[str, str]:
    return {s["name"]: s["state"] for s in registry.list_services_sync()}


def service(registry: Any, name: str) -> dict[str, Any]:
    return next(s for s in registry.list_services_sync() if s["name"] == name)
