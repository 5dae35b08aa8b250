"""How subscribers reach the ConfigActor: pushed subscriptions and long polls.

Two doors to the same versions. A named actor (a service, or any actor with a method taking
``(section, value, version)``) subscribes and is pushed to through :class:`Fanout`; its
subscription is kept in the GCS key-value store so a restarted ConfigActor keeps pushing. Any
other process (a driver, a task) long-polls :meth:`wait_changes` with the versions it applied,
which is how the client's change handlers run in their own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import ray
from ray.exceptions import ActorDiedError, RayTaskError

from ray_enterprise import _kv
from ray_enterprise.config.applier import ConfigApplier
from ray_enterprise.config.fanout import Fanout, SubscriberGone, Subscription
from ray_enterprise.config.sources import describe_error
from ray_enterprise.config.stages import StageLog

logger = logging.getLogger("ray_enterprise.config")

#: Subscriptions live under this key-value prefix, one key per subscription.
SUBSCRIPTION_PREFIX = "config/sub/"
_PUSH_TIMEOUT_S = 30.0


class ConfigSubscriptions:
    """Actor methods for subscribers; mixed into the ConfigActor, which owns the state."""

    _fanout: Fanout
    _handles: dict[str, Any]
    _ready: asyncio.Event
    _new_version: asyncio.Event
    _app: ConfigApplier
    _stages: StageLog

    def _current(self, section: str) -> tuple[Any, int]:
        return self._app.section(section), self._app.section_version(section)

    async def _push(self, sub: Subscription, value: Any, version: int) -> None:
        handle = self._handles.get(sub.key)
        if handle is None:
            try:
                handle = ray.get_actor(sub.actor, namespace=sub.namespace)
            except ValueError:
                raise SubscriberGone(sub.key) from None
            self._handles[sub.key] = handle
        # asyncio.wait, not wait_for: a timed-out or cancelled push is abandoned at once
        # instead of waiting for Ray to acknowledge the cancellation of its reference.
        call = asyncio.ensure_future(
            getattr(handle, sub.method).remote(sub.section, value, version)
        )
        self._stages.pushed(version)
        try:
            done, _ = await asyncio.wait({call}, timeout=_PUSH_TIMEOUT_S)
            if not done:
                raise TimeoutError(f"no answer within {_PUSH_TIMEOUT_S:g} s")
            call.result()
        except ActorDiedError:
            self._handles.pop(sub.key, None)
            raise SubscriberGone(sub.key) from None
        except RayTaskError as exc:  # the subscriber's own handler raised: delivered all the same
            logger.warning(
                "subscriber %s failed on version %d: %s", sub.key, version, describe_error(exc)
            )
        finally:
            if not call.done():
                call.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def subscribe(
        self, section: str, actor: str, namespace: str, method: str, last_version: int = 0
    ) -> int:
        """Push ``section`` to the named actor's ``method(section, value, version)``.

        The actor says the last version it applied; whatever changed since is sent at once.
        """
        await self._ready.wait()
        self._app.section(section)  # unknown sections fail here, not at every push
        sub = Subscription(section, actor, namespace, method, last_version)
        _kv.put(SUBSCRIPTION_PREFIX + sub.key, {**sub.to_dict(), "acked": 0})
        self._fanout.add(sub)
        return self._app.version

    async def unsubscribe(self, section: str, actor: str, namespace: str, method: str) -> bool:
        key = Subscription(section, actor, namespace, method).key
        _kv.delete(SUBSCRIPTION_PREFIX + key)
        self._handles.pop(key, None)
        return self._fanout.remove(key)

    async def subscriptions(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self._fanout.subscriptions()]

    async def wait_changes(self, since: dict[str, int], timeout: float = 10.0) -> dict[str, Any]:
        """Long poll: sections changed after the versions in ``since`` (-1: from now on).

        Returns at once when something is due, else when the next version lands or at
        ``timeout``; ``baseline`` gives each asked section's current version.
        """
        await self._ready.wait()
        deadline = time.monotonic() + timeout
        while True:
            app = self._app
            changes = []
            for section, after in since.items():
                version = app.section_version(section)
                if after > app.version:
                    after = 0  # ahead of us: history was reset, start over
                if 0 <= after < version:
                    changes.append((section, app.section(section), version))
            remaining = deadline - time.monotonic()
            # A section asked "from now on" (-1) needs its baseline now, not at the timeout.
            if changes or remaining <= 0 or min(since.values(), default=0) < 0:
                changes.sort(key=lambda c: c[2])
                baseline = {s: app.section_version(s) for s in since}
                return {"version": app.version, "changes": changes, "baseline": baseline}
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_version.wait(), remaining)
