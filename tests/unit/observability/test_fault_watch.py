"""NodeLost and MetricsRefused decisions of the central actor, from what it reads each period."""

from __future__ import annotations

import doctest

from ray_enterprise.observability import fault_watch
from ray_enterprise.observability.fault_watch import NodeWatch, RefusalWatch


def told(inputs: list) -> list[tuple[str, bool]]:  # type: ignore[type-arg]
    return [(i.node, i.lost) for i in inputs]


def test_the_first_look_only_learns_the_nodes() -> None:
    assert NodeWatch().observe(["a", "b", "c"]) == []


def test_a_lost_node_fires_once_and_resolves_when_it_comes_back() -> None:
    watch = NodeWatch()
    watch.observe(["a", "b", "c"])
    [lost] = watch.observe(["a", "b"])
    assert (lost.node, lost.lost, lost.alive, lost.needed) == ("c", True, 2, 3)
    assert watch.observe(["a", "b"]) == []  # still gone: no second alert
    assert told(watch.observe(["a", "b", "c"])) == [("c", False)]
    assert watch.lost == {}


def test_another_node_restoring_the_capacity_resolves_the_loss() -> None:
    watch = NodeWatch()
    watch.observe(["a", "b"])
    assert told(watch.observe(["a"])) == [("b", True)]
    assert told(watch.observe(["a", "d"])) == [("b", False)]


def test_each_loss_waits_for_the_capacity_it_took_away() -> None:
    watch = NodeWatch()
    watch.observe(["a", "b", "c"])
    assert told(watch.observe(["a", "b"])) == [("c", True)]  # needs 3 again
    assert told(watch.observe(["a"])) == [("b", True)]  # needs 2 again
    assert told(watch.observe(["a", "x"])) == [("b", False)]
    assert watch.lost == {"c": 3}
    assert told(watch.observe(["a", "x", "y"])) == [("c", False)]


def test_two_nodes_lost_at_once_fire_two_alerts() -> None:
    watch = NodeWatch()
    watch.observe(["a", "b", "c"])
    assert told(watch.observe(["a"])) == [("b", True), ("c", True)]
    assert told(watch.observe(["a", "b", "c"])) == [("b", False), ("c", False)]


def test_a_restarted_watch_resolves_what_it_raised_and_sees_losses_while_it_was_down() -> None:
    watch = NodeWatch()
    watch.observe(["a", "b", "c"])
    watch.observe(["a", "b"])
    again = NodeWatch(watch.to_state())
    assert told(again.observe(["a"])) == [("b", True)]  # lost while the actor restarted
    assert told(again.observe(["a", "b", "c"])) == [("b", False), ("c", False)]


def test_new_refusals_fire_one_input_per_reason() -> None:
    watch = RefusalWatch({("old", "nan"): 5})
    counts = {("old", "nan"): 5, ("bad name", "invalid_name"): 2, ("per_user", "cardinality"): 1}
    messages = {("bad name", "invalid_name"): "metric name 'bad name' is invalid"}
    inputs = watch.observe(counts, messages)
    assert [(i.reason, i.points, i.metrics, i.message) for i in inputs] == [
        ("cardinality", 1, ("per_user",), ""),
        ("invalid_name", 2, ("bad name",), "metric name 'bad name' is invalid"),
    ]
    assert watch.observe(counts) == []  # nothing new: nothing told, the alert will expire
    counts[("old", "nan")] = 7
    counts[("g", "nan")] = 4
    [nan] = watch.observe(counts)
    assert (nan.reason, nan.points, nan.metrics) == ("nan", 6, ("g", "old"))


def test_the_module_example_runs() -> None:
    assert doctest.testmod(fault_watch).failed == 0
