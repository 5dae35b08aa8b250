"""Where a replica may go under ``actor.max_replicas_per_node`` (Ray Serve's option). No Ray."""

from __future__ import annotations

from collections import Counter

from ray_enterprise.registry.placement import node_with_room


def test_a_replica_goes_to_the_node_with_the_fewest_of_its_service() -> None:
    assert node_with_room(["a", "b", "c"], Counter({"a": 2, "b": 1}), 3) == "c"
    assert node_with_room(["a", "b"], Counter({"a": 1, "b": 1}), 3) == "a"  # ties: by name


def test_a_full_node_takes_no_more_and_with_every_node_full_the_replica_waits() -> None:
    assert node_with_room(["a", "b"], Counter({"a": 1}), 1) == "b"
    assert node_with_room(["a", "b"], Counter({"a": 1, "b": 1}), 1) is None
    assert node_with_room([], Counter(), 1) is None  # no live node at all


def test_replicas_on_nodes_that_are_not_candidates_do_not_count() -> None:
    # A replica on a dead or suspected node holds no room on the live ones.
    assert node_with_room(["b"], Counter({"a": 5}), 1) == "b"
