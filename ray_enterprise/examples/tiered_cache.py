"""The cache section's tiers: memory, a SQLite file or Redis, each bounded and evicting by its
own policy. Pure apart from the backends' own I/O, so every setting is tested on a fake clock.

Why one index per tier in this process rather than each backend's own bookkeeping: the bounds
(``max_items``, ``max_size_mb``) and the four eviction policies then mean the same on every
backend, and a SQLite file or a Redis database shared with others is never trimmed of keys this
cache did not write (only keys under ``key_prefix`` are ever touched). A restarted cache rebuilds
its index from what the backend still holds under its prefix.

Values are stored as JSON, never pickled: a disk file or a Redis database is not a place to
load code from (and a copy from JSON is one no caller can change in place). A value JSON
cannot hold is not cached.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ray_enterprise.config.schema import CacheTierConfig, EnterpriseCacheConfig

MiB = 1024 * 1024


class Backend(Protocol):
    """Where one tier keeps its entries: ``(json text, expires_at)`` by full key."""

    def load(self, key: str) -> tuple[str, float] | None: ...
    def store(self, key: str, text: str, expires_at: float) -> None: ...
    def remove(self, key: str) -> None: ...
    def scan(self) -> Iterator[tuple[str, int, float]]: ...  # (key, size, expires_at)
    def close(self) -> None: ...


class MemoryBackend:
    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}

    def load(self, key: str) -> tuple[str, float] | None:
        return self._data.get(key)

    def store(self, key: str, text: str, expires_at: float) -> None:
        self._data[key] = (text, expires_at)

    def remove(self, key: str) -> None:
        self._data.pop(key, None)

    def scan(self) -> Iterator[tuple[str, int, float]]:
        return iter(())  # a new process starts with an empty memory tier

    def close(self) -> None:
        self._data.clear()


class SqliteBackend:
    """One table in a SQLite file; rows of other prefixes in the same file are left alone."""

    def __init__(self, path: Path, prefix: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._prefix = prefix
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cache_entries "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL)"
        )

    def load(self, key: str) -> tuple[str, float] | None:
        row = self._db.execute(
            "SELECT value, expires_at FROM cache_entries WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def store(self, key: str, text: str, expires_at: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO cache_entries (key, value, expires_at) VALUES (?, ?, ?)",
            (key, text, expires_at),
        )

    def remove(self, key: str) -> None:
        self._db.execute("DELETE FROM cache_entries WHERE key = ?", (key,))

    def scan(self) -> Iterator[tuple[str, int, float]]:
        rows = self._db.execute(
            "SELECT key, length(value), expires_at FROM cache_entries WHERE key LIKE ? ESCAPE '\\'",
            (_like_prefix(self._prefix),),
        ).fetchall()
        return ((str(k), int(n), float(e)) for k, n, e in rows)

    def close(self) -> None:
        self._db.close()


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class RedisBackend:
    """Keys in a Redis database; Redis expires them too (``PX``), so none outlives its TTL."""

    def __init__(self, url: str, password: str | None, prefix: str, clock: Callable[[], float]):
        import redis  # only a redis tier needs the client

        self._prefix = prefix
        self._clock = clock
        self._client = redis.Redis.from_url(url, password=password, socket_timeout=5.0)
        self._client.ping()  # a wrong URL or password is found at configuration, not first use

    def load(self, key: str) -> tuple[str, float] | None:
        raw = self._client.get(key)
        if raw is None:
            return None
        record = json.loads(raw)
        return str(record["v"]), float(record["e"])

    def store(self, key: str, text: str, expires_at: float) -> None:
        ttl_ms = max(1, int((expires_at - self._clock()) * 1000))
        self._client.set(key, json.dumps({"v": text, "e": expires_at}), px=ttl_ms)

    def remove(self, key: str) -> None:
        self._client.delete(key)

    def scan(self) -> Iterator[tuple[str, int, float]]:
        for raw_key in self._client.scan_iter(match=_glob_escape(self._prefix) + "*", count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            found = self.load(key)
            if found is not None:
                yield key, len(found[0]), found[1]

    def close(self) -> None:
        self._client.close()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass
class _Meta:
    size: int
    expires_at: float
    inserted: float
    used: float
    hits: int = 0


class Tier:
    """One tier: a backend and the index that bounds it (items, bytes) and picks victims."""

    def __init__(
        self, name: str, config: CacheTierConfig, backend: Backend, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self.config = config
        self.backend = backend
        self._clock = clock
        self._index: dict[str, _Meta] = {}
        self._bytes = 0
        self.evictions = 0
        now = clock()
        for key, size, expires_at in backend.scan():
            if expires_at > now:
                self._remember(key, _Meta(size, expires_at, now, now))
        self._trim()

    @property
    def items(self) -> int:
        return len(self._index)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> tuple[bool, Any]:
        now = self._clock()
        found = self.backend.load(key)
        if found is None or found[1] <= now:
            self.delete(key)
            return False, None
        text, expires_at = found
        meta = self._index.get(key)
        if meta is None:  # written by an earlier process of this cache: adopt it
            meta = _Meta(len(text), expires_at, now, now)
            self._remember(key, meta)
        meta.used, meta.hits = now, meta.hits + 1
        return True, json.loads(text)

    def put(self, key: str, text: str, ttl_s: float) -> None:
        now = self._clock()
        expires_at = now + min(ttl_s, self.config.ttl_seconds)
        if len(text) > self.config.max_size_mb * MiB:
            self.delete(key)  # larger than the whole tier: never kept here
            return
        self.backend.store(key, text, expires_at)
        self._forget(key)
        self._remember(key, _Meta(len(text), expires_at, now, now))
        self._trim(keep=key)

    def delete(self, key: str) -> None:
        self._forget(key)
        self.backend.remove(key)  # also a key an earlier process wrote and this one never saw

    def clear(self) -> None:
        for key in list(self._index):
            self.delete(key)

    def _remember(self, key: str, meta: _Meta) -> None:
        self._index[key] = meta
        self._bytes += meta.size

    def _forget(self, key: str) -> bool:
        meta = self._index.pop(key, None)
        if meta is not None:
            self._bytes -= meta.size
        return meta is not None

    def _trim(self, keep: str | None = None) -> None:
        now = self._clock()
        for key in [k for k, m in self._index.items() if m.expires_at <= now]:
            self.delete(key)
        limit_bytes = self.config.max_size_mb * MiB
        while len(self._index) > self.config.max_items or self._bytes > limit_bytes:
            victim = self._victim(keep)
            if victim is None:
                return
            self.delete(victim)
            self.evictions += 1

    def _victim(self, keep: str | None) -> str | None:
        candidates = ((k, m) for k, m in self._index.items() if k != keep)
        policy = self.config.eviction
        order: Callable[[tuple[str, _Meta]], tuple[float, float]]
        if policy == "lru":
            order = lambda item: (item[1].used, item[1].inserted)  # noqa: E731
        elif policy == "lfu":
            order = lambda item: (item[1].hits, item[1].used)  # noqa: E731
        elif policy == "fifo":
            order = lambda item: (item[1].inserted, 0.0)  # noqa: E731
        else:  # ttl: the one closest to expiring goes first
            order = lambda item: (item[1].expires_at, item[1].inserted)  # noqa: E731
        best = min(candidates, key=order, default=None)
        return None if best is None else best[0]


class TieredCache:
    """The whole ``cache`` section: tiers by ``level``, looked up in order, a hit in a lower
    tier copied up into the faster ones; ``enabled: false`` keeps nothing."""

    def __init__(
        self,
        config: EnterpriseCacheConfig,
        *,
        disk_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self.tiers: list[Tier] = []
        if not config.enabled:
            return
        prefix = config.key_prefix + ":"
        try:
            for name, tier in sorted(config.tiers.items(), key=lambda kv: kv[1].level):
                backend = self._backend(name, tier, prefix, disk_dir)
                self.tiers.append(Tier(name, tier, backend, clock))
        except Exception:
            self.close()
            raise

    def _backend(self, name: str, tier: CacheTierConfig, prefix: str, disk_dir: Path) -> Backend:
        if tier.backend == "memory":
            return MemoryBackend()
        if tier.backend == "disk":
            return SqliteBackend(disk_dir / f"{name}.sqlite", prefix)
        password = tier.password.get_secret_value() if tier.password is not None else None
        assert tier.url is not None  # the schema refuses a redis tier without one
        return RedisBackend(tier.url, password, prefix, self._clock)

    def key(self, key: str) -> str:
        return f"{self.config.key_prefix}:{key}"

    def get(self, key: str) -> tuple[bool, Any]:
        full = self.key(key)
        for depth, tier in enumerate(self.tiers):
            found, value = tier.get(full)
            if found:
                text = json.dumps(value)
                for upper in self.tiers[:depth]:
                    upper.put(full, text, self.config.default_ttl_seconds)
                return True, value
        return False, None

    def put(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        """Keep ``value`` in every tier for ``ttl_s`` (default ``default_ttl_seconds``), each
        tier's own ``ttl_seconds`` being the most it keeps anything."""
        if not self.tiers:
            return
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            return  # not JSON: cached nowhere rather than pickled into a file
        ttl = self.config.default_ttl_seconds if ttl_s is None else ttl_s
        for tier in self.tiers:
            tier.put(self.key(key), text, ttl)

    def delete(self, key: str) -> None:
        for tier in self.tiers:
            tier.delete(self.key(key))

    def clear(self) -> None:
        for tier in self.tiers:
            tier.clear()

    def close(self) -> None:
        for tier in self.tiers:
            tier.backend.close()
        self.tiers = []

    def stats(self) -> dict[str, Any]:
        return {
            t.name: {
                "backend": t.config.backend,
                "items": t.items,
                "bytes": t.bytes,
                "evictions": t.evictions,
            }
            for t in self.tiers
        }
