"""A read-through LRU cache in front of the store, with hit and miss counters."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError

from ray_enterprise.service import Health, Service


class CacheService(Service):
    """LRU over the ``database`` dependency; entries expire when the store's version moves."""

    async def start(self) -> None:
        self._capacity = int(self.config.get("capacity", 1024))
        self._store_name = str(self.config.get("store", "database"))
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    async def get(self, key: str) -> Any:
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hits += 1
            return self._entries[key]
        self.misses += 1
        value = await self._store_call("get", key)
        self._remember(key, value)
        return value

    async def put(self, key: str, value: Any) -> int:
        version: int = await self._store_call("put", key, value)
        self._remember(key, value)
        return version

    async def invalidate(self, key: str | None = None) -> None:
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    def _remember(self, key: str, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

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
            self._entries.clear()

    async def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {
            "entries": len(self._entries),
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 4) if total else 0.0,
            "errors": self.errors,
        }

    async def check_health(self) -> Health:
        return Health.healthy(f"{len(self._entries)}/{self._capacity} entries")
