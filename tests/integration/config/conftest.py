"""Fixtures for the config integration tests: a bao dev server, a PostgreSQL schema, proxies."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from config_backends import PG_DSN_ENV, BaoServer, TcpProxy, Watching, free_port


@pytest.fixture
def bao() -> Iterator[BaoServer]:
    server = BaoServer(free_port(pair=True)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_base_dsn() -> str:
    """The PostgreSQL DSN: required in CI, otherwise skipped (visibly) when not given."""
    dsn = os.environ.get(PG_DSN_ENV)
    if not dsn:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_DSN_ENV} must be set in CI")
        pytest.skip(f"{PG_DSN_ENV} not set: PostgreSQL tests skipped")
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_DSN_ENV} is unreachable: {exc}")
    return dsn


@pytest.fixture
def pg_schema(pg_base_dsn: str) -> Iterator[str]:
    """A fresh schema per test, so parallel runs never share tables."""
    import psycopg

    schema = f"re_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_base_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(pg_base_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def watching() -> type[Watching]:
    return Watching


@pytest.fixture
def tcp_proxy() -> Iterator[type[TcpProxy]]:
    proxies: list[TcpProxy] = []

    class Tracked(TcpProxy):
        def start(self) -> TcpProxy:
            proxies.append(self)
            return super().start()

    yield Tracked
    for p in proxies:
        p.stop()
