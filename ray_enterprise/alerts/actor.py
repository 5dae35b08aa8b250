"""AlertManagerActor: the thin Ray shell around :class:`AlertManager`.

It only does I/O and scheduling. Every call that changes state drains ``take_changes()`` into
:class:`AlertHistory` before it returns, so what a caller was told happened is durable; a timer
wakes at ``next_due()`` (or when a call changed something) to tick; notifications are delivered
by asyncio tasks, each handler under a deadline, so a hanging webhook holds only its own task.
After a SIGKILL Ray restarts the actor and the constructor restores open alerts and silences
from history; alerts already notified count as told, so nobody is paged twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any, TypeVar

from ray_enterprise import _kv, system_actors
from ray_enterprise.alerts.client import (
    RestartAlert,
    registry_health_inputs,
    report_health_transition,
)
from ray_enterprise.alerts.config_follow import ALERTING_SECTION, follow_config_section
from ray_enterprise.alerts.errors import AlertConfigError, AlertInputError
from ray_enterprise.alerts.faults import MetricsRefusedInput
from ray_enterprise.alerts.feeds import follow_config_events
from ray_enterprise.alerts.handlers import CallableHandler, NotificationDispatcher
from ray_enterprise.alerts.history import AlertHistory
from ray_enterprise.alerts.manager import AlertManager, wall_clock_ms
from ray_enterprise.alerts.model import AlertChange
from ray_enterprise.alerts.routing import parse_duration_ms
from ray_enterprise.alerts.rules import MetricRule, RuleEngine
from ray_enterprise.alerts.settings import (
    AlertSettings,
    forget_settings,
    keep_settings,
    recover_settings,
    settings_from_alerting_config,
)
from ray_enterprise.alerts.views import (
    DAY_MS,
    alert_view,
    change_view,
    firing_by_severity,
    redacted_settings,
    resolved_views,
    select_views,
    to_input,
    trend_view,
)
from ray_enterprise.alerts.windows import observability_source, read_windows
from ray_enterprise.observability.metrics import MetricType, record_metric
from ray_enterprise.observability.system_metrics import ALERT_TICK_METRIC
from ray_enterprise.security.audit import AuditSink
from ray_enterprise.security.audit_retention import configured_retention_days
from ray_enterprise.system_actors import get_system_actor, kill_system_actor

logger = logging.getLogger("ray_enterprise.alerts")

NAMESPACE = _kv.NAMESPACE
ACTOR_NAME = system_actors.ALERTS
_MIN_TICK_GAP_S = 0.002
T = TypeVar("T")


class AlertManagerActor:
    """Named, detached, restartable; holds the manager, its history and the handlers."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        boot = AlertSettings.parse(settings or {})
        self._settings = recover_settings(boot)
        engine = self._settings.history_engine()
        self._history = AlertHistory(engine)
        self._history.create_tables()
        self._audit = AuditSink(engine)  # acks and silences are operator actions: audited
        self._manager = AlertManager(self._settings.policy())
        self._manager.restore(self._history.open_alerts(), self._history.active_silences())
        # Its own restart is told to itself, once its alerts are back; the first tick writes it.
        restart_alert = RestartAlert(ACTOR_NAME, report=self._manager.ingest)
        self._dispatcher = NotificationDispatcher(
            self._settings.handler_objects(),
            timeout_s=self._settings.ms("dispatch_timeout") / 1000,
        )
        self._rules = RuleEngine(self._settings.metric_rules())
        # History queries get threads of their own: a blocking callable handler may hold every
        # thread of the default pool, and must not stall `alerts list` or `history` with it.
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-history")
        self._wake = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._unwritten: list[AlertChange] = []
        self._config_version = 0  # the last observability section applied (0: none yet)
        for loop_body in (self._tick_forever, self._rules_forever, self._retention_forever):
            self._spawn(loop_body())
        self._spawn(self._sync_health_once())
        self._spawn(follow_config_events(self))
        self._spawn(follow_config_section(ACTOR_NAME, "on_config", lambda: self._config_version))
        restart_alert.recovered()
        logger.info(
            "alert manager up: %d open alerts, %d silences restored",
            len(self._manager.alerts()),
            len(self._manager.silences()),
        )

    # -- scheduling -------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _commit(self) -> None:
        """Make every change so far durable: called before any call returns or any page goes.

        Changes a failed write could not store stay queued for the next one, in order.
        """
        self._unwritten.extend(self._manager.take_changes())
        if self._unwritten:
            self._history.record(self._unwritten)
            self._unwritten = []

    def _changed(self) -> None:
        self._commit()
        self._wake.set()

    async def _tick_forever(self) -> None:
        max_sleep_s = self._settings.ms("max_sleep") / 1000
        while True:
            began = time.monotonic()
            try:
                self._tick()
            except Exception:  # the timer must outlive any one bad tick
                logger.exception("alert tick failed")
            record_metric(ALERT_TICK_METRIC, time.monotonic() - began, MetricType.HISTOGRAM)
            # A tick costs time linear in the open alerts. Resting as long after it keeps
            # ticking under half of the actor's time, and the calls of a burst that arrive
            # meanwhile share the next tick; a lone call after a quiet spell is ticked at once.
            await asyncio.sleep(max(_MIN_TICK_GAP_S, time.monotonic() - began))
            due = self._manager.next_due()
            delay = max_sleep_s
            if due is not None:
                delay = min(max((due - wall_clock_ms()) / 1000, 0.0), max_sleep_s)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()

    def _tick(self) -> None:
        notifications = self._manager.tick()
        try:  # history first: an alert recorded as notified is not paged again after a restart
            self._commit()
        except Exception:  # history is down: page anyway, a page matters more than its record
            logger.exception("alert history write failed; notifying without it")
        for notification in notifications:
            self._spawn(self._dispatcher.dispatch(notification))

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, functools.partial(fn, *args, **kwargs))

    async def _rules_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.ms("rule_interval") / 1000)
            if not self._rules.rules:
                continue
            try:
                await self.evaluate_rules()
            except Exception:
                logger.exception("metric rule evaluation failed")

    async def _retention_forever(self) -> None:
        # The audit trail lives in the same database as alert history, so its retention
        # (security.audit_retention_days) runs on this same hourly schedule.
        while True:
            try:
                cutoff = wall_clock_ms() - self._settings.ms("retention")
                deleted = await self._read(self._history.delete_before, cutoff)
                if deleted:
                    logger.info("alert history retention removed %d rows", deleted)
            except Exception:
                logger.exception("alert history retention failed")
            try:
                await self.apply_audit_retention()
            except Exception:  # a damaged trail refuses the cut: logged, tried next hour
                logger.exception("audit trail retention failed")
            await asyncio.sleep(3600)

    async def apply_audit_retention(self) -> dict[str, Any]:
        """Cut audit records older than the running ``security.audit_retention_days`` (the
        hourly loop calls this; so may an operator or a test)."""
        days = await configured_retention_days()
        if days is None:
            return {"days": None, "deleted": 0}
        deleted = await self._read(self._audit.apply_retention, days)
        if deleted:
            logger.info("audit retention (%d days) removed %d records", days, deleted)
        return {"days": days, "deleted": deleted}

    async def _sync_health_once(self) -> None:
        """Catch up on health transitions missed while this actor was down."""
        inputs = await registry_health_inputs()
        if inputs:
            self._manager.ingest_many(inputs)
            self._changed()

    # -- inputs -----------------------------------------------------------------------------

    async def ping(self) -> str:
        return "ok"

    async def pid(self) -> int:
        return os.getpid()

    async def ingest(self, inputs: Sequence[Any]) -> int:
        """Apply a batch of inputs (source dataclasses, signals or dicts); returns how many
        alerts they touched. One history transaction per batch: send bursts as one call."""
        touched = self._manager.ingest_many(self._with_settings(to_input(i)) for i in inputs)
        self._changed()
        return touched

    def _with_settings(self, item: Any) -> Any:
        """Inputs that leave a setting of this actor to it get it filled in."""
        if isinstance(item, MetricsRefusedInput) and item.quiet_ms is None:
            return replace(item, quiet_ms=self._settings.ms("metrics_refused_quiet"))
        return item

    async def acknowledge(self, alert_id: str, by: str, reason: str = "") -> dict[str, Any]:
        alert = self._manager.acknowledge(alert_id, by, reason)
        self._changed()
        await self._read(
            self._audit.write, by, "alert.acknowledge", target=alert_id, details={"reason": reason}
        )
        return alert_view(alert)

    async def unacknowledge(self, alert_id: str, by: str, reason: str = "") -> dict[str, Any]:
        alert = self._manager.unacknowledge(alert_id, by, reason)
        self._changed()
        await self._read(
            self._audit.write,
            by,
            "alert.unacknowledge",
            target=alert_id,
            details={"reason": reason},
        )
        return alert_view(alert)

    async def silence(
        self, matchers: str, duration: str | float, by: str, comment: str = ""
    ) -> dict[str, Any]:
        """Mute alerts matching ``matchers`` (``'service="api"'``) for ``duration`` ("1h")."""
        silence = self._manager.silence(matchers, parse_duration_ms(duration), by, comment)
        self._history.save_silence(silence)
        self._changed()
        details = {"matchers": matchers, "duration": str(duration), "comment": comment}
        await self._read(self._audit.write, by, "alert.silence", target=silence.id, details=details)
        return {**silence.to_dict(), "active": True}

    async def expire_silence(self, silence_id: str) -> dict[str, Any]:
        silence = self._manager.expire_silence(silence_id)
        self._history.save_silence(silence)
        self._changed()
        return {**silence.to_dict(), "active": False}

    async def add_handler(self, name: str, fn: Callable[..., Any]) -> None:
        """Add a Python callable as handler ``name`` (routes refer to it by name).

        Functions added here live in this actor's memory and are gone after a restart; name an
        importable function in the settings (``type: callable, target: mod:fn``) to keep one.
        """
        self._dispatcher.add(CallableHandler(name, fn))

    async def set_policy(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Swap routes, handlers, inhibition and rules from ``config`` (keys of
        :class:`AlertSettings`; missing keys keep their value). Validated whole, then swapped.

        A route or handlers given here stop the config section from replacing them (unless
        ``follow_config`` is given too): an operator's explicit choice wins over the file."""
        merged = {**self._settings.model_dump(mode="json"), **dict(config)}
        if ("route" in config or "handlers" in config) and "follow_config" not in config:
            merged["follow_config"] = False
        new = AlertSettings.parse(merged)
        self._swap(new)
        keep_settings(new)
        return redacted_settings(new)

    async def on_config(self, section: str, value: Any, version: int) -> int:
        """The ConfigActor pushes the observability section here: its ``alerting`` part
        becomes route and handlers, in version order, unless a policy was chosen explicitly.
        Not kept for a restart: the restarted actor subscribes again and is sent it anew."""
        if section != ALERTING_SECTION or version <= self._config_version:
            return self._config_version
        self._config_version = version
        if not self._settings.follow_config:
            return version
        derived = settings_from_alerting_config(value.alerting)
        merged = {
            **self._settings.model_dump(mode="json"),
            "route": derived.route,
            "handlers": derived.handlers,
            "follow_config": True,
        }
        self._swap(AlertSettings.parse(merged))
        logger.info("alert policy from config version %d", version)
        return version

    def _swap(self, new: AlertSettings) -> None:
        if new.db_url != self._settings.db_url:
            raise AlertConfigError("db_url", "the history database cannot change at run time")
        policy, handlers, rules = new.policy(), new.handler_objects(), new.metric_rules()
        retired = [h for n, h in self._dispatcher.handlers.items() if n in new.handlers]
        for name in set(self._dispatcher.handlers) - set(new.handlers):
            handler = self._dispatcher.handlers[name]
            if not isinstance(handler, CallableHandler):  # run-time callables stay
                retired.append(handler)
                self._dispatcher.remove(name)
        for handler in handlers:
            self._dispatcher.add(handler)
        self._spawn(self._close_later(retired))
        self._manager.set_policy(policy)
        self._swap_rules(rules)
        self._settings = new
        self._changed()

    def _swap_rules(self, rules: list[MetricRule]) -> None:
        wanted = {r.name: r for r in rules}
        for old in self._rules.rules:
            if wanted.get(old.name) != old:  # removed or changed: its alerts resolve
                self._manager.ingest_many(self._rules.remove(old.name))
        for rule in rules:
            if rule not in self._rules.rules:
                self._rules.add(rule)

    async def _close_later(self, handlers: list[Any]) -> None:
        # Deliveries in flight keep using the old handlers until their deadline.
        await asyncio.sleep(self._settings.ms("dispatch_timeout") / 1000)
        for handler in handlers:
            close = getattr(handler, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def evaluate_rules(self, source: Any = None) -> list[dict[str, Any]]:
        """Evaluate the metric rules now against ``source`` (anything with ``window_values``,
        or an actor handle with that method); by default against the named observability
        actor when it runs (silently nothing when it does not)."""
        if source is None:
            source = observability_source()
            if source is None:
                return []
        now = wall_clock_ms()
        results = []
        for rule, windows in await read_windows(source, self._rules.rules, now):
            results.extend(self._rules.evaluate_rule(rule, windows, now))
        if results:  # most evaluations change nothing: no history write, no extra tick
            self._manager.ingest_many(results)
            self._changed()
        return [
            {"rule": r.rule.name, "series": r.series, "value": r.value, "firing": r.firing}
            for r in results
        ]

    # -- reading ----------------------------------------------------------------------------

    async def alerts(
        self,
        state: str | None = None,
        *,
        service: str | None = None,
        severity: str | None = None,
        days: float = 7.0,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Open alerts (``state`` firing or acknowledged narrows them), or with
        ``state="resolved"`` those resolved in the last ``days``, newest first."""
        if state not in (None, "firing", "acknowledged", "resolved"):
            raise AlertInputError(f"unknown state {state!r}: use firing, acknowledged or resolved")
        if state == "resolved":
            views = await self._read(resolved_views, self._history, wall_clock_ms(), days)
        else:
            views = [alert_view(a) for a in self._manager.alerts()]
        return select_views(views, state, service, severity)[:limit]

    async def get(self, alert_id: str) -> dict[str, Any]:
        """An open alert by id or fingerprint, else the latest snapshot history has of it."""
        try:
            return alert_view(self._manager.get(alert_id))
        except KeyError:
            changes = await self._read(self._history.events, alert_id, limit=1)
            if not changes:
                raise
            return alert_view(changes[-1].alert)

    async def silences(self) -> list[dict[str, Any]]:
        now = wall_clock_ms()
        return [{**s.to_dict(), "active": s.active(now)} for s in self._manager.silences()]

    async def history(
        self, days: float = 7.0, *, alert_id: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """State changes of the last ``days`` (of one alert, or all), oldest first."""
        since = wall_clock_ms() - int(days * DAY_MS)
        changes = await self._read(self._history.events, alert_id, since_ms=since, limit=limit)
        return [change_view(c) for c in changes]

    async def trends(self, days: float = 30.0, service: str | None = None) -> dict[str, Any]:
        """Alerts per day, service and severity; mean time to acknowledge and to resolve."""
        return await self._read(trend_view, self._history, wall_clock_ms(), days, service)

    async def handler_stats(self) -> dict[str, dict[str, Any]]:
        """Delivery counters per handler: sent, failed, timed out, last error."""
        return {name: asdict(stats) for name, stats in self._dispatcher.stats().items()}

    async def settings(self) -> dict[str, Any]:
        """The running settings, header values masked; ``config_version`` is the last
        observability section applied."""
        return {**redacted_settings(self._settings), "config_version": self._config_version}

    async def firing(self) -> dict[str, list[str]]:
        """Open alerts by severity, each as ``Name{service=...}``: the health score's input."""
        return firing_by_severity(self._manager.alerts())

    async def rule_states(self) -> list[dict[str, Any]]:
        """Series of metric rules that are pending (``for`` not yet passed) or firing."""
        return [asdict(state) for state in self._rules.states()]


def get_alert_handle(
    *, create: bool, settings: AlertSettings | Mapping[str, Any] | None = None
) -> Any:
    """The alert actor's handle; created with ``settings`` when asked and missing.

    Settings take effect only when this call creates the actor; change a running one with its
    ``set_policy``. Raises ``ValueError`` when it does not run and ``create`` is false.
    """
    if isinstance(settings, AlertSettings):
        raw: dict[str, Any] = settings.model_dump(mode="json")
    else:
        raw = AlertSettings.parse(settings or {}).model_dump(mode="json")
    return get_system_actor(ACTOR_NAME, AlertManagerActor, create=create, args=(raw,))


def remove_alert_actor(timeout_s: float = 20.0) -> None:
    """Kill the alert actor for good and forget its run-time policy; history stays on disk.

    For ``shutdown_system`` and tests: the name is free again when this returns.
    """
    if kill_system_actor(ACTOR_NAME, timeout_s) is not None:
        forget_settings()


__all__ = [
    "ACTOR_NAME",
    "AlertManagerActor",
    "get_alert_handle",
    "remove_alert_actor",
    "report_health_transition",
]
