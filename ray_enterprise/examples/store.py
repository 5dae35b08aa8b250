"""An in-memory versioned key-value store: the demo's database."""

from __future__ import annotations

import time
from typing import Any

from ray_enterprise.service import Health, Service


class KeyValueStore(Service):
    """Keys map to (value, version); every write bumps a global version, like a tiny MVCC."""

    async def start(self) -> None:
        self._data: dict[str, tuple[Any, int]] = {}
        self._version = 0
        self._ops = {"get": 0, "put": 0, "delete": 0, "scan": 0}
        self._started = time.time()
        limit = self.config.get("max_keys", 100_000)
        self._max_keys = int(limit)

    async def put(self, key: str, value: Any) -> int:
        if key not in self._data and len(self._data) >= self._max_keys:
            raise ValueError(
                f"store is full ({self._max_keys} keys); delete keys or raise max_keys"
            )
        self._ops["put"] += 1
        self._version += 1
        self._data[key] = (value, self._version)
        return self._version

    async def get(self, key: str) -> Any:
        self._ops["get"] += 1
        entry = self._data.get(key)
        return None if entry is None else entry[0]

    async def delete(self, key: str) -> bool:
        self._ops["delete"] += 1
        return self._data.pop(key, None) is not None

    async def scan(self, prefix: str = "", since_version: int = 0) -> list[tuple[str, Any, int]]:
        """Entries under ``prefix`` written after ``since_version``, oldest first."""
        self._ops["scan"] += 1
        rows = [
            (k, v, ver)
            for k, (v, ver) in self._data.items()
            if k.startswith(prefix) and ver > since_version
        ]
        return sorted(rows, key=lambda row: row[2])

    async def stats(self) -> dict[str, Any]:
        return {"keys": len(self._data), "version": self._version, "ops": dict(self._ops)}

    async def check_health(self) -> Health:
        if len(self._data) >= self._max_keys:
            return Health.unhealthy(f"full: {len(self._data)} keys")
        return Health.healthy(f"{len(self._data)} keys")
