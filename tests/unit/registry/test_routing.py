"""Choosing a replica, and the route table's wire form. No Ray."""

from __future__ import annotations

from collections import Counter

import pytest

from ray_enterprise.registry.routing import RouteTable, Routing, choose

REPLICAS = ("a", "b", "c")


def test_round_robin_visits_every_replica_evenly() -> None:
    picks = Counter(
        choose(REPLICAS, routing=Routing.ROUND_ROBIN, turn=t, load={}) for t in range(30)
    )
    assert picks == {"a": 10, "b": 10, "c": 10}


def test_least_loaded_picks_the_replica_with_fewest_calls_waiting() -> None:
    load = {"a": 5, "b": 0, "c": 2}
    assert choose(REPLICAS, routing=Routing.LEAST_LOADED, turn=0, load=load) == "b"


def test_least_loaded_ties_rotate_so_no_replica_starves() -> None:
    picks = {choose(REPLICAS, routing=Routing.LEAST_LOADED, turn=t, load={}) for t in range(3)}
    assert picks == set(REPLICAS)


def test_no_replica_is_an_error() -> None:
    with pytest.raises(ValueError, match="no replica"):
        choose((), routing=Routing.ROUND_ROBIN, turn=0, load={})


def test_the_table_round_trips_through_json() -> None:
    table = RouteTable(7, REPLICAS, 0.5, Routing.LEAST_LOADED)
    assert RouteTable.from_json(table.to_json()) == table
