"""The demo cache takes the config's ``cache`` section live, on the session's real Ray: each
test changes one setting through a real ConfigActor and shows what the service does with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

import ray_enterprise
from ray_enterprise.config.client import ConfigOrchestrator
from ray_enterprise.config.settings import ConfigSettings
from ray_enterprise.spec import ServiceSpec
from tests.integration.config.actor_support import config_actor
from tests.support import wait_for

Registry = ray_enterprise.EnterpriseServiceRegistry


@pytest.fixture
def cached(registry: Registry, tmp_path: Path) -> Iterator[Any]:
    """The store and a cache on ``config_section: cache``, with a fresh ConfigActor."""
    with config_actor(ConfigSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}")) as handle:
        config = ConfigOrchestrator(handle)
        registry.register_app_sync(
            [
                ServiceSpec.model_validate(
                    {"name": "database", "class": "ray_enterprise.examples.store:KeyValueStore"}
                ),
                ServiceSpec.model_validate(
                    {
                        "name": "cache",
                        "class": "ray_enterprise.examples.cache:CacheService",
                        "depends_on": ["database"],
                        "config_section": "cache",
                    }
                ),
            ]
        )
        registry.start_all_sync(timeout_s=60)
        cache = registry.get_service_sync("cache")
        store = registry.get_service_sync("database")
        wait_for(lambda: tiers(cache) == ["l1", "l2"], what="the cache section at start")
        ray.get(cache.invalidate.remote())  # the disk tier outlives processes: start empty
        yield cache, store, config


def tiers(cache: Any) -> list[str]:
    return sorted(ray.get(cache.stats.remote())["tiers"])


def stats(cache: Any) -> dict[str, Any]:
    result: dict[str, Any] = ray.get(cache.stats.remote())
    return result


def applied(cache: Any, config: ConfigOrchestrator, key: str, value: Any) -> None:
    version = config.set_sync(key, value)
    wait_for(
        lambda: ray.get(cache.__ray_call__.remote(lambda self: self.config_version)) >= version,
        what=f"{key}={value!r} applied",
    )


def test_stampede_protection_turns_concurrent_misses_into_one_store_read(cached: Any) -> None:
    cache, store, config = cached
    ray.get(store.put.remote("hot", "v"))
    before = stats(cache)["store_reads"]
    assert set(ray.get([cache.get.remote("hot") for _ in range(30)])) == {"v"}
    protected = stats(cache)["store_reads"] - before
    applied(cache, config, "cache.stampede_protection", False)
    ray.get(cache.invalidate.remote())
    before = stats(cache)["store_reads"]
    assert set(ray.get([cache.get.remote("hot") for _ in range(30)])) == {"v"}
    unprotected = stats(cache)["store_reads"] - before
    assert protected == 1
    assert unprotected > 1  # concurrent misses each went to the store


def test_write_back_answers_before_the_store_has_it_and_flushes_after(cached: Any) -> None:
    cache, store, config = cached
    assert isinstance(ray.get(cache.put.remote("w", 1)), int)  # write_through: the version
    applied(cache, config, "cache.write_policy", "write_back")
    assert ray.get(cache.put.remote("w", 2)) is None
    assert ray.get(cache.get.remote("w")) == 2
    wait_for(lambda: ray.get(store.get.remote("w")) == 2, what="the write to reach the store")
    assert stats(cache)["write_back_pending"] == 0


def test_tiers_bounds_and_disable_take_effect_live(cached: Any) -> None:
    cache, _, config = cached
    for i in range(5):
        ray.get(cache.put.remote(f"k{i}", i))
    assert stats(cache)["tiers"]["l1"]["items"] == 5
    applied(cache, config, "cache.tiers.l1.max_items", 2)
    for i in range(5):
        ray.get(cache.put.remote(f"k{i}", i))
    assert stats(cache)["tiers"]["l1"]["items"] == 2
    assert stats(cache)["tiers"]["l2"]["items"] == 5  # the disk tier kept its own bound
    applied(cache, config, "cache.enabled", False)
    assert stats(cache)["tiers"] == {}
    before = stats(cache)["store_reads"]
    ray.get(cache.get.remote("k1"))
    ray.get(cache.get.remote("k1"))
    assert stats(cache)["store_reads"] - before == 2  # nothing kept: every read is the store's
