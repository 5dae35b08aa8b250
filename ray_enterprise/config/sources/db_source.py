"""The database layer: dotted keys with JSON values, the durable place ``config set`` writes.

Every write takes the next number of one table-wide version sequence, so "did anything change?"
is one cheap ``max(version), count(*)`` query. SQLite is polled with it; PostgreSQL also pushes
a NOTIFY on every write through this source, which a dedicated autocommit connection LISTENs
for (a LISTEN inside an open transaction would hold notifications until it ends). The poll
stays on for PostgreSQL at a slower pace to catch writes made by hand in ``psql``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Hashable
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import URL

from ray_enterprise.config.errors import ConfigSourceError
from ray_enterprise.config.merge import unflatten
from ray_enterprise.config.sources.base import Clock, ConfigSource, describe_error, log
from ray_enterprise.storage import (
    config_entries,
    create_tables,
    is_postgres,
    make_engine,
    normalize_url,
)

DEFAULT_CHANNEL = "ray_enterprise_config"
_CHANNEL = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def pg_conninfo(url: URL) -> str:
    """A libpq URL for psycopg from a SQLAlchemy URL, keeping query options (search_path)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseConfigSource(ConfigSource):
    """Config keys in a SQLAlchemy database (``url`` or an existing ``engine``)."""

    layer = "database"

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        engine: Engine | None = None,
        channel: str = DEFAULT_CHANNEL,
        poll_interval: float = 0.5,
        notify_fallback_interval: float = 5.0,
        name: str = "database",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name=name, poll_interval=poll_interval, clock=clock)
        if not _CHANNEL.match(channel):
            raise ValueError(f"channel {channel!r} must be a lower-case SQL identifier")
        self._url = normalize_url(url) if url is not None else None
        self._engine = engine
        self.channel = channel
        self.notify_fallback_interval = notify_fallback_interval
        self._listen_conn: Any = None
        self._tables_ready = False
        # Probes and writes run in worker threads; only one of them may build the engine.
        self._engine_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The engine, made and given its tables on first use, so construction never fails."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = make_engine(self._url, create=False)
            if not self._tables_ready:
                create_tables(self._engine)
                self._tables_ready = True
            return self._engine

    @property
    def uses_notify(self) -> bool:
        url = self._engine.url if self._engine is not None else self._url
        return url is not None and is_postgres(url)

    @property
    def listening(self) -> bool:
        """True while a LISTEN connection is open (PostgreSQL only)."""
        return self._listen_conn is not None and not self._listen_conn.closed

    # -- reading -----------------------------------------------------------------------------

    async def _read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._read_entries)

    def _read_entries(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(config_entries.c.key, config_entries.c.value).order_by(config_entries.c.key)
            ).all()
        return unflatten({key: json.loads(value) for key, value in rows})

    async def _probe(self) -> Hashable:
        return await asyncio.to_thread(self._version_token)

    def _version_token(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            row = conn.execute(select(func.max(config_entries.c.version), func.count())).one()
        return int(row[0] or 0), int(row[1])

    # -- writing -----------------------------------------------------------------------------

    async def set(self, key: str, value: Any) -> int:
        """Store ``value`` (JSON-serialisable) at dotted ``key``; returns the entry's version."""
        return await asyncio.to_thread(self.set_sync, key, value)

    def set_sync(self, key: str, value: Any) -> int:
        """Blocking :meth:`set`, for the CLI."""
        return self._write(key, json.dumps(value))

    async def get_raw(self, key: str) -> str | None:
        """The stored JSON text of ``key`` (``None`` when unset), for taking a write back."""
        return await asyncio.to_thread(self._read_raw, key)

    async def put_raw(self, key: str, value_json: str | None) -> None:
        """Store JSON text at ``key`` as :meth:`get_raw` gave it (``None`` deletes)."""
        await asyncio.to_thread(self._write, key, value_json)

    def _read_raw(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(config_entries.c.value).where(config_entries.c.key == key)
            ).scalar()
        return None if found is None else str(found)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        return await asyncio.to_thread(self._write, key, None) > 0

    def _write(self, key: str, value_json: str | None) -> int:
        if not key or any(not part for part in key.split(".")):
            raise ConfigSourceError(self.name, f"invalid key {key!r}: use dotted names")
        try:
            with self.engine.begin() as conn:
                latest = conn.execute(select(func.max(config_entries.c.version))).scalar()
                version = int(latest or 0) + 1
                exists = conn.execute(
                    select(config_entries.c.key).where(config_entries.c.key == key)
                ).first()
                table = config_entries
                if value_json is None:
                    if not exists:
                        return 0
                    conn.execute(table.delete().where(table.c.key == key))
                elif exists:
                    conn.execute(
                        table.update()
                        .where(table.c.key == key)
                        .values(value=value_json, version=version, updated_at=self._clock())
                    )
                else:
                    conn.execute(
                        table.insert().values(
                            key=key, value=value_json, version=version, updated_at=self._clock()
                        )
                    )
                if self.uses_notify:
                    # Delivered at commit, so listeners never read ahead of the data.
                    conn.execute(
                        text("SELECT pg_notify(:ch, :key)"), {"ch": self.channel, "key": key}
                    )
                return version
        except ConfigSourceError:
            raise
        except Exception as exc:
            raise ConfigSourceError(
                self.name, f"write of {key!r} failed: {describe_error(exc)}"
            ) from None

    # -- waiting -----------------------------------------------------------------------------

    async def _wait(self) -> None:
        if not self.uses_notify:
            await asyncio.sleep(self.poll_interval)
            return
        try:
            conn = await self._listen()
            async for _ in conn.notifies(timeout=self.notify_fallback_interval, stop_after=1):
                break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The reload that follows reports the database's health; here only reconnect later.
            log.debug("LISTEN on %s lost: %s", self.channel, describe_error(exc))
            await self._close_listener()
            await asyncio.sleep(self.poll_interval)

    async def _listen(self) -> Any:
        if self._listen_conn is None or self._listen_conn.closed:
            import psycopg  # only PostgreSQL users need it installed

            conn = await psycopg.AsyncConnection.connect(
                pg_conninfo(self.engine.url), autocommit=True, connect_timeout=3
            )
            await conn.execute(f'LISTEN "{self.channel}"')
            self._listen_conn = conn
        return self._listen_conn

    async def _close_listener(self) -> None:
        conn, self._listen_conn = self._listen_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        await self._close_listener()
        if self._engine is not None and self._url is not None:
            # Only an engine this source made is its to dispose.
            self._engine.dispose()
