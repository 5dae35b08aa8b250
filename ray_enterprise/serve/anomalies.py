"""Anomaly events and detectors as the status page shows them, read from the shard actors.

The shards (``anomaly:<i>``) are optional: a cluster may run none, or some may be restarting.
Each is asked on its own with a deadline, so a missing or slow shard costs its events only,
never the page.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ray

from ray_enterprise import _kv, system_actors

SHARD_PREFIX = system_actors.ANOMALY_SHARD_PREFIX
_ASK_TIMEOUT_S = 2.0


def shard_handles(namespace: str = _kv.NAMESPACE) -> list[Any]:
    """Handles of the shards that run now (none is a valid answer)."""
    handles = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace and entry["name"].startswith(SHARD_PREFIX):
            with contextlib.suppress(ValueError):
                handles.append(ray.get_actor(entry["name"], namespace=namespace))
    return handles


async def _ask(handle: Any, since: float | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    stats, events = await asyncio.wait_for(
        asyncio.gather(handle.stats.remote(), handle.events.remote(None, since)),
        timeout=_ASK_TIMEOUT_S,
    )
    return stats, events


async def anomaly_view(since: float | None = None) -> dict[str, Any]:
    """``{"shards": n, "detectors": [...], "events": [...]}``, events oldest first."""
    handles = await asyncio.to_thread(shard_handles)
    answers = await asyncio.gather(*(_ask(h, since) for h in handles), return_exceptions=True)
    detectors: set[str] = set()
    events: list[dict[str, Any]] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            continue  # restarting or gone: its events come back with it
        stats, found = answer
        detectors.add(str(stats.get("detector", "")))
        events.extend(found)
    events.sort(key=lambda e: e["timestamp"])
    return {
        "shards": len(handles),
        "detectors": sorted(d for d in detectors if d),
        "events": events,
    }


__all__ = ["SHARD_PREFIX", "anomaly_view", "shard_handles"]
