"""The system actors' own figures as Prometheus families: registry, config, alert actor and
anomaly shards.

The central actor asks each named system actor for what it already answers (the registry's
status, the ConfigActor's version and event log, the alert actor's open alerts and delivery
counters, each anomaly shard's points and events) at every refresh, so none of them needs an
exporter of its own, and one scrape of
``/metrics`` shows the whole system. Tick latencies travel the other way: the alert actor and
the registry record each tick as a histogram through the metrics pipeline. Names follow
Prometheus' conventions: ``_total`` counters, base units, one HELP per metric.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

import ray
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ray_enterprise import _kv

NAMESPACE = _kv.NAMESPACE
ALERT_ACTOR = "alertmanager"  # alerts.actor.ACTOR_NAME; that module sits above this one
CONFIG_ACTOR = "config"
TIMEOUT_S = 5.0
#: Recorded by the alert actor and the registry through the metrics pipeline, once per tick.
ALERT_TICK_METRIC = "ray_enterprise_alert_tick_duration_seconds"
REGISTRY_TICK_METRIC = "ray_enterprise_registry_tick_duration_seconds"


async def _ask(actor: str, method: str, *args: Any) -> Any:
    """``actor.method(*args)``, or ``None`` when it does not run or answer in time."""
    with contextlib.suppress(Exception):
        handle = ray.get_actor(actor, namespace=NAMESPACE)
        return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout=TIMEOUT_S)
    return None


async def firing_alerts() -> dict[str, list[str]] | None:
    """The alert actor's firing alerts by severity, asked at every refresh so the health
    score is as live as the alerts; ``None`` (the input is unknown) when it does not answer."""
    found: dict[str, list[str]] | None = await _ask(ALERT_ACTOR, "firing")
    return found


class SystemFigures:
    """The latest figures of the system actors; counters are kept here, from event logs."""

    def __init__(self) -> None:
        self.registry: Mapping[str, Any] | None = None
        self.config_version: int | None = None
        self.config_events: Counter[str] = Counter()
        self._config_seq = 0
        self._config_actor: str | None = None
        self.alerts: list[dict[str, Any]] | None = None
        self.handlers: dict[str, dict[str, Any]] | None = None
        #: The shards' ``stats()`` as the central actor last read them (it feeds them).
        self.anomaly_shards: list[Mapping[str, Any]] | None = None

    async def refresh(self, registry_status: Mapping[str, Any] | None) -> None:
        self.registry = registry_status
        with contextlib.suppress(Exception):
            config = ray.get_actor(CONFIG_ACTOR, namespace=NAMESPACE)._actor_id.hex()
            if config != self._config_actor:  # a new ConfigActor numbers its events anew
                self._config_actor, self._config_seq = config, 0
        version, events, alerts, handlers = await asyncio.gather(
            _ask(CONFIG_ACTOR, "current_version"),
            _ask(CONFIG_ACTOR, "events", self._config_seq),
            _ask(ALERT_ACTOR, "alerts"),
            _ask(ALERT_ACTOR, "handler_stats"),
        )
        self.config_version = version
        for event in events or []:
            self._config_seq = max(self._config_seq, int(event.get("seq", 0)))
            self.config_events[str(event.get("kind"))] += 1
        self.alerts, self.handlers = alerts, handlers

    def families(self) -> list[Metric]:
        return [*self._registry(), *self._config(), *self._alerts(), *self._anomaly()]

    def _registry(self) -> list[Metric]:
        restarts = CounterMetricFamily(
            "ray_enterprise_registry_service_restarts",
            "restarts of each service by the registry (crashes and failed health checks)",
            labels=["service_name"],
        )
        states = GaugeMetricFamily(
            "ray_enterprise_registry_services",
            "services the registry holds, by state",
            labels=["state"],
        )
        by_state: Counter[str] = Counter()
        for service in (self.registry or {}).get("services", []):
            restarts.add_metric([str(service["name"])], float(service.get("restarts", 0)))
            by_state[str(service.get("state"))] += 1
        for state, count in sorted(by_state.items()):
            states.add_metric([state], count)
        return [restarts, states]

    def _config(self) -> list[Metric]:
        version = GaugeMetricFamily(
            "ray_enterprise_config_version", "the configuration version running now"
        )
        if self.config_version is not None:
            version.add_metric([], self.config_version)
        applied = CounterMetricFamily(
            "ray_enterprise_config_versions_applied",
            "configuration versions applied (rollbacks included) since this actor started",
        )
        applied.add_metric([], self.config_events["applied"] + self.config_events["rolled_back"])
        rejected = CounterMetricFamily(
            "ray_enterprise_config_rejections",
            "configuration changes refused by validation or compliance",
        )
        rejected.add_metric([], self.config_events["rejected"])
        return [version, applied, rejected]

    def _alerts(self) -> list[Metric]:
        alerts = GaugeMetricFamily(
            "ray_enterprise_alerts",
            "open alerts by state (firing, acknowledged, suppressed) and severity",
            labels=["state", "severity"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for view in self.alerts or []:
            state = "suppressed" if view.get("suppressed") else str(view.get("state"))
            counts[(state, str(view.get("severity")))] += 1
        for (state, severity), count in sorted(counts.items()):
            alerts.add_metric([state, severity], count)
        sent = CounterMetricFamily(
            "ray_enterprise_alert_notifications",
            "notifications by handler and outcome (sent, failed, timed_out)",
            labels=["handler", "outcome"],
        )
        for name, stats in sorted((self.handlers or {}).items()):
            for outcome in ("sent", "failed", "timed_out"):
                sent.add_metric([name, outcome], float(stats.get(outcome, 0)))
        return [alerts, sent]

    def _anomaly(self) -> list[Metric]:
        # Counters rather than the rate itself, so any window's rate is one PromQL division;
        # a restarted shard counts from zero again, which Prometheus' increase() allows for.
        points = CounterMetricFamily(
            "ray_enterprise_anomaly_points",
            "points the anomaly shards scored, by shard",
            labels=["shard"],
        )
        events = CounterMetricFamily(
            "ray_enterprise_anomaly_events",
            "points the anomaly shards flagged anomalous, by shard",
            labels=["shard"],
        )
        for stats in self.anomaly_shards or []:
            shard = [str(stats.get("shard"))]
            points.add_metric(shard, float(stats.get("points", 0)))
            events.add_metric(shard, float(stats.get("events", 0)))
        return [points, events]
