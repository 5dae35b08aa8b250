"""How the ConfigActor takes a write: check, store and apply as one step under its lock.

Mixed into the ConfigActor, which owns the state named below. The step is one because the
parts interleaved when they were not: two writes, each valid alone and invalid together, were
both checked against the same running document, both stored, and only one applied, so the
database held a pair that refused every later change from any source.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray_enterprise.config.applier import ConfigApplier
from ray_enterprise.config.errors import ConfigError, ConfigSourceError
from ray_enterprise.config.merge import MergedConfig, deep_merge, unflatten
from ray_enterprise.config.sources import ConfigSource, DatabaseConfigSource


class ConfigWrites:
    """``set_value``: the database source's one writer."""

    _sources: list[ConfigSource]
    _values: dict[str, dict[str, Any]]
    _lock: asyncio.Lock
    _ready: asyncio.Event
    _dirty: set[str]
    _pin: tuple[int, dict[str, Any]] | None
    _app: ConfigApplier

    def _compose(
        self, override: dict[str, dict[str, Any]] | None = None, *, pinned: bool = True
    ) -> MergedConfig:
        raise NotImplementedError

    def _save_rejections(self) -> None:
        raise NotImplementedError

    async def _write_audit(self) -> None:
        raise NotImplementedError

    def _unpin(self) -> None:
        raise NotImplementedError

    def _repin(self, pin: tuple[int, dict[str, Any]] | None) -> None:
        raise NotImplementedError

    async def _apply_dirty(self, *, raise_refusal: bool = False) -> bool:
        raise NotImplementedError

    async def set_value(self, key: str, value: Any) -> int:
        """Write ``key`` to the database source and apply the result, as one step.

        Check, write and apply hold the apply lock together: two writes valid alone and invalid
        together were both admitted when the check ran outside it, and the store then held a
        pair that refused every later change. A write that the apply refuses, or that history
        cannot record, is taken back out of the store, so the stored layers and the running
        version never disagree.
        """
        await self._ready.wait()
        database = next(s for s in self._sources if isinstance(s, DatabaseConfigSource))
        trigger = f"config set {key}"
        async with self._lock:
            trial = deep_merge(self._values[database.layer], unflatten({key: value}))
            try:
                self._app.check(self._compose({database.layer: trial}, pinned=False), trigger)
            except ConfigError:
                self._save_rejections()
                await self._write_audit()
                raise
            previous = await database.get_raw(key)
            await database.set(key, value)
            pin = self._pin
            try:
                await self._reload(database)
                self._unpin()
                self._dirty.add(trigger)
                if not await self._apply_dirty(raise_refusal=True):
                    self._dirty.discard(trigger)
                    raise ConfigSourceError(
                        "history", "unavailable: the write was taken back, try again later"
                    )
            except BaseException:
                await database.put_raw(key, previous)
                await self._reload(database)
                self._repin(pin)
                raise
        return self._app.version

    async def _reload(self, database: DatabaseConfigSource) -> None:
        values = await database.load()
        if not database.health().ok:
            raise ConfigSourceError(database.name, database.health().last_error or "unreadable")
        self._values[database.layer] = values
