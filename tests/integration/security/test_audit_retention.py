"""Audit retention on the session's real Ray: the alert actor cuts the trail in its database
by the ``security.audit_retention_days`` the ConfigActor holds, and the chain verifies across
the cut."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml

from ray_enterprise.alerts.actor import get_alert_handle, remove_alert_actor
from ray_enterprise.config.actor import get_config_handle, remove_config_actor
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.security.audit import platform_audit_log
from ray_enterprise.security.audit_retention import DAY_S
from ray_enterprise.storage import make_engine
from tests.support import FakeClock

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def configured(ray_session: None, tmp_path: Path) -> Iterator[Path]:
    """A ConfigActor whose security section keeps the trail 45 days (the default is 30)."""
    app = tmp_path / "app.yaml"
    app.write_text(yaml.safe_dump({"security": {"audit_retention_days": 45}}))
    remove_config_actor()
    remove_alert_actor()
    get_config_handle(
        create=True,
        settings=ConfigSettings(
            files=(str(app),), history_url=f"sqlite:///{tmp_path / 'history.db'}"
        ),
    )
    yield tmp_path
    remove_alert_actor()
    remove_config_actor()


def test_the_alert_actor_cuts_the_trail_by_the_configured_days(configured: Path) -> None:
    url = f"sqlite:///{configured / 'alerts.db'}"
    engine = make_engine(url, create=False)
    clock = FakeClock(1_700_000_000.0)
    now = time.time()
    writer = platform_audit_log(engine, clock=clock)
    for age_days in (60, 50, 40, 35):  # two past 45 days, two within (all past 30)
        clock.now = now - age_days * DAY_S
        writer.append("ops", "config.set", target=f"{age_days}d ago")
    actor = get_alert_handle(create=True, settings={"db_url": url})
    # The actor's hourly loop also runs once at boot: whichever run cut, the trail shows it.
    answer = ray.get(actor.apply_audit_retention.remote(), timeout=120)
    assert answer["days"] == 45 and answer["deleted"] in (0, 2)
    log = platform_audit_log(engine)
    report = log.verify()
    assert report.ok, report.problems
    assert report.anchored_at == 2 and report.checkpoint is not None
    kept = [(r.kind, r.action, r.target) for r in log.records()]
    assert kept[0] == ("anchor", "audit.anchor", "")
    assert [k[2] for k in kept[1:3]] == ["40d ago", "35d ago"]  # 30 days would cut them too
    assert kept[-1][:2] == ("record", "audit.retention")
    engine.dispose()
