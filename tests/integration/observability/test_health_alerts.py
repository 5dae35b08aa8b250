"""The health score takes the alert actor's firing alerts, live, on the session's real Ray."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
from ray_enterprise.observability.platform import (
    EnterpriseObservabilityPlatform,
    boot_observability,
)
from tests.support import wait_for

NAMED = 'LedgerCorrupt{service="ledger-h"}'


@pytest.fixture
def alerts(ray_session: None, tmp_path: Path) -> Iterator[Any]:
    remove_alert_actor()
    # Routed nowhere: this test is about the score, not about notifications.
    handle = get_alert_handle(
        create=True,
        settings={"db_url": f"sqlite:///{tmp_path / 'a.db'}", "route": {"handlers": []}},
    )
    yield handle
    remove_alert_actor()


def signal(firing: bool) -> dict[str, Any]:
    return {
        "labels": {"alertname": "LedgerCorrupt", "service": "ledger-h"},
        "severity": "critical",
        "firing": firing,
    }


def test_a_critical_alert_lowers_the_score_naming_it_and_its_resolve_restores_it(
    alerts: Any,
) -> None:
    platform = EnterpriseObservabilityPlatform(boot_observability())
    before = platform.get_system_health()
    assert not any(NAMED in r for r in before["reasons"])

    ray.get(alerts.ingest.remote([signal(True)]))
    lowered = platform.get_system_health()  # no report call: the score asks the alert actor
    [reason] = [r for r in lowered["reasons"] if NAMED in r]
    assert reason.startswith(("1 critical alert firing", "2 critical alerts", "3 critical"))
    assert lowered["components"]["alerts_critical"] <= -25.0
    assert lowered["score"] <= before["score"] - 25.0 or lowered["score"] == 0.0

    ray.get(alerts.ingest.remote([signal(False)]))
    restored = platform.get_system_health()
    assert not any(NAMED in r for r in restored["reasons"])
    assert restored["score"] == before["score"]
    # The periodic refresh exports the same figure to Prometheus.
    wait_for(
        lambda: (
            f"ray_enterprise_health_score {restored['score']}"
            in ray.get(platform.handle.exposition.remote()).decode()
        ),
        timeout=30,
        what="the restored score in the exposition",
    )
