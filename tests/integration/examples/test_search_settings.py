"""The demo search takes the config's ``search`` section live, on the session's real Ray: each
setting is changed through a real ConfigActor and its effect seen in what ``search`` answers."""

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
EXAMPLES = "ray_enterprise.examples"


def spec(name: str, cls: str, *deps: str, **fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {"name": name, "class": f"{EXAMPLES}.{cls}", "depends_on": list(deps), **fields}
    )


@pytest.fixture
def searching(registry: Registry, tmp_path: Path) -> Iterator[Any]:
    """store, cache and search (``config_section: search``) with a fresh ConfigActor."""
    with config_actor(ConfigSettings(database_url=f"sqlite:///{tmp_path / 'c.db'}")) as handle:
        registry.register_app_sync(
            [
                spec("database", "store:KeyValueStore"),
                spec("cache", "cache:CacheService", "database"),
                spec("search", "search:SearchService", "database", "cache",
                     config_section="search"),
            ]
        )  # fmt: skip
        registry.start_all_sync(timeout_s=60)
        search = registry.get_service_sync("search")
        store = registry.get_service_sync("database")
        config = ConfigOrchestrator(handle)
        wait_for(lambda: version_of(search) >= 1, what="the search section at start")
        yield search, store, config


def version_of(search: Any) -> int:
    return int(ray.get(search.__ray_call__.remote(lambda self: self.config_version)))


def applied(search: Any, config: ConfigOrchestrator, key: str, value: Any) -> None:
    version = config.set_sync(key, value)
    wait_for(lambda: version_of(search) >= version, what=f"{key}={value!r} applied")


def titles(search: Any, query: str, k: int | None = None) -> list[str]:
    return [hit["title"] for hit in ray.get(search.search.remote(query, k))]


def test_limits_query_cache_timeout_and_enabled(searching: Any) -> None:
    search, _, config = searching
    query = "the a of and to"  # in nearly every document
    assert len(titles(search, query)) == 10  # default_limit
    applied(search, config, "search.default_limit", 3)
    assert len(titles(search, query)) == 3
    applied(search, config, "search.max_limit", 5)
    with pytest.raises(ray.exceptions.RayTaskError, match=r"outside 1..search.max_limit \(5\)"):
        titles(search, query, 6)

    hits = ray.get(search.stats.remote())["query_cache_hits"]
    titles(search, query)
    titles(search, query)  # answered from the query cache (60 s by default)
    assert ray.get(search.stats.remote())["query_cache_hits"] == hits + 1
    applied(search, config, "search.query_cache_ttl_seconds", 0)
    titles(search, query)
    titles(search, query)
    assert ray.get(search.stats.remote())["query_cache_hits"] == hits + 1

    applied(search, config, "search.timeout_seconds", 1e-9)
    with pytest.raises(ray.exceptions.RayTaskError, match=r"search.timeout_seconds"):
        titles(search, "cluster")
    applied(search, config, "search.timeout_seconds", 5)
    assert titles(search, "cluster")

    applied(search, config, "search.enabled", False)
    with pytest.raises(ray.exceptions.RayTaskError, match=r"search.enabled: false"):
        titles(search, query)


def test_index_name_hybrid_and_reranking(searching: Any) -> None:
    search, store, config = searching
    docs = {
        "scattered": "the service went down; later a restart of the cache helped",
        "phrase": "a cache restart is cheap",
        "other": "placement of replicas across nodes",
    }
    for key, body in docs.items():
        ray.get(store.put.remote(f"probe:{key}", {"id": key, "title": key, "body": body}))
    applied(search, config, "search.index_name", "probe")  # re-indexes from probe:*
    assert ray.get(search.stats.remote())["documents"] == 3
    assert set(titles(search, "cache restart")) == {"scattered", "phrase"}

    assert titles(search, "plasement replcas") == []  # misspelt: BM25 finds nothing
    applied(search, config, "search.hybrid", True)
    assert titles(search, "plasement replcas")[0] == "other"

    applied(search, config, "search.hybrid", False)
    applied(search, config, "search.query_cache_ttl_seconds", 0)
    applied(search, config, "search.reranking_enabled", True)
    assert titles(search, "cache restart")[0] == "phrase"  # the words side by side
