"""ConfigActor: the thin Ray shell around the sources, :class:`ConfigApplier` and :class:`Fanout`.

It runs every source's ``watch()`` loop, coalesces bursts of writes (consul-template's
``wait``), applies the merged document through the applier under one lock, and wakes the
subscribers of the sections that changed. Named, detached and restarted forever; versions live
in durable history and subscriptions in the GCS key-value store, so after its own SIGKILL it
comes back with the same version and keeps pushing to the same subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import ray
from pydantic import BaseModel

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import RestartAlert
from ray_enterprise.backoff import Backoff
from ray_enterprise.config.applier import Applied, ConfigApplier
from ray_enterprise.config.burst import BurstWindow
from ray_enterprise.config.errors import ConfigError
from ray_enterprise.config.events import EventLog
from ray_enterprise.config.fanout import Fanout, Subscription
from ray_enterprise.config.history import ConfigHistory
from ray_enterprise.config.merge import MergedConfig, merge_layers
from ray_enterprise.config.schema import ServiceConfigRegistry, default_document
from ray_enterprise.config.sealing import DocumentSealer
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.config.sources import (
    ConfigSource,
    FileConfigSource,
    SourceUpdate,
    describe_error,
)
from ray_enterprise.config.stages import StageLog
from ray_enterprise.config.subscriptions import SUBSCRIPTION_PREFIX, ConfigSubscriptions
from ray_enterprise.config.views import ConfigViews
from ray_enterprise.config.writes import ConfigWrites
from ray_enterprise.security.audit import AuditSink
from ray_enterprise.spec import import_object
from ray_enterprise.storage import make_engine
from ray_enterprise.system_actors import get_system_actor, kill_system_actor

logger = logging.getLogger("ray_enterprise.config")

NAMESPACE = _kv.NAMESPACE
ACTOR_NAME = system_actors.CONFIG
_PIN = "config/pin"
_REJECTIONS = "config/rejections"
_AUDITED = ("applied", "rejected", "rolled_back")
_MODELS = "config/models/"


class ConfigActor(ConfigSubscriptions, ConfigViews, ConfigWrites):
    """Named ``config``, detached, restartable; one apply lock, one task per source."""

    def __init__(self, settings: ConfigSettings | None = None) -> None:
        self._restart_alert = RestartAlert(ACTOR_NAME)
        self._settings = settings or ConfigSettings()
        self._sealer = DocumentSealer.from_env()  # a bad key fails the actor's creation, loudly
        self._sources: list[ConfigSource] = self._settings.build_sources()
        self._values: dict[str, dict[str, Any]] = {s.layer: {} for s in self._sources}
        self._source_ok: dict[str, bool] = {}
        self._events = EventLog(first_seq=int(time.time() * 1000))
        self._events.restore(_kv.get(_REJECTIONS, []))
        self._applier: ConfigApplier | None = None
        self._history: ConfigHistory | None = None
        self._models = ServiceConfigRegistry()
        for service, path in _kv.scan(_MODELS).items():  # declared before a restart
            with contextlib.suppress(ConfigError):
                self._models.register(service.removeprefix(_MODELS), _load_model(path))
        self._audit: AuditSink | None = None
        self._audited = self._events.last_seq
        self._stages = StageLog()
        self._fanout = Fanout(self._current, self._push)
        self._fanout.on_drop = lambda sub: _kv.delete(SUBSCRIPTION_PREFIX + sub.key)
        self._handles: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._new_version = asyncio.Event()
        self._dirty: set[str] = set()
        self._window = BurstWindow(self._settings.wait_min_s, self._settings.wait_max_s)
        self._apply_task: asyncio.Task[None] | None = None
        self._pin: tuple[int, dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._tasks.append(asyncio.get_event_loop().create_task(self._boot()))

    # -- boot and watching -------------------------------------------------------------------

    async def _boot(self) -> None:
        loaded = await asyncio.gather(*(s.load() for s in self._sources))
        for source, values in zip(self._sources, loaded, strict=True):
            self._values[source.layer] = values
            self._note_health(source, source.health().ok)
        delay = Backoff(0.2, 5.0)
        while True:  # history is where version numbers come from: wait for it, however long
            try:
                await self._resume()
                break
            except Exception as exc:
                logger.warning("config history unavailable, retrying: %s", describe_error(exc))
                await asyncio.sleep(delay.next())
        for data in _kv.scan(SUBSCRIPTION_PREFIX).values():
            self._fanout.add(Subscription(**data))
        self._ready.set()
        self._restart_alert.recovered()  # history resumed, sources loaded: serving again
        logger.info("config actor ready at version %d", self._app.version)
        loop = asyncio.get_event_loop()
        self._tasks += [loop.create_task(self._watch(s)) for s in self._sources]

    async def _resume(self) -> None:
        """Open history and take up the version it ends with (and a rollback still pinned)."""
        engine = make_engine(self._settings.history, create=False)
        self._history = await asyncio.to_thread(ConfigHistory, engine, sealer=self._sealer)
        self._audit = AuditSink(engine)
        self._applier = ConfigApplier(self._history, self._events, services=self._models)
        pin = _kv.get(_PIN)
        if pin is not None:
            try:
                live = await asyncio.to_thread(self._history.live_document, int(pin))
                self._pin = (int(pin), live)
            except ConfigError:  # history was replaced, or its key: nothing to hold
                _kv.delete(_PIN)
        async with self._lock:
            with contextlib.suppress(ConfigError):  # refused: the resumed version stays
                await asyncio.to_thread(self._applier.boot, self._compose())
            self._save_rejections()
            await self._write_audit()

    async def _watch(self, source: ConfigSource) -> None:
        while True:
            try:
                async for update in source.watch():
                    self._on_update(source, update)
            except asyncio.CancelledError:
                raise
            except Exception:  # a source must never take the actor down
                logger.exception("watch of config source %s failed; restarting it", source.name)
                await asyncio.sleep(1.0)

    def _on_update(self, source: ConfigSource, update: SourceUpdate) -> None:
        self._note_health(source, update.health.ok)
        if not update.values_changed:
            return
        self._values[source.layer] = update.values
        self._stages.pending("woke", source.woke_at or None)
        self._stages.pending("detected")
        self._mark_dirty(source.name)

    def _note_health(self, source: ConfigSource, ok: bool) -> None:
        before = self._source_ok.get(source.name, True)
        self._source_ok[source.name] = ok
        if before and not ok:
            reason = source.health().last_error or "failing"
            self._events.emit(
                "source_failed",
                f"config source {source.name} failing, last good values kept: {reason}",
                source=source.name,
                severity="medium",
            )
        elif ok and not before:
            self._events.emit(
                "source_recovered", f"config source {source.name} recovered", source=source.name
            )

    def _mark_dirty(self, trigger: str) -> None:
        self._window.mark()
        self._dirty.add(trigger)
        self._unpin()
        if self._apply_task is None or self._apply_task.done():
            self._apply_task = asyncio.get_event_loop().create_task(self._apply_loop())

    def _unpin(self) -> None:
        """A source moved: the sources are the truth again, not the rolled-back document."""
        if self._pin is not None:
            self._pin = None
            _kv.delete(_PIN)

    def _repin(self, pin: tuple[int, dict[str, Any]] | None) -> None:
        """Hold ``pin`` again: the write that unpinned it was taken back."""
        if pin is not None and self._pin is None:
            self._pin = pin
            _kv.put(_PIN, pin[0])

    async def _apply_loop(self) -> None:
        """Apply when the burst window says so (see :class:`BurstWindow`)."""
        while self._dirty:
            due = self._window.not_before()
            if time.monotonic() < due:
                await asyncio.sleep(due - time.monotonic())
                continue
            if not await self._apply_pending():
                await asyncio.sleep(1.0)  # history unreachable: the change waits for it

    async def _apply_pending(self) -> bool:
        """Apply what is dirty; False when it must be tried again (history unavailable)."""
        async with self._lock:
            return await self._apply_dirty()

    async def _apply_dirty(self, *, raise_refusal: bool = False) -> bool:
        """:meth:`_apply_pending` for a caller that holds the lock already; ``raise_refusal``
        raises a refused document's :class:`ConfigError` instead of only recording it."""
        trigger = ", ".join(sorted(self._dirty))
        self._dirty.clear()
        self._window.taken()
        self._stages.pending("apply_start")
        try:
            applied = await asyncio.to_thread(self._app.apply, self._compose(), trigger)
        except ConfigError:
            self._stages.begin(None)
            self._save_rejections()
            await self._write_audit()
            if raise_refusal:
                raise
            return True
        except Exception as exc:
            logger.warning("config version not recorded (%s); will retry", describe_error(exc))
            self._dirty.add(trigger)
            self._window.mark()
            return False
        self._announce(applied)
        await self._after_pushes_sent()
        await self._write_audit()
        return True

    def _compose(
        self, override: dict[str, dict[str, Any]] | None = None, *, pinned: bool = True
    ) -> MergedConfig:
        """Defaults and every source's last good values, or the pinned rollback document."""
        values = {**self._values, **(override or {})}
        layers = [("defaults", default_document())]
        layers += [(s.layer, values[s.layer]) for s in self._sources]
        merged = merge_layers(layers)
        files = next(s for s in self._sources if isinstance(s, FileConfigSource)).provenance()
        provenance = {
            path: f"files ({files[path]})" if layer == "files" and path in files else layer
            for path, layer in merged.provenance.items()
        }
        if self._pin is not None and pinned:
            version, document = self._pin
            return MergedConfig(
                document,
                {path: f"rollback to {version}" for path in provenance},
            )
        return MergedConfig(merged.document, provenance)

    def _announce(self, applied: Applied | None) -> None:
        self._stages.begin(applied.version if applied is not None else None)
        if applied is None:
            return
        self._fanout.changed(applied.changed_sections)
        self._new_version.set()
        self._new_version = asyncio.Event()

    @staticmethod
    async def _after_pushes_sent() -> None:
        """Return once the delivery tasks that ``_announce`` woke have sent their pushes.

        They are queued before this coroutine, so one turn of the loop runs them all. An audit
        write started earlier runs in a worker thread that takes the GIL back from the loop at
        each ``.remote()``: with PostgreSQL history (several network waits per write), sending
        20 pushes took ~130 ms p50 that way and ~66 ms after this yield, as much as bare Ray.
        """
        await asyncio.sleep(0)

    async def _write_audit(self) -> None:
        """Every applied, rejected or rolled-back change since the last call, as audit records.

        The event log is the one account of what happened, so the trail follows it rather than
        each path writing its own record; a record that cannot be written is counted by the
        sink and the change stands (see :class:`AuditSink`).
        """
        if self._audit is None:
            return
        events = [e for e in self._events.events(self._audited) if e.kind in _AUDITED]
        self._audited = self._events.last_seq
        for event in events:
            await asyncio.to_thread(
                self._audit.write,
                f"config:{event.source or 'unknown'}",
                f"config.{event.kind}",
                target=f"version {event.version}" if event.version is not None else "config",
                outcome="rejected" if event.kind == "rejected" else "success",
                details={"message": event.message, "field": event.field},
            )

    def _save_rejections(self) -> None:
        _kv.put(_REJECTIONS, [r.to_dict() for r in self._events.rejections()[-100:]])

    # -- public API ----------------------------------------------------------------------------

    async def ready(self) -> int:
        """The running version, once the first load and history resume are done."""
        await self._ready.wait()
        return self._app.version

    async def pid(self) -> int:
        return os.getpid()

    async def stage_times(self, version: int) -> dict[str, float]:
        """Wall times at which ``version`` passed each propagation stage (see ``StageLog``)."""
        return self._stages.get(version)

    async def current_version(self) -> int:
        await self._ready.wait()
        return self._app.version

    async def get_config(self) -> Any:
        """The running :class:`EnterpriseConfig` (secrets stay ``SecretStr``)."""
        await self._ready.wait()
        return self._app.config

    async def get(self, section: str) -> Any:
        await self._ready.wait()
        return self._app.section(section)

    async def rollback(self, version: int) -> int:
        """Run version ``version``'s document again as a new version, until a source moves."""
        await self._ready.wait()
        async with self._lock:
            applied = await asyncio.to_thread(self._app.rollback, version)
            live = await asyncio.to_thread(self._log.live_document, version)
            self._pin = (version, live)
            _kv.put(_PIN, version)
            self._announce(applied)
            await self._after_pushes_sent()
            await self._write_audit()
        return self._app.version

    async def declare_model(self, service: str, class_path: str) -> int:
        """Validate ``services.<service>`` with the ``config_model`` of the Service class at
        ``class_path`` from now on (kept across restarts); returns the running version.

        The running document is checked again at once: values that the model refuses are
        rejected like any bad change (the version stays, the rejection names the field and
        its source), values it accepts are applied with its defaults filled in.
        """
        await self._ready.wait()
        model = _load_model(class_path)
        if self._models.model_for(service) is model:
            return self._app.version
        self._models.register(service, model)
        _kv.put(_MODELS + service, class_path)
        self._dirty.add(f"config model of {service}")
        await self._apply_pending()
        return self._app.version

    async def forget(self) -> None:
        """Erase subscriptions, pin and rejections from the key-value store (``down``, tests)."""
        await self._fanout.close()
        _kv.delete_prefix("config/")


def _load_model(class_path: str) -> type[BaseModel]:
    """The ``config_model`` of the Service class at ``class_path``."""
    try:
        owner = import_object(class_path)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot import {class_path!r} in the config actor to read its config_model: "
            f"{exc}; ship the module with the job (working_dir or py_modules)"
        ) from exc
    model = getattr(owner, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"{class_path}.config_model is not a pydantic model class")
    return model


def get_config_handle(
    *,
    create: bool,
    settings: ConfigSettings | None = None,
    env_vars: dict[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Any:
    """The ConfigActor handle; created when asked and missing, from ``settings`` (default:
    :meth:`ConfigSettings.from_env` of this process). ``env_vars`` set the actor's environment
    layer (its process environment) when it is created here."""
    options: dict[str, Any] = {"runtime_env": {"env_vars": dict(env_vars)}} if env_vars else {}
    return get_system_actor(
        ACTOR_NAME,
        ConfigActor,
        create=create,
        args=(settings or ConfigSettings.from_env(),) if create else (),
        ready_method="ready",
        timeout_s=timeout_s,
        **options,
    )


def remove_config_actor(timeout_s: float = 30.0) -> None:
    """Erase the ConfigActor's key-value state and kill it for good; history stays on disk.

    For ``shutdown_system`` and tests: the name is free again when this returns.
    """
    try:
        handle = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return
    ray.get(handle.forget.remote(), timeout=timeout_s)
    kill_system_actor(ACTOR_NAME, timeout_s)


__all__ = ["ACTOR_NAME", "ConfigActor", "get_config_handle", "remove_config_actor"]
