"""A read-through cache in front of the store, shaped by the config's ``cache`` section.

With ``config_section: cache`` in its spec (as in cluster/demo.yaml) the ConfigActor pushes the
section and every setting takes effect live: the tiers (memory, a SQLite file, Redis) with their
bounds, TTLs and eviction policies, ``key_prefix``, ``default_ttl_seconds``, ``write_policy``
and ``stampede_protection`` (see :mod:`ray_enterprise.examples.tiered_cache`). Until a section
arrives (or without ``config_section``) it runs one memory tier of the spec's ``capacity``.
A new section replaces the tiers: the memory tiers start empty, disk and Redis tiers keep what
they hold under the prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError

from ray_enterprise.config.schema import CacheTierConfig, EnterpriseCacheConfig
from ray_enterprise.examples.tiered_cache import TieredCache
from ray_enterprise.service import Health, Service
from ray_enterprise.storage import home_dir

logger = logging.getLogger("ray_enterprise.examples.cache")


class CacheService(Service):
    """Tiers over the ``database`` dependency; emptied when the store restarts."""

    async def start(self) -> None:
        self._store_name = str(self.config.get("store", "database"))
        capacity = int(self.config.get("capacity", 1024))
        self._section = EnterpriseCacheConfig(
            tiers={"l1": CacheTierConfig(level=1, backend="memory", max_items=capacity)}
        )
        self._cache = self._build(self._section)
        self._loads: dict[str, asyncio.Future[Any]] = {}  # key -> the store read in flight
        self._pending: dict[str, Any] = {}  # write_back: written here, not yet in the store
        self._flusher: asyncio.Task[None] | None = None
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.store_reads = 0

    def _build(self, section: EnterpriseCacheConfig) -> TieredCache:
        disk = home_dir() / "cache" / (self.name or "cache")
        return TieredCache(section, disk_dir=disk)

    async def on_config(self, section: str, value: Any, version: int) -> None:
        if not isinstance(value, EnterpriseCacheConfig):
            value = EnterpriseCacheConfig.model_validate(value)
        await self._flush()  # write_back writes go to the store before the policy changes
        old = self._cache
        self._cache = await asyncio.to_thread(self._build, value)  # a Redis tier connects
        self._section = value
        old.close()
        logger.info("cache %s took config version %d", self.name, version)

    async def get(self, key: str) -> Any:
        if key in self._pending:
            self.hits += 1
            return self._pending[key]
        found, value = self._cache.get(key)
        if found:
            self.hits += 1
            return value
        self.misses += 1
        if not self._section.stampede_protection:
            return await self._load(key)
        # Concurrent misses of one key share one store read instead of each making one.
        waiting = self._loads.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loads[key] = future
        try:
            value = await self._load(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._loads.pop(key, None)

    async def _load(self, key: str) -> Any:
        self.store_reads += 1
        value = await self._store_call("get", key)
        # A miss is kept too (JSON null): a key the store lacks must not cost a store call
        # each time, as it did before the tiers; a put of the key replaces it.
        self._cache.put(key, value)
        return value

    async def put(self, key: str, value: Any) -> int | None:
        """Write through (the store's new version) or, with ``write_policy: write_back``,
        into the cache now and the store within a moment (``None``: no version yet)."""
        if self._section.write_policy == "write_back" and self._section.enabled:
            self._pending[key] = value
            self._cache.put(key, value)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())
            return None
        version: int = await self._store_call("put", key, value)
        self._cache.put(key, value)
        return version

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.05)  # gather a burst of writes into one flush
        await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            key, value = next(iter(self._pending.items()))
            await self._store_call("put", key, value)
            if self._pending.get(key) is value:
                del self._pending[key]

    async def flush(self) -> int:
        """Write every write-back entry to the store now; how many were waiting."""
        waiting = len(self._pending)
        await self._flush()
        return waiting

    async def invalidate(self, key: str | None = None) -> None:
        if key is None:
            self._cache.clear()
        else:
            self._cache.delete(key)

    async def _store_call(self, method: str, *args: Any) -> Any:
        store = await self.dependency(self._store_name)
        try:
            return await getattr(store, method).remote(*args)
        except (ActorDiedError, ActorUnavailableError):
            self.errors += 1
            self.forget_dependency(self._store_name)
            raise

    async def on_dependency_change(self, name: str, state: str) -> None:
        # A restarted store lost its data: cached values would be stale.
        if name == self._store_name:
            self._cache.clear()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # a store that is gone cannot take them
            await self._flush()
        self._cache.close()

    async def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "entries": sum(t.items for t in self._cache.tiers[:1]),
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 4) if total else 0.0,
            "errors": self.errors,
            "store_reads": self.store_reads,
            "write_back_pending": len(self._pending),
            "tiers": self._cache.stats(),
        }

    async def check_health(self) -> Health:
        if not self._cache.tiers:
            return Health.healthy("caching disabled by config (cache.enabled: false)")
        first = self._cache.tiers[0]
        return Health.healthy(f"{first.items}/{first.config.max_items} entries in {first.name}")
