"""Alert inputs that the alert actor pulls from other subsystems' event logs.

The ConfigActor keeps a sequence-numbered log of what happened to the configuration and knows
nothing of alerts; the alert actor follows that log (``events(since=seq)``), as a replica
follows a leader, so neither waits on the other and a restart of either loses nothing that
is still in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import ray

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.sources import ConfigRejectedInput, ConfigSourceInput

logger = logging.getLogger("ray_enterprise.alerts")

CONFIG_ACTOR = system_actors.CONFIG


def config_event_inputs(events: Iterable[Mapping[str, Any]]) -> list[Any]:
    """Config events as alert inputs: a rejection fires, the next applied version resolves it;
    a failing source fires, its recovery resolves it."""
    inputs: list[Any] = []
    for event in events:
        kind, message = event.get("kind"), str(event.get("message") or "")
        source = str(event.get("source") or "config")
        if kind == "rejected":
            inputs.append(ConfigRejectedInput(event.get("version"), message, source=source))
        elif kind in ("applied", "rolled_back"):
            inputs.append(ConfigRejectedInput(event.get("version"), message, applied=True))
        elif kind == "source_failed":
            inputs.append(ConfigSourceInput(source, True, message))
        elif kind == "source_recovered":
            inputs.append(ConfigSourceInput(source, False, message))
    return inputs


async def follow_config_events(alert_actor: Any, *, period_s: float = 1.0) -> None:
    """Forever: read new config events and ingest them into ``alert_actor`` (an in-process
    object with an async ``ingest``). Absent or restarting ConfigActor: try again later."""
    since: int | None = None
    while True:
        try:
            config = ray.get_actor(CONFIG_ACTOR, namespace=_kv.NAMESPACE)
            events: list[dict[str, Any]] = await config.events.remote(since or 0)
            if since is None:  # first contact: only the latest state of each thing matters
                since = max((int(e["seq"]) for e in events), default=0)
                events = _latest_per_subject(events)
            else:
                since = max([since, *(int(e["seq"]) for e in events)])
            inputs = config_event_inputs(events)
            if inputs:
                await alert_actor.ingest(inputs)
        except ValueError:  # no ConfigActor running
            since = None
        except Exception as exc:
            logger.debug("reading config events failed: %s", exc)
        await asyncio.sleep(period_s)


def _latest_per_subject(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last config-level event and the last event of each source, in order."""
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        subject = (
            f"source:{event.get('source')}"
            if str(event.get("kind", "")).startswith("source_")
            else "config"
        )
        latest[subject] = event
    return sorted(latest.values(), key=lambda e: int(e["seq"]))
