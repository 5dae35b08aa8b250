"""A rollback runs the real secrets of the version it returns to, never their masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from actor_support import config_actor

from ray_enterprise.config.client import ConfigOrchestrator
from ray_enterprise.config.merge import reveal
from ray_enterprise.config.sealing import SealError
from ray_enterprise.config.settings import ConfigSettings

OLD_URL = "redis://:old-p@ss@redis:6379/0"  # an '@' inside the password too
NEW_URL = "redis://:new-pass@redis:6379/0"


def test_rollback_restores_a_url_password_and_a_list_of_secrets_of_that_version(
    ray_session: None, tmp_path: Path
) -> None:
    history = tmp_path / "history.db"
    settings = ConfigSettings(
        database_url=f"sqlite:///{tmp_path / 's.db'}", history_url=f"sqlite:///{history}"
    )
    with config_actor(settings) as config:
        orchestrator = ConfigOrchestrator(config)
        orchestrator.set_sync("services.billing.redis_url", OLD_URL)
        v3 = orchestrator.set_sync("services.billing.api_keys", ["old-k1", "old-k2"])
        orchestrator.set_sync("services.billing.redis_url", NEW_URL)
        orchestrator.set_sync("services.billing.api_keys", ["new-k1"])

        orchestrator.rollback_sync(v3)
        running = reveal(ray.get(config.get.remote("services.billing")))
        assert running == {"redis_url": OLD_URL, "api_keys": ["old-k1", "old-k2"]}
        shown = str(ray.get(config.show.remote("services.billing"))["value"])
        assert "old-p@ss" not in shown and "ss@redis" not in shown and "old-k1" not in shown
    assert b"old-p@ss" not in history.read_bytes()  # sealed: the key lives elsewhere


def test_rollback_to_a_version_recorded_without_its_secrets_is_refused(
    ray_session: None, tmp_path: Path
) -> None:
    from sqlalchemy import delete

    from ray_enterprise.storage import config_version_secrets, make_engine

    history = f"sqlite:///{tmp_path / 'history.db'}"
    settings = ConfigSettings(database_url=f"sqlite:///{tmp_path / 's.db'}", history_url=history)
    with config_actor(settings) as config:
        orchestrator = ConfigOrchestrator(config)
        v2 = orchestrator.set_sync("services.billing.redis_url", OLD_URL)
        orchestrator.set_sync("services.billing.redis_url", NEW_URL)
        engine = make_engine(history, create=False)
        with engine.begin() as conn:  # as a version recorded before sealing existed
            conn.execute(delete(config_version_secrets))
        engine.dispose()
        before = ray.get(config.current_version.remote())
        with pytest.raises(SealError, match=f"version {v2} was recorded without its secrets"):
            orchestrator.rollback_sync(v2)
        assert ray.get(config.current_version.remote()) == before
        running = reveal(ray.get(config.get.remote("services.billing")))
        assert running == {"redis_url": NEW_URL}
