"""Node loss: a worker node dies (raylet and all its processes) -> every service healthy again.

20 services over a 3-node ray.cluster_utils.Cluster; the node holding the most services is
removed without grace, per round. Printed beside our recovery time: when Ray itself declared
the node dead (its GCS health checks), which is what a supervisor that waits for Ray's
ActorDiedError would have to wait for before it could even begin.

    python benchmarks/node_loss.py --services 20 --rounds 3
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import ray
from ray.cluster_utils import Cluster

from benchmarks._common import median, write_result
from ray_enterprise.spec import ServiceSpec
from ray_enterprise.testing import kill_node

FAULTY = "ray_enterprise.examples.faulty:FaultyService"


def specs(n: int) -> list[ServiceSpec]:
    out = []
    for i in range(n):
        deps = [f"s{(i - 1) // 3}"] if i else []  # a tree: each service feeds up to three
        out.append(
            ServiceSpec.model_validate({"name": f"s{i}", "class": FAULTY, "depends_on": deps})
        )
    return out


def one_round(n: int) -> dict[str, float]:
    import ray_enterprise
    from ray_enterprise.runtime import init_ray

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    init_ray(cluster.address)
    try:
        registry = ray_enterprise.connect().registry
        registry.register_app_sync(specs(n))
        status = registry.start_all_sync(timeout_s=300)
        assert status["status"] == "healthy", status["reasons"][:3]
        per_node = Counter(s["node_id"] for s in status["services"])
        workers = {w.node_id: w for w in cluster.worker_nodes}
        victim_id = max(workers, key=lambda node: per_node.get(node, 0))
        began = time.monotonic()
        kill_node(cluster, workers[victim_id])
        first_seen = ray_dead = healthy = None
        while healthy is None or ray_dead is None:
            now = time.monotonic() - began
            if ray_dead is None and not any(
                node["NodeID"] == victim_id and node["Alive"] for node in ray.nodes()
            ):
                ray_dead = now
            if healthy is None:
                st = registry.get_system_status_sync()
                if first_seen is None and st["status"] != "healthy":
                    first_seen = now
                if st["status"] == "healthy" and all(
                    s["node_id"] != victim_id for s in st["services"]
                ):
                    healthy = now
            if now > 180:
                raise TimeoutError("no recovery within 180 s")
            time.sleep(0.05)
        return {
            "moved": float(per_node[victim_id]),
            "first_noticed_s": float(first_seen or 0.0),
            "ray_node_dead_s": ray_dead,
            "all_healthy_s": healthy,
        }
    finally:
        ray_enterprise.shutdown_system()
        ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for r in range(args.rounds):
        result = one_round(args.services)
        rounds.append(result)
        print(
            f"round {r + 1}: {result['moved']:.0f} services moved; "
            f"noticed after {result['first_noticed_s']:.2f} s, "
            f"all healthy after {result['all_healthy_s']:.2f} s; "
            f"Ray declared the node dead after {result['ray_node_dead_s']:.2f} s",
            flush=True,
        )
    ours = median([r["all_healthy_s"] for r in rounds])
    ray_dead = median([r["ray_node_dead_s"] for r in rounds])
    print(
        f"median node loss -> all {args.services} services healthy: {ours:.2f} s; "
        f"Ray's node-death detection: {ray_dead:.2f} s; "
        f"ratio ours/Ray detection = {ours / ray_dead:.2f}"
    )
    write_result(
        "node_loss",
        {
            "services": args.services,
            "rounds": rounds,
            "median_all_healthy_s": ours,
            "median_ray_dead_s": ray_dead,
        },
    )


if __name__ == "__main__":
    main()
