"""Gathers every service's ``stats()`` into one JSON snapshot, optionally written to a file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from typing import Any

from ray_enterprise.service import Health, Service


class StatsExporter(Service):
    """Polls its dependencies' ``stats()`` every ``interval_s``; a failing one is reported."""

    async def start(self) -> None:
        self._interval = float(self.config.get("interval_s", 2.0))
        self._path = self.config.get("path")
        self.snapshot_data: dict[str, Any] = {}
        self.exports = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.export()
            await asyncio.sleep(self._interval)

    async def export(self) -> dict[str, Any]:
        names = list(self.config.get("sources", []))
        data: dict[str, Any] = {"time": time.time(), "services": {}}
        for name in names:
            try:
                handle = await self.dependency(name)
                data["services"][name] = await asyncio.wait_for(handle.stats.remote(), 5.0)
            except Exception as exc:
                self.forget_dependency(name)
                data["services"][name] = {"error": str(exc).splitlines()[0][:200]}
        self.snapshot_data = data
        self.exports += 1
        if self._path:
            tmp = f"{self._path}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, default=str)
            os.replace(tmp, self._path)  # readers never see a half-written file
        return data

    async def snapshot(self) -> dict[str, Any]:
        return self.snapshot_data

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def check_health(self) -> Health:
        if self._task.done():
            return Health.unhealthy("export loop ended")
        return Health.healthy(f"{self.exports} exports")
