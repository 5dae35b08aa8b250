"""Faults raise alerts that resolve on recovery: real processes killed with SIGKILL on the
session's Ray, real batches of bad points; the alert actor's history is read back.

Waits are conditions with deadlines; no sleep is a timing assertion.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
from ray_enterprise.alerts.manager import wall_clock_ms
from ray_enterprise.config.actor import get_config_handle
from ray_enterprise.observability.metric_batch import MetricBatch, MetricType, SeriesPoints
from ray_enterprise.observability.platform import boot_observability
from tests.integration.helpers import faulty, states
from tests.support import wait_for

FAST_ROUTE = {"handlers": [], "group_wait": 0, "group_interval": "100ms"}  # notify nobody


@pytest.fixture
def start_alerts(ray_session: None, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Boots the alert actor with the given settings and a SQLite file in ``tmp_path``."""
    remove_alert_actor()

    def start(**settings: Any) -> Any:
        settings.setdefault("db_url", f"sqlite:///{tmp_path / 'alerts.db'}")
        settings.setdefault("route", FAST_ROUTE)
        return get_alert_handle(create=True, settings=settings)

    yield start
    remove_alert_actor()


def episodes(actor: Any, alertname: str, **labels: str) -> list[tuple[str, int]]:
    """(kind, at) of every fired and resolved change of ``alertname`` with ``labels``."""
    return [
        (row["kind"], row["at"])
        for row in ray.get(actor.history.remote())
        if row["alertname"] == alertname
        and row["kind"] in ("fired", "resolved")
        and all(row["labels"].get(k) == v for k, v in labels.items())
    ]


def fired_then_resolved(rows: list[tuple[str, int]], times: int) -> bool:
    return [kind for kind, _ in rows] == ["fired", "resolved"] * times


def test_each_sigkill_of_a_service_fires_service_restarting_and_recovery_resolves_it(
    start_alerts: Callable[..., Any], registry: Any
) -> None:
    actor = start_alerts()
    registry.register_app_sync([faulty("leaf")])
    registry.start_all_sync(timeout_s=60)
    for kill in (1, 2):
        pid = ray.get(registry.get_service_sync("leaf", wait_s=30).pid.remote())
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda n=kill: fired_then_resolved(  # type: ignore[misc]
                episodes(actor, "ServiceRestarting", service="leaf"), n
            ),
            timeout=120,
            what=f"ServiceRestarting fired and resolved for kill {kill}",
        )
        assert states(registry)["leaf"] == "healthy"
        assert ray.get(registry.get_service_sync("leaf").pid.remote()) != pid
    assert [a for a in ray.get(actor.alerts.remote()) if a["labels"]["service"] == "leaf"] == []


def test_a_sigkilled_config_actor_fires_system_actor_restarted_and_resolves_it_when_back(
    start_alerts: Callable[..., Any],
) -> None:
    actor = start_alerts()
    config = get_config_handle(create=True)
    version = ray.get(config.ready.remote(), timeout=120)
    pid = ray.get(config.pid.remote())
    os.kill(pid, signal.SIGKILL)
    rows = wait_for(
        lambda: (
            fired_then_resolved(
                found := episodes(actor, "SystemActorRestarted", service="config"), 1
            )
            and found
        ),
        timeout=120,
        what="SystemActorRestarted of config fired and resolved",
    )
    (_, fired_at), (_, resolved_at) = rows
    assert resolved_at >= fired_at  # the episode spans the recovery
    # Back and serving at the version it had, for the tests after this one.
    assert ray.get(config.ready.remote(), timeout=120) == version
    assert ray.get(config.pid.remote()) != pid


def test_a_batch_of_nan_values_and_bad_names_fires_metrics_refused_until_quiet(
    start_alerts: Callable[..., Any],
) -> None:
    actor = start_alerts(metrics_refused_quiet="2s")
    central = boot_observability()
    nan = np.array([1.0, float("nan")])
    batch = MetricBatch(
        ts_ms=wall_clock_ms(),
        series=[
            SeriesPoints("fault alerts bad name", MetricType.GAUGE, (), np.array([1.0])),
            SeriesPoints("fault_alerts_nan", MetricType.GAUGE, (), nan),
        ],
    )
    ray.get(central.ingest.remote(batch))

    def refused_alerts() -> set[str]:
        return {
            a["labels"]["reason"]
            for a in ray.get(actor.alerts.remote())
            if a["labels"]["alertname"] == "MetricsRefused"
        }

    wait_for(
        lambda: {"invalid_name", "nan"} <= refused_alerts(),
        timeout=60,
        what="MetricsRefused for invalid_name and nan",
    )
    wait_for(
        lambda: not ({"invalid_name", "nan"} & refused_alerts()),
        timeout=60,
        what="MetricsRefused resolved after the quiet period",
    )
    for reason in ("invalid_name", "nan"):
        kinds = [kind for kind, _ in episodes(actor, "MetricsRefused", reason=reason)]
        assert kinds[-2:] == ["fired", "resolved"]
    # Refused, counted, and nothing corrupt stored: the NaN series holds only its good point.
    assert ray.get(central.series.remote("fault alerts bad name")) == []
    [kept] = ray.get(central.series.remote("fault_alerts_nan"))
    assert kept["total_sum"] == 1.0
    counts = ray.get(central.refusals.remote())["counts"]
    assert counts["fault_alerts_nan:nan"] >= 1


def test_a_sigkilled_alert_actor_records_its_own_restart_and_recovery(
    start_alerts: Callable[..., Any],
) -> None:
    actor = start_alerts()
    pid = ray.get(actor.pid.remote())
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: fired_then_resolved(
            episodes(actor, "SystemActorRestarted", service="alertmanager"), 1
        ),
        timeout=120,
        what="the alert actor's own SystemActorRestarted in its history",
    )
    assert ray.get(actor.pid.remote()) != pid


def test_a_registry_killed_with_its_service_reports_both_restarts_when_it_is_back(
    start_alerts: Callable[..., Any], registry: Any
) -> None:
    actor = start_alerts()
    registry.register_app_sync([faulty("leaf")])
    registry.start_all_sync(timeout_s=60)
    service_pid = ray.get(registry.get_service_sync("leaf").pid.remote())
    registry_handle = ray.get_actor("registry", namespace="ray_enterprise")
    registry_pid = ray.get(registry_handle.pid.remote())
    os.kill(service_pid, signal.SIGKILL)
    os.kill(registry_pid, signal.SIGKILL)  # whatever it told before dying, or not
    wait_for(
        lambda: fired_then_resolved(episodes(actor, "SystemActorRestarted", service="registry"), 1),
        timeout=120,
        what="the registry's SystemActorRestarted fired and resolved",
    )
    # Each restart is one episode; under load the recovering registry may restart leaf more
    # than once, so: at least one, every one resolved, none left open.
    wait_for(
        lambda: (
            any(
                fired_then_resolved(episodes(actor, "ServiceRestarting", service="leaf"), n)
                for n in (1, 2, 3)
            )
            and states(registry)["leaf"] == "healthy"
        ),
        timeout=120,
        what="the restarted registry restarting leaf, and telling it",
    )
    assert states(registry)["leaf"] == "healthy"
    assert ray.get(registry_handle.pid.remote()) != registry_pid
    assert [a for a in ray.get(actor.alerts.remote()) if a["labels"]["service"] == "leaf"] == []
