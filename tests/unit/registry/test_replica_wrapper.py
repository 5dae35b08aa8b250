"""The Ray options of a replica actor, and the reasons the wrapper gives: no cluster needed."""

from __future__ import annotations

from typing import Any

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ray_enterprise.registry.replica_wrapper import actor_options, death_reason, error_text
from ray_enterprise.spec import ServiceSpec


def spec(**actor: Any) -> ServiceSpec:
    return ServiceSpec.model_validate({"name": "api", "class": "pkg.mod:Cls", "actor": actor})


def test_a_replica_is_detached_named_and_never_restarted_by_ray() -> None:
    options = actor_options(spec(num_cpus=0.5, spread=False), "svc:api:3", None)
    assert options["name"] == "svc:api:3" and options["lifetime"] == "detached"
    assert options["max_restarts"] == 0 and options["num_cpus"] == 0.5
    assert "scheduling_strategy" not in options


def test_spreading_pins_to_the_chosen_node_or_lets_ray_spread() -> None:
    node = "ab" * 28  # a node id is hex
    pinned = actor_options(spec(spread=True), "svc:api:3", node)["scheduling_strategy"]
    assert isinstance(pinned, NodeAffinitySchedulingStrategy)
    assert (pinned.node_id, pinned.soft) == (node, False)
    assert actor_options(spec(spread=True), "svc:api:3", None)["scheduling_strategy"] == "SPREAD"


def test_reasons_name_the_users_error_not_rays_wrapper() -> None:
    class Wrapped(Exception):
        cause = ValueError("bad input\nsecond line")

    assert error_text(Wrapped("ray traceback")) == "ValueError: second line"
    assert death_reason(RuntimeError("SIGKILL\nmore")) == "actor died: SIGKILL"
