"""Replica bookkeeping: names, readiness, which replica goes first. No Ray."""

from __future__ import annotations

from ray_enterprise.registry.replicas import ReplicaSet, parse_replica_id, replica_id


def test_the_first_replica_keeps_the_single_actor_name() -> None:
    assert replica_id("api", 3) == "svc:api:3"
    assert replica_id("api", 3, 2) == "svc:api:3.2"


def test_names_parse_back_and_others_do_not() -> None:
    assert parse_replica_id("svc:api:3") == ("api", 3, 0)
    assert parse_replica_id("svc:my-api:12.4") == ("my-api", 12, 4)
    assert parse_replica_id("registry") is None
    assert parse_replica_id("svc:api:x") is None
    assert parse_replica_id("svc:api:3.x") is None


def test_new_replicas_take_the_lowest_free_index() -> None:
    rs = ReplicaSet("api")
    a, b, c = rs.add(1), rs.add(1), rs.add(1)
    assert [a.index, b.index, c.index] == [0, 1, 2]
    rs.remove(b.id)
    assert rs.add(1).index == 1
    assert rs.add(2).index == 0  # each generation counts on its own


def test_only_ready_replicas_that_are_not_draining_take_calls() -> None:
    rs = ReplicaSet("api")
    a, b, c = rs.add(1), rs.add(1), rs.add(1)
    assert rs.routes() == []
    assert rs.health_passed(a.id) is True  # became ready: the routes changed
    assert rs.health_passed(a.id) is False
    rs.health_passed(b.id)
    rs.health_passed(c.id)
    c.draining = True
    assert rs.routes() == [a.id, b.id]
    assert [r.id for r in rs.of(1)] == [a.id, b.id]


def test_the_threshold_counts_consecutive_failures() -> None:
    rs = ReplicaSet("api")
    a = rs.add(1)
    assert rs.health_failed(a.id, 2) is False
    rs.health_passed(a.id)
    assert rs.health_failed(a.id, 2) is False
    assert rs.health_failed(a.id, 2) is True


def test_others_up_ignores_itself_and_replicas_not_ready() -> None:
    rs = ReplicaSet("api")
    a, b = rs.add(1), rs.add(1)
    rs.health_passed(a.id)
    assert rs.others_up(a.id, 1) is False  # b is still starting
    rs.health_passed(b.id)
    assert rs.others_up(a.id, 1) is True
    assert rs.others_up(a.id, 2) is False


def test_scale_down_takes_starting_replicas_first_then_the_highest_index() -> None:
    rs = ReplicaSet("api")
    replicas = [rs.add(1) for _ in range(4)]
    for r in replicas[:3]:
        rs.health_passed(r.id)
    assert [r.index for r in rs.to_retire(1, 2)] == [3, 2]
    assert rs.shortfall(1, 2) == -2
    assert rs.shortfall(1, 6) == 2


def test_a_restarted_registry_adopts_only_its_services_replicas() -> None:
    rs = ReplicaSet("api")
    adopted = rs.adopt(["svc:api:2", "svc:api:2.1", "svc:db:2", "junk"])
    assert [(r.generation, r.index, r.ready) for r in adopted] == [(2, 0, True), (2, 1, True)]
    assert rs.routes() == ["svc:api:2", "svc:api:2.1"]


def test_a_pending_replica_is_listed_takes_no_calls_and_is_retired_first() -> None:
    replicas = ReplicaSet("api")
    placed, waiting = replicas.add(1), replicas.add(1)
    placed.ready = True
    waiting.pending = True  # no node had room for it (max_replicas_per_node)
    assert replicas.pending() == [waiting.id]
    assert replicas.routes() == [placed.id]
    assert replicas.to_retire(1, 1) == [waiting]
