"""What every configuration source shares: one vocabulary, health, and last good values.

A source ``load()``s its values now and ``watch()``es for changes as an async iterator of
:class:`SourceUpdate`; both always succeed. A failing read is recorded in :meth:`health` and the
last good values stay in use, because one unreachable Vault must not take the whole config (or
the actor's loop) down with it. Blocking client libraries run in a worker thread so a source
can live inside an async actor.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import DBAPIError

from ray_enterprise.config.errors import ConfigError
from ray_enterprise.config.merge import redact_text

log = logging.getLogger("ray_enterprise.config.sources")

Clock = Callable[[], float]


@dataclass(frozen=True)
class SourceHealth:
    """How a source is doing; times come from the source's clock, ``None`` when never.

    ``last_error`` is kept after a recovery so a status page can still say what went wrong.
    """

    source: str
    layer: str
    ok: bool = True
    last_error: str | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None
    consecutive_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "layer": self.layer,
            "ok": self.ok,
            "last_error": self.last_error,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "consecutive_failures": self.consecutive_failures,
        }


@dataclass(frozen=True)
class SourceUpdate:
    """What ``watch()`` yields: new values, a change of health, or both.

    ``values`` is always the source's current (last good) values; ``values_changed`` says
    whether they differ from the previous update's. Values are kept out of ``repr`` because
    sources such as Vault hand out secrets as plain strings.
    """

    source: str
    layer: str
    values: dict[str, Any] = field(repr=False)
    values_changed: bool
    health: SourceHealth


def describe_error(exc: BaseException) -> str:
    """A one-line reason without secrets: no SQL parameters, no passwords in URLs."""
    if isinstance(exc, ConfigError):
        text = str(exc)
    elif isinstance(exc, DBAPIError):
        # str(DBAPIError) appends the statement and its parameters, which may hold secrets.
        text = f"{type(exc.orig).__name__}: {exc.orig}" if exc.orig else type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    flat = " ".join(text.split()) or type(exc).__name__
    return redact_text(flat)[:500]


class ConfigSource(abc.ABC):
    """Base of every source; subclasses implement :meth:`_read` and may refine waiting.

    ``_probe`` is an optional cheap change check (file signatures, a max version, Vault
    metadata) so that ``watch()`` only does the full read when something moved.
    """

    #: The merge layer this source feeds, one of ``merge.LAYER_ORDER``.
    layer: str = "files"

    def __init__(self, *, name: str, poll_interval: float, clock: Clock = time.time) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self._clock = clock
        self._values: dict[str, Any] = {}
        self._health = SourceHealth(source=name, layer=self.layer)
        self._probe_token: Hashable | None = None
        #: Wall time at which ``watch()`` last woke to look (poll tick or notification), so
        #: the ConfigActor can tell waiting for a change from reading it (see ``StageLog``).
        self.woke_at = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, ok={self._health.ok})"

    # -- the vocabulary ----------------------------------------------------------------------

    async def load(self) -> dict[str, Any]:
        """Read now; on failure record it and return the last good values instead."""
        try:
            token = await self._probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._record_failure(exc)
            return self.values
        return await self._read_after_probe(token)

    async def _read_after_probe(self, token: Hashable | None) -> dict[str, Any]:
        # The token is taken before the read: a write in between makes the next probe differ
        # and causes one harmless extra read, never a missed change.
        try:
            values = await self._read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._record_failure(exc)
        else:
            self._probe_token = token
            self._values = values
            self._record_success()
        return self.values

    async def watch(self) -> AsyncGenerator[SourceUpdate, None]:
        """Yield an update whenever the values or the health change; runs until cancelled."""
        while True:
            await self._wait()
            self.woke_at = time.time()
            try:
                token = await self._probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                before = self._health
                self._record_failure(exc)
                if _health_moved(before, self._health):
                    yield self._update(values_changed=False)
                continue
            if token is not None and token == self._probe_token and self._health.ok:
                continue
            before_values, before_health = self._values, self._health
            await self._read_after_probe(token)
            changed = self._values != before_values
            if changed or _health_moved(before_health, self._health):
                yield self._update(values_changed=changed)

    def health(self) -> SourceHealth:
        return self._health

    @property
    def values(self) -> dict[str, Any]:
        """The last good values (a copy at the top level; treat nested values as read-only)."""
        return dict(self._values)

    async def close(self) -> None:
        """Release connections; the source may be loaded again afterwards."""
        return None

    # -- for subclasses ----------------------------------------------------------------------

    @abc.abstractmethod
    async def _read(self) -> dict[str, Any]:
        """The source's full values, nested; raise on any failure."""

    async def _probe(self) -> Hashable | None:
        """A token that changes when the values may have; ``None`` means always re-read."""
        return None

    async def _wait(self) -> None:
        """Block until it is worth looking again."""
        await asyncio.sleep(self.poll_interval)

    # -- bookkeeping -------------------------------------------------------------------------

    def _update(self, *, values_changed: bool) -> SourceUpdate:
        return SourceUpdate(self.name, self.layer, self.values, values_changed, self._health)

    def _record_success(self) -> None:
        if not self._health.ok:
            log.info("config source %s recovered", self.name)
        self._health = replace(
            self._health, ok=True, last_success_at=self._clock(), consecutive_failures=0
        )

    def _record_failure(self, exc: BaseException) -> None:
        reason = describe_error(exc)
        if self._health.ok or reason != self._health.last_error:
            log.warning("config source %s failed, keeping last good values: %s", self.name, reason)
        self._health = replace(
            self._health,
            ok=False,
            last_error=reason,
            last_failure_at=self._clock(),
            consecutive_failures=self._health.consecutive_failures + 1,
        )


def _health_moved(before: SourceHealth, after: SourceHealth) -> bool:
    return before.ok != after.ok or before.last_error != after.last_error
