from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ray_enterprise.errors import DependencyCycleError, UnknownDependencyError
from ray_enterprise.registry.graph import DependencyGraph

DEMO = {
    "database": [],
    "cache": ["database"],
    "search": ["database", "cache"],
    "api": ["search", "cache"],
    "worker": ["database", "search"],
    "exporter": ["api", "worker", "cache"],
}


def test_levels_put_each_service_after_all_its_dependencies() -> None:
    graph = DependencyGraph(DEMO)
    assert graph.levels() == (
        ("database",),
        ("cache",),
        ("search",),
        ("api", "worker"),
        ("exporter",),
    )


def test_shutdown_levels_are_the_start_levels_reversed() -> None:
    graph = DependencyGraph(DEMO)
    assert graph.shutdown_levels()[0] == ("exporter",)
    assert graph.shutdown_levels()[-1] == ("database",)


def test_dependents_are_transitive_and_in_start_order() -> None:
    graph = DependencyGraph(DEMO)
    assert graph.dependents("cache") == ("search", "api", "worker", "exporter")
    assert graph.dependents("cache", transitive=False) == ("api", "exporter", "search")
    assert graph.dependents("exporter") == ()


def test_cycle_error_prints_the_path() -> None:
    with pytest.raises(DependencyCycleError) as info:
        DependencyGraph({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
    assert info.value.path == ("a", "b", "c", "a")
    assert "a -> b -> c -> a" in str(info.value)


def test_unknown_dependency_names_service_and_dependency() -> None:
    with pytest.raises(UnknownDependencyError) as info:
        DependencyGraph({"api": ["search"], "cache": []})
    assert info.value.service == "api"
    assert info.value.dependency == "search"
    assert "api -> search" in str(info.value)
    assert info.value.field == "depends_on"


@given(st.integers(min_value=1, max_value=30), st.randoms(use_true_random=False))
def test_random_dags_start_dependencies_first(n: int, rnd: object) -> None:
    import random

    assert isinstance(rnd, random.Random)
    names = [f"s{i}" for i in range(n)]
    deps = {
        name: rnd.sample(names[:i], k=rnd.randint(0, min(3, i))) for i, name in enumerate(names)
    }
    graph = DependencyGraph(deps)
    position = {name: i for i, level in enumerate(graph.levels()) for name in level}
    assert set(position) == set(names)
    for name, ds in deps.items():
        for dep in ds:
            assert position[dep] < position[name]
