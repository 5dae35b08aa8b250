"""ConfigOrchestrator: the client-side face of the ConfigActor, usable from any process.

Reads are coroutines with ``*_sync`` twins, like the registry client. Change handlers run in
the process that registered them (a driver, a task, an actor): a watch loop long-polls the
ConfigActor with the last version each handler applied, so a handler whose process was away
gets what it missed when it asks again (etcd's watch-from-revision), and a ConfigActor restart
is only a retried call. No extra actor is needed for a driver to receive changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError

from ray_enterprise.backoff import Backoff
from ray_enterprise.config.actor import get_config_handle
from ray_enterprise.config.schema import EnterpriseConfig
from ray_enterprise.config.settings import ConfigSettings

log = logging.getLogger("ray_enterprise.config")

#: ``callback(section, value, version)``, a function or a coroutine function.
ChangeHandler = Callable[[str, Any, int], Any]


@dataclass
class _Handler:
    section: str
    callback: ChangeHandler
    applied: int  # -1: not known yet, i.e. "from now on"


def _check_section(section: str) -> None:
    if section.startswith("services.") and len(section) > len("services."):
        return
    if section not in EnterpriseConfig.model_fields:
        known = ", ".join([*EnterpriseConfig.model_fields, "services.<name>"])
        raise KeyError(f"no config section {section!r}; sections: {known}")


class ConfigOrchestrator:
    """Read, change and watch the cluster's configuration through its ConfigActor."""

    def __init__(
        self,
        handle: Any | None = None,
        *,
        settings: ConfigSettings | None = None,
        poll_timeout_s: float = 10.0,
    ) -> None:
        self._handle = handle
        self._settings = settings
        self._poll_timeout_s = poll_timeout_s
        self._handlers: list[_Handler] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def actor(self) -> Any:
        """The ConfigActor handle, booted from the settings when none runs yet."""
        if self._handle is None:
            from ray_enterprise.runtime import init_ray

            init_ray()
            self._handle = get_config_handle(create=True, settings=self._settings)
        return self._handle

    # -- reads and writes ------------------------------------------------------------------

    async def load(self) -> EnterpriseConfig:
        """The running, validated configuration."""
        config: EnterpriseConfig = await self.actor.get_config.remote()
        return config

    async def get(self, section: str) -> Any:
        return await self.actor.get.remote(section)

    async def current_version(self) -> int:
        version: int = await self.actor.current_version.remote()
        return version

    async def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = await self.actor.history.remote(limit)
        return records

    async def set(self, key: str, value: Any) -> int:
        """Write ``key`` to the database source; returns the version it became (or raises)."""
        version: int = await self.actor.set_value.remote(key, value)
        return version

    async def rollback(self, version: int) -> int:
        new_version: int = await self.actor.rollback.remote(version)
        return new_version

    async def rejections(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.actor.rejections.remote()
        return result

    async def sources(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.actor.sources.remote()
        return result

    def load_sync(self) -> EnterpriseConfig:
        config: EnterpriseConfig = ray.get(self.actor.get_config.remote())
        return config

    def get_sync(self, section: str) -> Any:
        return ray.get(self.actor.get.remote(section))

    def current_version_sync(self) -> int:
        version: int = ray.get(self.actor.current_version.remote())
        return version

    def history_sync(self, limit: int | None = None) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = ray.get(self.actor.history.remote(limit))
        return records

    def set_sync(self, key: str, value: Any) -> int:
        version: int = ray.get(self.actor.set_value.remote(key, value))
        return version

    def rollback_sync(self, version: int) -> int:
        new_version: int = ray.get(self.actor.rollback.remote(version))
        return new_version

    def rejections_sync(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self.actor.rejections.remote())
        return result

    def sources_sync(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = ray.get(self.actor.sources.remote())
        return result

    # -- change handlers ---------------------------------------------------------------------

    def add_change_handler(
        self, section: str, callback: ChangeHandler, *, last_version: int | None = None
    ) -> None:
        """Call ``callback(section, value, version)`` when ``section`` changes.

        ``last_version=None``: changes from now on; ``0``: the current value at once, then
        changes; ``N``: whatever changed after version N, then changes. Handlers run while
        :meth:`start_watching` (or its sync twin) runs, in version order, one at a time.
        """
        _check_section(section)
        applied = -1 if last_version is None else last_version
        self._handlers.append(_Handler(section, callback, applied))
        self._poke()

    def remove_change_handler(self, section: str, callback: ChangeHandler) -> None:
        self._handlers = [
            h for h in self._handlers if not (h.section == section and h.callback == callback)
        ]

    def applied_version(self, section: str) -> int:
        """The lowest version the handlers of ``section`` have applied (-1: not known yet)."""
        return min((h.applied for h in self._handlers if h.section == section), default=-1)

    async def start_watching(self) -> None:
        """Run the handlers from this event loop until :meth:`stop_watching`."""
        if self._task is not None and not self._task.done():
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._watch_loop())

    async def stop_watching(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def start_watching_sync(self) -> None:
        """Run the handlers on a daemon thread of this process (scripts, tasks)."""
        if self._thread is not None and self._thread.is_alive():
            return
        started = threading.Event()

        async def main() -> None:
            await self.start_watching()
            started.set()
            assert self._task is not None
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        started.wait(10.0)

    def stop_watching_sync(self) -> None:
        loop, task, thread = self._loop, self._task, self._thread
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        if thread is not None:
            thread.join(10.0)
        self._thread = None
        self._task = None

    def _poke(self) -> None:
        """Re-issue the pending long poll, so a new handler's section is part of it."""
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _watch_loop(self) -> None:
        assert self._wake is not None
        backoff = Backoff(0.2, 5.0)
        while True:
            # A section with a handler still waiting for its baseline asks with -1 first.
            since: dict[str, int] = {}
            for h in self._handlers:
                since[h.section] = min(since.get(h.section, h.applied), h.applied)
            self._wake.clear()
            if not since:
                await self._wake.wait()
                continue
            poll = asyncio.ensure_future(
                self.actor.wait_changes.remote(since, self._poll_timeout_s)
            )
            wake = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait({poll, wake}, return_when=asyncio.FIRST_COMPLETED)
            wake.cancel()
            if poll not in done:
                poll.add_done_callback(lambda f: f.cancelled() or f.exception())
                continue
            try:
                result = poll.result()
            except RayActorError as exc:  # removed, not restarted: wait for a new one
                log.warning("config watch lost its actor (%s); looking again", type(exc).__name__)
                await asyncio.sleep(backoff.next())
                with contextlib.suppress(ValueError):  # never boots one itself from here
                    self._handle = get_config_handle(create=False)
                continue
            except Exception as exc:  # a Ray hiccup: the same question is asked again
                log.warning("config watch poll failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            await self._dispatch(result)

    async def _dispatch(self, result: dict[str, Any]) -> None:
        for h in self._handlers:
            if h.applied < 0 and h.section in result["baseline"]:
                h.applied = result["baseline"][h.section]
        for section, value, version in result["changes"]:
            for h in list(self._handlers):
                if h.section != section or not 0 <= h.applied < version:
                    continue
                try:
                    outcome = h.callback(section, value, version)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    log.exception("config change handler for %s failed", section)
                h.applied = version


_default: ConfigOrchestrator | None = None


def get_config_orchestrator() -> ConfigOrchestrator:
    """This process's orchestrator (one per process, created on first use)."""
    global _default
    if _default is None:
        _default = ConfigOrchestrator()
    return _default


async def load_enterprise_configuration() -> EnterpriseConfig:
    """The running, validated :class:`EnterpriseConfig` (booting the ConfigActor if needed)."""
    return await get_config_orchestrator().load()


async def start_configuration_watching() -> ConfigOrchestrator:
    """Start running this process's change handlers; returns the orchestrator."""
    orchestrator = get_config_orchestrator()
    await orchestrator.start_watching()
    return orchestrator
