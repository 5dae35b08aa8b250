"""Small helpers for integration tests: specs of the controllable FaultyService, a
PostgreSQL schema of one's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ray_enterprise.spec import ServiceSpec
from ray_enterprise.storage import normalize_url

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def faulty(name: str, *deps: str, **fields: Any) -> ServiceSpec:
    """A FaultyService spec with fast health checks, so tests finish quickly."""
    health = {"period_s": 0.2, "timeout_s": 2.0, "failure_threshold": 2}
    health.update(fields.pop("health", {}))
    return ServiceSpec.model_validate(
        {"name": name, "class": FAULTY, "depends_on": list(deps), "health": health, **fields}
    )


def states(registry: Any) -> dict[str, str]:
    return {s["name"]: s["state"] for s in registry.list_services_sync()}


def service(registry: Any, name: str) -> dict[str, Any]:
    return next(s for s in registry.list_services_sync() if s["name"] == name)


PG_ENV = "RAY_ENTERPRISE_TEST_PG_DSN"


def _skip_or_fail(reason: str, what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, but CI is set: the PostgreSQL {what} must run")
    pytest.skip(f"{reason} (e.g. postgresql://postgres@127.0.0.1:5432/test)")


def postgres_schema_engine(prefix: str, what: str) -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL at ``$RAY_ENTERPRISE_TEST_PG_DSN`` whose tables live in a
    schema of their own (``prefix`` + random), dropped afterwards, so runs never see each
    other's rows. Without the DSN or the server: skipped, or failed when CI is set."""
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        _skip_or_fail(f"{PG_ENV} is not set", what)
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    base = sa.create_engine(normalize_url(dsn), connect_args={"connect_timeout": 3})
    try:
        with base.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        base.dispose()
        _skip_or_fail(f"PostgreSQL at {PG_ENV} is unreachable: {type(exc).__name__}", what)
        return
    try:
        yield base.execution_options(schema_translate_map={None: schema})
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()
