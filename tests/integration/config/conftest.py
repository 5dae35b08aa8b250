"""Fixtures for the config integration tests: a bao dev server, a PostgreSQL schema, proxies,
a Kubernetes API server's TokenReview endpoint."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from config_backends import (
    PG_DSN_ENV,
    BaoServer,
    KubernetesApi,
    TcpProxy,
    Watching,
    free_port,
)

from ray_enterprise.security.apikeys import ApiKeyStore, Scope
from ray_enterprise.serve.backends import SystemBackends
from ray_enterprise.serve.gate import CachedVerifier, Gate
from ray_enterprise.serve.routes import build_app
from ray_enterprise.storage import make_engine
from tests.support import wait_for


@pytest.fixture
def bao() -> Iterator[BaoServer]:
    server = BaoServer(free_port(pair=True)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubernetes_api() -> Iterator[KubernetesApi]:
    api = KubernetesApi().start()
    try:
        yield api
    finally:
        api.stop()


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


@pytest.fixture
def http_api(ray_session: None, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The management API's routes on a real uvicorn at 127.0.0.1 (no Serve: 2 GB less)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'keys.db'}", create=False)
    store = ApiKeyStore(engine, iterations=1_000)
    issued = store.create([Scope.CONFIG_WRITE, Scope.CONFIG_READ, Scope.STATUS_READ])
    app = build_app(Gate(CachedVerifier(store), audit=None), SystemBackends(), None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}", issued.secret
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.dispose()
