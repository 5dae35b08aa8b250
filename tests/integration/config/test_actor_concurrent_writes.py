"""Concurrent conflicting writers over the management API's HTTP and the CLI, at once.

``search.default_limit`` must not exceed ``search.max_limit``: each write below is valid alone
against the running config, and many pairs are invalid together. Whatever order they land in,
every answer must be the truth (a version that runs, or a refusal), and afterwards the stored
layers validate and equal what runs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import ray
import requests
from actor_support import config_actor
from config_backends import TcpProxy, pg_url

from ray_enterprise.config.errors import ConfigSourceError
from ray_enterprise.config.merge import merge_layers, reveal
from ray_enterprise.config.schema import default_document, validate_config
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import DatabaseConfigSource


def _http_write(url: str, secret: str, key: str, value: int) -> tuple[str, int, Any]:
    answer = requests.put(
        f"{url}/config/{key}", json={"value": value}, headers={"X-API-Key": secret}, timeout=60
    )
    return ("http", answer.status_code, answer.json())


def _cli_write(address: str, key: str, value: int) -> tuple[str, int, Any]:
    command = ["config", "set", "--address", address, key, str(value)]
    done = subprocess.run(
        [sys.executable, "-m", "ray_enterprise", *command],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAY_ADDRESS": address},
    )
    return ("cli", done.returncode, done.stdout + done.stderr)


def test_twenty_conflicting_writers_leave_stored_layers_equal_to_what_runs(
    http_api: tuple[str, str], tmp_path: Path
) -> None:
    url, secret = http_api
    db_url = f"sqlite:///{tmp_path / 'config.db'}"
    settings = ConfigSettings(database_url=db_url, wait_min_s=0.0, wait_max_s=0.0)
    address = ray.get_runtime_context().gcs_address
    with config_actor(settings) as config:
        writes: list[tuple[str, int]] = []
        for i in range(10):  # defaults 10 and 100: raising default or lowering max conflicts
            writes.append(("search.default_limit", 40 + 5 * i))
            writes.append(("search.max_limit", 30 + 5 * i))
        with ThreadPoolExecutor(len(writes)) as pool:
            futures = [
                pool.submit(_cli_write, address, key, value)
                if i % 5 == 4
                else pool.submit(_http_write, url, secret, key, value)
                for i, (key, value) in enumerate(writes)
            ]
            answers = [f.result() for f in futures]

        for (key, value), (door, status, body) in zip(writes, answers, strict=True):
            if door == "http":
                assert status in (200, 422), (key, value, body)
                if status == 422:
                    assert "default_limit" in body["error"], body
            else:
                assert status in (0, 1), body
                if status == 1:
                    assert "default_limit" in body and "Traceback" not in body, body
        assert any(s in (0, 200) for _, s, _ in answers)
        assert any(s in (1, 422) for _, s, _ in answers)  # the conflicts did meet

        stored = asyncio.run(DatabaseConfigSource(db_url).load())
        document = merge_layers([("defaults", default_document()), ("database", stored)])
        expected = validate_config(document.document)  # the stored layers validate ...
        running = ray.get(config.get_config.remote())
        assert reveal(running.model_dump()) == reveal(expected.model_dump())  # ... and run
        assert running.search.default_limit <= running.search.max_limit
        history = ray.get(config.history.remote(None))
        assert history[-1]["version"] == ray.get(config.current_version.remote())


@pytest.mark.postgres
def test_a_write_history_cannot_record_is_taken_back_out_of_the_store(
    ray_session: None, pg_base_dsn: str, pg_schema: str, tcp_proxy: type[TcpProxy]
) -> None:
    from sqlalchemy.engine import make_url

    target = make_url(pg_base_dsn)
    proxy = tcp_proxy((target.host or "127.0.0.1", target.port or 5432)).start()
    db_url = pg_url(pg_base_dsn, pg_schema)
    settings = ConfigSettings(
        database_url=db_url,
        database_channel=f"cfg_{pg_schema}",
        history_url=pg_url(pg_base_dsn, pg_schema, port=proxy.port),
    )
    direct = DatabaseConfigSource(db_url)
    with config_actor(settings) as config:
        ray.get(config.set_value.remote("search.index_name", "kept"))
        version = ray.get(config.current_version.remote())
        proxy.stop()  # history unreachable; the database source itself is fine
        with pytest.raises(ConfigSourceError, match="history: unavailable: the write was taken"):
            ray.get(config.set_value.remote("search.index_name", "lost"))
        assert asyncio.run(direct.load())["search"]["index_name"] == "kept"
        assert ray.get(config.current_version.remote()) == version
        assert ray.get(config.get.remote("search")).index_name == "kept"
        proxy.start()
        assert ray.get(config.set_value.remote("search.index_name", "again")) == version + 1
