"""Where the alert actor's metric rules read their windows: the series store, however reached.

The series store belongs to the observability actor (named ``observability``); until it runs,
rules are simply not evaluated. Anything else with ``window_values`` (a plain object, an actor
handle, a coroutine method) serves too, so rules can be tried against recorded data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from ray.actor import ActorHandle

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.rules import MetricRule, SeriesKey

OBSERVABILITY_ACTOR = system_actors.OBSERVABILITY
Windows = Mapping[SeriesKey, Sequence[float]]


def observability_source() -> ActorHandle | None:
    """The observability actor when it runs and answers ``window_values``, else ``None``."""
    try:
        handle = ray.get_actor(OBSERVABILITY_ACTOR, namespace=_kv.NAMESPACE)
    except ValueError:
        return None
    return handle if hasattr(handle, "window_values") else None


async def read_windows(
    source: Any, rules: Sequence[MetricRule], now: int
) -> list[tuple[MetricRule, Windows]]:
    """Each rule's window ending at ``now``; an actor is asked for all rules at once."""

    async def one(rule: MetricRule) -> Windows:
        args = (rule.metric, rule.matchers, now - rule.window_ms, now)
        if isinstance(source, ActorHandle):
            windows: Any = await source.window_values.remote(*args)
        else:
            windows = source.window_values(*args)
            if asyncio.iscoroutine(windows):
                windows = await windows
        return dict(windows)

    found = await asyncio.gather(*(one(rule) for rule in rules))
    return list(zip(rules, found, strict=True))
