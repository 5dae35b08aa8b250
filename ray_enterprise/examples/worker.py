"""A background worker: writes new documents to the store and has search index them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ray_enterprise.service import Health, Service


class IndexWorker(Service):
    """Every ``interval_s`` it adds one generated document and asks search to refresh."""

    async def start(self) -> None:
        self.processed = 0
        self.failed = 0
        self._interval = float(self.config.get("interval_s", 2.0))
        self._limit = int(self.config.get("max_documents", 100))
        # The search section's index_name: the worker writes where search indexes.
        self._index = str(self.config.get("index", "doc"))
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self.processed < self._limit:
            await asyncio.sleep(self._interval)
            try:
                await self.process_one()
            except Exception:
                self.failed += 1
                self.forget_dependency("database")
                self.forget_dependency("search")

    async def process_one(self) -> int:
        n = self.processed
        store = await self.dependency("database")
        doc = {
            "id": f"w{n:05d}",
            "title": f"Worker note {n}",
            "body": f"Background worker note number {n} about supervision and restarts.",
        }
        await store.put.remote(f"{self._index}:{doc['id']}", doc)
        search = await self.dependency("search")
        await search.refresh.remote()
        self.processed += 1
        return self.processed

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def stats(self) -> dict[str, Any]:
        return {"processed": self.processed, "failed": self.failed}

    async def check_health(self) -> Health:
        if self._task.done() and self.processed < self._limit:
            return Health.unhealthy("worker loop ended early")
        return Health.healthy(f"{self.processed} processed")
