"""What the alert actor is told at boot: routes, handlers, inhibition, rules, retention.

A pydantic model at the edge (config files, ``set_policy`` calls from any process), validated
as a whole before anything is swapped in: every section is also parsed by the pure core
(:func:`policy_from_config`, :func:`handlers_from_config`, :func:`parse_rule`) here, so a bad
route, handler or rule is refused with its path instead of failing later inside the actor.
The defaults run on a laptop: one log handler, SQLite history under ``~/.ray_enterprise``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ray_enterprise import _kv
from ray_enterprise.alerts.errors import AlertConfigError, AlertError
from ray_enterprise.alerts.handlers import AlertHandler, handlers_from_config
from ray_enterprise.alerts.model import Severity
from ray_enterprise.alerts.routing import (
    AlertPolicy,
    parse_duration_ms,
    policy_from_config,
)
from ray_enterprise.alerts.rules import MetricRule, parse_rule
from ray_enterprise.storage import make_engine

Duration = str | float


class AlertRuleSettings(BaseModel):
    """One metric rule: ``expr`` in the syntax of :mod:`rules`; ``for`` and ``keep_firing_for``
    as Prometheus spells them in a rule file (or as clauses at the end of ``expr``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    name: str
    expr: str
    severity: Severity = Severity.HIGH
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    for_: Duration | None = Field(default=None, alias="for")
    keep_firing_for: Duration | None = None

    def parse(self) -> MetricRule:
        where = f"rules.{self.name}"
        return parse_rule(
            self.name,
            self.expr,
            severity=self.severity,
            labels=self.labels,
            annotations=self.annotations,
            for_ms=None if self.for_ is None else parse_duration_ms(self.for_, f"{where}.for"),
            keep_firing_for_ms=None
            if self.keep_firing_for is None
            else parse_duration_ms(self.keep_firing_for, f"{where}.keep_firing_for"),
        )


class AlertSettings(BaseModel):
    """The alert actor's whole configuration.

    ``handlers`` maps a name to ``{type: log|webhook|alertmanager|callable, ...}``; a
    ``callable`` handler names an importable function (``target: "pkg.mod:notify"``), so it
    survives the actor's restart; without ``target`` it is a slot that a function passed to the
    actor's ``add_handler`` fills (and that is lost when the actor restarts).
    ``db_url`` is ``None`` for the default store (``RAY_ENTERPRISE_DB_URL`` or SQLite).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    route: dict[str, Any] = Field(default_factory=lambda: {"handlers": ["log"]})
    inhibit_rules: list[dict[str, Any]] | None = None
    #: Alertmanager's named ``time_intervals``, for routes' mute/active_time_intervals.
    time_intervals: list[dict[str, Any]] | None = None
    #: PagerDuty-style policies by name, for routes' ``escalation_policy``.
    escalation_policies: dict[str, dict[str, Any]] | None = None
    handlers: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"log": {"type": "log"}})
    rules: list[AlertRuleSettings] = Field(default_factory=list)
    rule_interval: Duration = "15s"
    retention: Duration = "30d"
    dispatch_timeout: Duration = "30s"
    health_sync_interval: Duration = "30s"
    max_sleep: Duration = "1s"
    #: MetricsRefused resolves after this long without new refusals; the central actor looks
    #: every second, so keep it above that.
    metrics_refused_quiet: Duration = "30s"
    db_url: str | None = None
    #: Whether the ``observability.alerting`` config section replaces route and handlers on
    #: every change. Unset, it is on unless route or handlers were given: a policy chosen
    #: explicitly (here or by ``set_policy``) is not overwritten by the config.
    follow_config: bool = True

    @model_validator(mode="before")
    @classmethod
    def _follow_unless_chosen(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and "follow_config" not in raw:
            return {**raw, "follow_config": "route" not in raw and "handlers" not in raw}
        return raw

    @model_validator(mode="after")
    def _check_with_core(self) -> AlertSettings:
        # Parse everything once now: a bad config is refused at the edge, with its path.
        policy = self.policy()
        self.handler_objects()
        self.metric_rules()
        keys = (
            "rule_interval",
            "retention",
            "dispatch_timeout",
            "max_sleep",
            "metrics_refused_quiet",
        )
        for key in keys:
            if self.ms(key) <= 0:
                raise AlertConfigError(key, "must be longer than zero")
        self.ms("health_sync_interval")
        missing = policy.handler_names() - set(self.handlers)
        if missing:
            raise AlertConfigError(
                "route",
                f"routes name handlers {sorted(missing)} that are not configured; "
                f"add them under handlers (configured: {sorted(self.handlers)})",
            )
        return self

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> AlertSettings:
        """Validate ``raw``, raising the alert errors (which name the field and cross Ray
        intact) rather than pydantic's, which Ray cannot re-raise as their own type."""
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, AlertError):
                raise cause from None
            path = ".".join(str(part) for part in first["loc"]) or "settings"
            raise AlertConfigError(path, first["msg"]) from None

    def ms(self, key: str) -> int:
        """A duration field in milliseconds."""
        return parse_duration_ms(getattr(self, key), key)

    def history_engine(self) -> sa.Engine:
        """The engine for ``db_url``; on SQLite with a pool of open connections.

        The alert actor is the only writer of its tables and writes on every call; reopening
        the file per transaction (the store's default, which suits pollers) costs ~8 ms a
        write here, twice on the way from an input to a page.
        """
        engine = make_engine(self.db_url, create=False)
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return engine
        pooled = sa.create_engine(url, connect_args={"timeout": 5.0})
        sa.event.listen(pooled, "connect", _sqlite_wal)
        engine.dispose()
        return pooled

    def policy(self) -> AlertPolicy:
        raw: dict[str, Any] = {"route": self.route}
        if self.inhibit_rules is not None:
            raw["inhibit_rules"] = self.inhibit_rules
        raw["time_intervals"] = self.time_intervals
        raw["escalation_policies"] = self.escalation_policies
        return policy_from_config(raw)

    def handler_objects(self) -> list[AlertHandler]:
        """Fresh handler objects (webhook sessions belong to one actor's event loop)."""
        from ray_enterprise.alerts.handlers import CallableHandler

        plain = {k: v for k, v in self.handlers.items() if v.get("type") != "callable"}
        out = handlers_from_config(plain)
        for name, raw in self.handlers.items():
            # A callable without a target is a slot filled at run time by ``add_handler``.
            if raw.get("type") == "callable" and raw.get("target") is not None:
                out.append(CallableHandler(name, load_callable(raw, f"handlers.{name}")))
        return out

    def metric_rules(self) -> list[MetricRule]:
        names = [r.name for r in self.rules]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise AlertConfigError("rules", f"rule names must be unique; repeated: {duplicated}")
        return [rule.parse() for rule in self.rules]


_SETTINGS_KEY = "alerts/settings"


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (the CLI, trend queries) never wait for the writer, nor it for them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def recover_settings(boot: AlertSettings) -> AlertSettings:
    """The settings a (re)started alert actor runs with.

    A policy set at run time outlives a restart of the actor (it is kept in the GCS key-value
    store), but only for the same boot settings: a new deployment with new settings must not be
    overridden by a stale one.
    """
    boot_json = boot.model_dump(mode="json")
    stored = _kv.get(_SETTINGS_KEY)
    if isinstance(stored, dict) and stored.get("boot") == boot_json:
        return AlertSettings.parse(stored["current"])
    _kv.put(_SETTINGS_KEY, {"boot": boot_json, "current": boot_json})
    return boot


def keep_settings(current: AlertSettings) -> None:
    """Remember a policy set at run time, for the next restart of the actor."""
    stored = _kv.get(_SETTINGS_KEY) or {}
    _kv.put(_SETTINGS_KEY, {**stored, "current": current.model_dump(mode="json")})


def forget_settings() -> None:
    _kv.delete(_SETTINGS_KEY)


def load_callable(raw: dict[str, Any], path: str) -> Callable[..., Any]:
    """Import ``target: "module:function"`` of a callable handler."""
    unknown = set(raw) - {"type", "target"}
    if unknown:
        raise AlertConfigError(path, f"unknown keys {sorted(unknown)} for a callable handler")
    target = raw.get("target")
    if not isinstance(target, str) or ":" not in target:
        raise AlertConfigError(f"{path}.target", f"expected 'module:function', got {target!r}")
    module_name, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AlertConfigError(f"{path}.target", f"cannot import {target!r}: {exc}") from exc
    if not callable(fn):
        raise AlertConfigError(f"{path}.target", f"{target!r} is not callable")
    return fn


def _secret(value: Any) -> Any:
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if reveal is not None else value


def _receiver(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": raw.type}
    if raw.type == "log":
        return out
    out["url"] = _secret(raw.url)
    if raw.headers:
        out["headers"] = {k: _secret(v) for k, v in raw.headers.items()}
    if raw.type == "webhook" and raw.slack:
        out["slack"] = True
    return out


def settings_from_alerting_config(alerting: Any) -> AlertSettings:
    """Map the ``observability.alerting`` section of :class:`EnterpriseConfig` onto settings.

    That section is what an operator sets in the main config: receivers (``webhook_url`` with
    its ``webhook_headers``, or named ones), child routes by matchers, grouping, escalation and
    resolve notices. With ``enabled`` false the root routes to nobody and no child route or
    escalation is kept, so nothing is sent while alerts are still kept. The result follows the
    config (``follow_config``), so the next change of the section replaces it.
    """
    handlers: dict[str, dict[str, Any]] = {"log": {"type": "log"}}
    for name, receiver in alerting.receivers.items():
        handlers[name] = _receiver(receiver)
    root = ["log"]
    url = alerting.webhook_url
    if url is not None:
        handlers["webhook"] = {"type": "webhook", "url": _secret(url)}
        if alerting.webhook_headers:
            headers = {k: _secret(v) for k, v in alerting.webhook_headers.items()}
            handlers["webhook"]["headers"] = headers
        root = ["log", "webhook"]
    route: dict[str, Any] = {
        "handlers": root if alerting.enabled else [],
        "send_resolved": bool(alerting.resolve_notifications),
        "repeat_interval": f"{max(float(alerting.dedup_window_seconds), 1.0)}s",
        "group_wait": f"{float(alerting.group_wait_seconds)}s",
    }
    if alerting.enabled and url is not None:
        route["escalation"] = [
            {"after": f"{float(alerting.escalation_after_seconds)}s", "handlers": ["webhook"]}
        ]
    if alerting.enabled and alerting.routes:
        route["routes"] = [
            {"match": list(r.match), "handlers": list(r.receivers), "continue": r.continue_matching}
            for r in alerting.routes
        ]
    return AlertSettings(route=route, handlers=handlers, follow_config=True)
