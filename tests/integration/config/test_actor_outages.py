"""A source that goes away (Vault stopped, the database unreachable) keeps its last good
values in the running config, is reported, and is picked up again when it comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray
from actor_support import config_actor, eventually
from config_backends import BaoServer, TcpProxy, free_port, pg_url

from ray_enterprise.config.settings import ConfigSettings, VaultSettings
from ray_enterprise.config.sources import DatabaseConfigSource


def health(config: Any, layer: str) -> dict[str, Any]:
    return next(s for s in ray.get(config.sources.remote()) if s["layer"] == layer)


def index_name(config: Any) -> str:
    return str(ray.get(config.get.remote("search")).index_name)


def event_kinds(config: Any) -> list[tuple[str, str | None]]:
    return [(e["kind"], e["source"]) for e in ray.get(config.events.remote())]


def test_vault_stopped_mid_run_keeps_its_values_then_recovers(
    ray_session: None, tmp_path: Path
) -> None:
    server = BaoServer(free_port(pair=True)).start()

    def put(value: str) -> None:
        server.client().secrets.kv.v2.create_or_update_secret(
            path="ray_enterprise/search", secret={"index_name": value}, mount_point="secret"
        )

    try:
        put("before")
        settings = ConfigSettings(
            database_url=f"sqlite:///{tmp_path / 's.db'}",
            vault=VaultSettings(url=server.url, token="root", poll_interval=0.1, timeout=1.0),
        )
        with config_actor(settings) as config:
            assert index_name(config) == "before"
            version = ray.get(config.current_version.remote())
            server.stop()
            eventually(lambda: not health(config, "vault")["ok"], what="vault reported down")
            assert ("source_failed", "vault") in event_kinds(config)
            assert index_name(config) == "before"
            assert ray.get(config.current_version.remote()) == version
            server.start()  # a fresh dev server on the same port: its data is gone
            put("after")
            eventually(lambda: index_name(config) == "after", what="vault's new value")
            assert health(config, "vault")["ok"]
            assert ("source_recovered", "vault") in event_kinds(config)
    finally:
        server.stop()


@pytest.mark.postgres
def test_an_unreachable_database_keeps_its_values_then_recovers(
    ray_session: None,
    tmp_path: Path,
    pg_base_dsn: str,
    pg_schema: str,
    tcp_proxy: type[TcpProxy],
) -> None:
    from sqlalchemy.engine import make_url

    target = make_url(pg_base_dsn)
    proxy = tcp_proxy((target.host or "127.0.0.1", target.port or 5432)).start()
    channel = f"cfg_{pg_schema}"
    direct = DatabaseConfigSource(pg_url(pg_base_dsn, pg_schema), channel=channel)
    direct.set_sync("search.index_name", "before")
    settings = ConfigSettings(
        database_url=pg_url(pg_base_dsn, pg_schema, port=proxy.port),
        database_channel=channel,
        database_poll_interval=0.1,
        database_fallback_interval=0.5,
        history_url=f"sqlite:///{tmp_path / 'history.db'}",
    )
    with config_actor(settings) as config:
        assert index_name(config) == "before"
        version = ray.get(config.current_version.remote())
        proxy.stop()
        eventually(lambda: not health(config, "database")["ok"], what="database reported down")
        direct.set_sync("search.index_name", "during")
        assert index_name(config) == "before"
        assert ray.get(config.current_version.remote()) == version
        assert ("source_failed", "database") in event_kinds(config)
        proxy.start()
        eventually(lambda: index_name(config) == "during", what="the write made during the outage")
        assert health(config, "database")["ok"]
        assert ray.get(config.current_version.remote()) == version + 1
