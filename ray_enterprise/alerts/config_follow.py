"""The alert actor's subscription to the ConfigActor's ``observability`` section.

The ConfigActor pushes to named subscribers (the same door a service's ``on_config`` uses), so
the alert policy follows the config without anyone calling the alert actor. The subscription
is renewed now and then with the last version applied: a ConfigActor that was removed and
booted again (``down``/``up``, tests) learns of this subscriber anew and sends what it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import ray

from ray_enterprise.backoff import Backoff

logger = logging.getLogger("ray_enterprise.alerts")

ALERTING_SECTION = "observability"
RENEW_S = 5.0


async def follow_config_section(
    actor_name: str, method: str, applied: Callable[[], int], *, renew_s: float = RENEW_S
) -> None:
    """Forever: subscribe ``actor_name.method`` to the observability section, saying the last
    version ``applied()``; without a ConfigActor, look again with a growing backoff."""
    from ray_enterprise.config.actor import get_config_handle

    namespace = ray.get_runtime_context().namespace
    backoff = Backoff(0.5, renew_s)
    while True:
        try:
            handle = get_config_handle(create=False)
            await handle.subscribe.remote(
                ALERTING_SECTION, actor_name, namespace, method, applied()
            )
        except ValueError:  # no ConfigActor (yet)
            await asyncio.sleep(backoff.next())
            continue
        except Exception as exc:  # restarting: the same question is asked again
            logger.debug("alert config subscription failed: %s", exc)
            await asyncio.sleep(1.0)
            continue
        backoff.reset()
        await asyncio.sleep(renew_s)
