"""Versions as subscribers see them: catching up after being away, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ray
from actor_support import config_actor, eventually

from ray_enterprise.config.actor import NAMESPACE
from ray_enterprise.config.client import ConfigOrchestrator
from ray_enterprise.config.settings import ConfigSettings
from tests.integration.config.config_services import PlainSubscriber


def settings(tmp_path: Path) -> ConfigSettings:
    return ConfigSettings(database_url=f"sqlite:///{tmp_path / 's.db'}")


def test_a_subscriber_that_was_away_gets_what_it_missed_and_nothing_else(
    ray_session: None, tmp_path: Path
) -> None:
    with config_actor(settings(tmp_path)) as config:
        driver = ConfigOrchestrator(config)
        seen: list[tuple[str, int]] = []
        driver.add_change_handler("search", lambda _s, v, ver: seen.append((v.index_name, ver)))
        driver.start_watching_sync()
        eventually(lambda: driver.applied_version("search") == 1, what="the handler's baseline")
        driver.set_sync("search.index_name", "a")  # version 2
        eventually(lambda: seen == [("a", 2)], what="version 2 at the handler")
        driver.stop_watching_sync()  # the handler's process is away ...
        driver.set_sync("search.index_name", "b")
        driver.set_sync("search.index_name", "c")
        driver.set_sync("cache.default_ttl_seconds", 99)  # version 5, another section
        # ... and comes back saying it last applied version 2: it gets the current value once.
        back = ConfigOrchestrator(config)
        caught: list[tuple[str, int]] = []
        back.add_change_handler(
            "search", lambda _s, v, ver: caught.append((v.index_name, ver)), last_version=2
        )
        up_to_date: list[int] = []
        back.add_change_handler("cache", lambda _s, _v, ver: up_to_date.append(ver), last_version=5)
        back.add_change_handler("deployment", lambda _s, _v, ver: up_to_date.append(ver))
        back.start_watching_sync()
        try:
            eventually(lambda: caught == [("c", 4)], what="the missed version")
            eventually(lambda: back.applied_version("deployment") == 1, what="a baseline")
            driver.set_sync("search.index_name", "d")
            eventually(lambda: caught == [("c", 4), ("d", 6)], what="the next change")
            assert up_to_date == []  # it had version 5 of cache already
        finally:
            back.stop_watching_sync()

        # Any named actor can subscribe; one that returns says what it applied.
        plain: Any = ray.remote(PlainSubscriber).options(name="plain-sub").remote()
        ray.get(config.subscribe.remote("search", "plain-sub", NAMESPACE, "apply", 0))
        calls = eventually(lambda: ray.get(plain.calls.remote()), what="the plain subscriber")
        assert [(v.index_name, ver) for _, v, ver in calls] == [("d", 6)]
        ray.kill(plain)
        ray.get(config.set_value.remote("search.index_name", "e"))  # it is dropped, not retried
        # Only its own: the session's alert actor subscribes to the observability section.
        eventually(
            lambda: (
                [s for s in ray.get(config.subscriptions.remote()) if s["actor"] == "plain-sub"]
                == []
            ),
            what="the dead subscriber dropped",
        )


def test_rollback_runs_an_old_version_again_until_a_source_changes(
    ray_session: None, tmp_path: Path
) -> None:
    with config_actor(settings(tmp_path)) as config:
        orchestrator = ConfigOrchestrator(config)
        assert orchestrator.set_sync("cache.default_ttl_seconds", 20) == 2
        assert orchestrator.set_sync("cache.default_ttl_seconds", 30) == 3
        assert orchestrator.rollback_sync(2) == 4
        assert orchestrator.get_sync("cache").default_ttl_seconds == 20
        last = orchestrator.history_sync()[-1]
        assert (last["version"], last["source"]) == (4, "rollback to 2")
        diff = ray.get(config.diff.remote(3, 4))
        assert diff["sections"]["cache"] == [
            {"path": "cache.default_ttl_seconds", "kind": "changed", "old": 30.0, "new": 20.0}
        ]
        # The rollback survives the actor's restart ...
        ray.kill(config, no_restart=False)
        assert ray.get(config.ready.remote(), timeout=60) == 4
        assert orchestrator.get_sync("cache").default_ttl_seconds == 20
        # ... and holds until a source changes: then the sources are the truth again.
        assert orchestrator.set_sync("search.index_name", "x") == 5
        assert orchestrator.get_sync("cache").default_ttl_seconds == 30
        with pytest.raises(Exception, match="no configuration version 99"):
            orchestrator.rollback_sync(99)
