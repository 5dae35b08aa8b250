from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from config_backends import TcpProxy, Watching, free_port, pg_url, values_at
from sqlalchemy import text

from ray_enterprise.config.errors import ConfigSourceError
from ray_enterprise.config.sources import DatabaseConfigSource
from ray_enterprise.storage import make_engine

PLANTED = "planted-db-secret-3f9a"


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def test_sqlite_set_load_and_versions(tmp_path: Path) -> None:
    source = DatabaseConfigSource(sqlite_url(tmp_path))

    async def run() -> None:
        assert await source.load() == {}
        v1 = await source.set("search.index_name", "docs")
        v2 = await source.set("security.cors_origins", ["https://a.example"])
        v3 = await source.set("search.index_name", "docs2")
        assert (v1, v2, v3) == (1, 2, 3)
        assert await source.load() == {
            "search": {"index_name": "docs2"},
            "security": {"cors_origins": ["https://a.example"]},
        }
        assert await source.delete("search.index_name")
        assert not await source.delete("search.index_name")
        assert await source.load() == {"security": {"cors_origins": ["https://a.example"]}}

    asyncio.run(run())
    with pytest.raises(ConfigSourceError, match="invalid key"):
        source.set_sync("a..b", 1)


def test_sqlite_writes_from_another_writer_are_polled(tmp_path: Path) -> None:
    reader = DatabaseConfigSource(sqlite_url(tmp_path), poll_interval=0.05)
    writer = DatabaseConfigSource(sqlite_url(tmp_path))

    async def run() -> float:
        await reader.load()
        async with Watching(reader) as w:
            await writer.set("cache.enabled", False)
            _, waited = await w.until(lambda u: values_at(u, "cache.enabled") is False)
            return waited

    assert asyncio.run(run()) < 0.05 + 0.2


def test_sqlite_file_broken_keeps_values_reports_and_recovers(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    source = DatabaseConfigSource(url, poll_interval=0.05)
    db = tmp_path / "state.db"
    aside = tmp_path / "aside"

    async def run() -> None:
        await source.set("search.index_name", "kept")
        good = await source.load()
        async with Watching(source) as w:
            aside.mkdir()
            for f in tmp_path.glob("state.db*"):
                shutil.move(str(f), aside / f.name)
            db.write_bytes(b"this is not a database" * 100)
            update, _ = await w.until(lambda u: not u.health.ok)
            assert update.values == good and source.values == good
            assert "not a database" in (update.health.last_error or "")
            db.unlink()
            for f in aside.iterdir():
                shutil.move(str(f), tmp_path / f.name)
            await w.until(lambda u: u.health.ok)
            assert source.values == good

    asyncio.run(run())


def test_an_unreachable_database_never_raises_from_load() -> None:
    source = DatabaseConfigSource(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    assert asyncio.run(source.load()) == {}
    health = source.health()
    assert not health.ok and "refused" in (health.last_error or "").lower()


def test_a_failed_write_names_the_key_but_not_the_value(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"garbage" * 200)
    source = DatabaseConfigSource(sqlite_url(tmp_path))
    with pytest.raises(ConfigSourceError) as info:
        source.set_sync("security.jwt_secret", PLANTED)
    assert "security.jwt_secret" in str(info.value)
    assert PLANTED not in str(info.value)


@pytest.mark.postgres
def test_postgres_notify_delivers_a_write_quickly(pg_base_dsn: str, pg_schema: str) -> None:
    url = pg_url(pg_base_dsn, pg_schema)
    channel = f"cfg_{pg_schema}"
    # A long poll interval proves the change arrived through NOTIFY, not polling.
    reader = DatabaseConfigSource(
        url, channel=channel, poll_interval=10.0, notify_fallback_interval=10.0
    )
    writer = DatabaseConfigSource(url, channel=channel)

    async def run() -> float:
        await reader.load()
        async with Watching(reader) as w:
            await _listening(reader)
            await writer.set("observability.cardinality_limit", 123)
            _, waited = await w.until(
                lambda u: values_at(u, "observability.cardinality_limit") == 123, timeout=2.0
            )
        await writer.close()
        return waited

    assert asyncio.run(run()) < 0.3
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("select count(*) from config_entries")).scalar() == 1
    engine.dispose()


async def _listening(source: DatabaseConfigSource, timeout: float = 3.0) -> None:
    """Wait until the watcher's LISTEN connection is up (no sleep-to-synchronise)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not source.listening:
        assert loop.time() < deadline, "LISTEN connection never came up"
        await asyncio.sleep(0.01)


@pytest.mark.postgres
def test_postgres_outage_keeps_values_then_recovers(
    pg_base_dsn: str, pg_schema: str, tcp_proxy: type[TcpProxy]
) -> None:
    from sqlalchemy.engine import make_url

    target = make_url(pg_base_dsn)
    proxy = tcp_proxy((target.host or "127.0.0.1", target.port or 5432)).start()
    url = pg_url(pg_base_dsn, pg_schema, port=proxy.port)
    channel = f"cfg_{pg_schema}"
    source = DatabaseConfigSource(
        url, channel=channel, poll_interval=0.1, notify_fallback_interval=0.5
    )
    direct = DatabaseConfigSource(pg_url(pg_base_dsn, pg_schema), channel=channel)

    async def run() -> None:
        await direct.set("search.index_name", "before")
        good = await source.load()
        assert values_at_dict(good, "search.index_name") == "before"
        async with Watching(source) as w:
            await _listening(source)
            proxy.stop()
            update, _ = await w.until(lambda u: not u.health.ok, timeout=5.0)
            assert update.values == good
            await direct.set("search.index_name", "during")
            proxy.start()
            await w.until(
                lambda u: u.health.ok and values_at(u, "search.index_name") == "during",
                timeout=5.0,
            )
        await direct.close()

    asyncio.run(run())


def values_at_dict(values: dict, path: str) -> object:
    node: object = values
    for part in path.split("."):
        assert isinstance(node, dict)
        node = node.get(part)
    return node
