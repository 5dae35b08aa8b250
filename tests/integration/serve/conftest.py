"""Real Ray Serve on 127.0.0.1 for this package: started once, shut down at the end.

Serve costs about 2 GB, so one instance serves every module here; the management API is
deployed once against a ConfigActor of our own, whose file and database sources plant a secret
that no response may show, and API keys live in a SQLite file of the package's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray import serve

import ray_enterprise
from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import DatabaseConfigSource
from ray_enterprise.security.apikeys import ApiKeyStore, IssuedKey, Scope
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.serve.api import start_management_api, stop_management_api
from ray_enterprise.storage import make_engine
from tests.support import free_port

PLANTED = "planted-serve-secret-4b9e21"
ALLOWED_ORIGIN = "https://ops.example.com"
LIMITED_ROUTE = "/traces/{trace_id}"  # 1 request per second, burst 3, per key


@dataclass
class Api:
    url: str
    store: ApiKeyStore
    audit: AuditLog
    port: int
    db_url: str

    def key(self, *scopes: Scope | str, **options: Any) -> IssuedKey:
        return self.store.create(list(scopes), **options)


@pytest.fixture(scope="package")
def serve_port(ray_session: None) -> Iterator[int]:
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


#: Set in the API's config: keys older than this are refused, whatever their own expiry.
KEY_TTL_DAYS = 30


@pytest.fixture(scope="package")
def api(serve_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("serve-api")
    app_file = home / "app.yaml"
    app_file.write_text(
        yaml.safe_dump(
            {
                "cache": {"tiers": {"l1": {"password": PLANTED}}},
                "security": {
                    "jwt_secret": PLANTED,
                    "api_key_ttl_days": KEY_TTL_DAYS,
                    "cors_origins": [ALLOWED_ORIGIN],
                    "rate_limit": {
                        "routes": {LIMITED_ROUTE: {"requests_per_minute": 60, "burst": 3}}
                    },
                },
            }
        )
    )
    config_db = f"sqlite:///{home / 'config.db'}"
    DatabaseConfigSource(config_db).set_sync("services.billing.password", PLANTED)
    remove_config_actor()
    get_config_handle(
        create=True,
        settings=ConfigSettings(
            files=(str(app_file),),
            database_url=config_db,
            history_url=f"sqlite:///{home / 'history.db'}",
        ),
    )
    ray_enterprise.connect()  # the registry, alert and observability actors the routes read
    engine = make_engine(f"sqlite:///{Path(home) / 'keys.db'}", create=False)
    audit = AuditLog(engine)
    # A cheap hash for test keys; the cost is stored with each hash, so the API uses it too.
    store = ApiKeyStore(engine, audit=audit, iterations=1_000)
    db_url = str(engine.url)
    url = start_management_api(port=serve_port, db_url=db_url)
    yield Api(url=url, store=store, audit=audit, port=serve_port, db_url=db_url)
    stop_management_api(shutdown_serve=False)
    remove_config_actor()
    engine.dispose()
