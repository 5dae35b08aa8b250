"""The front door: turns requests into calls on search and cache, counting outcomes."""

from __future__ import annotations

import time
from typing import Any

from ray_enterprise.service import Health, Service


class ApiService(Service):
    """``handle({"op": "search", "q": ...})`` or ``{"op": "get", "key": ...}``."""

    async def start(self) -> None:
        self.requests = 0
        self.failures = 0
        self._latencies: list[float] = []

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        began = time.perf_counter()
        self.requests += 1
        try:
            op = request.get("op")
            if op == "search":
                search = await self.dependency("search")
                k = request.get("k")  # none: the search section's default_limit
                result: Any = await search.search.remote(
                    str(request["q"]), None if k is None else int(k)
                )
            elif op == "get":
                cache = await self.dependency("cache")
                result = await cache.get.remote(str(request["key"]))
            else:
                raise ValueError(f"unknown op {op!r}: expected 'search' or 'get'")
        except Exception as exc:
            self.failures += 1
            for name in ("search", "cache"):
                self.forget_dependency(name)
            return {"ok": False, "error": str(exc)[:200]}
        finally:
            self._latencies.append(time.perf_counter() - began)
            del self._latencies[:-1000]
        return {"ok": True, "result": result}

    async def stats(self) -> dict[str, Any]:
        lat = sorted(self._latencies)
        p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
        return {"requests": self.requests, "failures": self.failures, "p50_ms": round(p50, 3)}

    async def check_health(self) -> Health:
        return Health.healthy(f"{self.requests} requests")
