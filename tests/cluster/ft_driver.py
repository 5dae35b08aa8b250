"""A short-lived driver for the head fault-tolerance tests, run as a subprocess so that the test
process never joins the cluster whose head it kills.

    python ft_driver.py ADDRESS start-caller SERVICE   # a detached caller on the app node
    python ft_driver.py ADDRESS report                 # the caller's counts and the actors
    python ft_driver.py ADDRESS specs NAME...          # the registry's running specs
    python ft_driver.py ADDRESS nodes                  # the nodes the GCS knows, alive or not
    python ft_driver.py ADDRESS system                 # the system actors' ids and nodes
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import ray

CALLER = "ft-caller"


@ray.remote
class Caller:
    """Calls ``get`` on a service through its ServiceHandle without pause and counts, per
    second of wall time, the calls that succeeded and failed. It runs on the app node (the
    ``app`` resource), not the head, so it lives through the head's loss as the services do."""

    def __init__(self, service: str) -> None:
        import threading

        self.service = service
        self.ok: dict[int, int] = {}
        self.failed: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        import ray_enterprise

        handle: Any = None
        while True:
            second = int(time.time())
            try:
                if handle is None:
                    handle = ray_enterprise.connect().registry.get_service_sync(self.service)
                ray.get(handle.get.remote("ft-key"), timeout=5)
                self.ok[second] = self.ok.get(second, 0) + 1
            except Exception as exc:  # counted, never fatal: the point is to keep calling
                self.failed[second] = self.failed.get(second, 0) + 1
                kind = type(exc).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
                time.sleep(0.05)
            time.sleep(0.01)

    def report(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "errors": self.errors}


def service_actors() -> dict[str, str]:
    """Each live service replica actor's name -> its actor id: the same id after an outage
    means the same process kept serving (services run with max_restarts=0)."""
    from ray_enterprise.registry.replicas import parse_replica_id

    out = {}
    for name in ray.util.list_named_actors(all_namespaces=False):
        if parse_replica_id(name) is not None:
            out[name] = ray.get_actor(name)._actor_id.hex()
    return out


def nodes() -> list[dict[str, Any]]:
    return [
        {"id": n["NodeID"], "alive": n["Alive"], "head": "node:__internal_head__" in n["Resources"]
         or "node:__internal_head__" in n.get("Labels", {}), "app": "app" in n["Resources"]}
        for n in ray.nodes()
    ]  # fmt: skip


def system_actors() -> dict[str, dict[str, Any]]:
    """Each live named system actor -> its actor id, node and how often Ray restarted it: the
    same id with more restarts means Ray restarted that actor (detached, max_restarts=-1).
    Read from the GCS's actor table (this head runs no dashboard, so no state API)."""
    from ray._private.state import actors

    from ray_enterprise.registry.replicas import parse_replica_id

    out = {}
    for info in actors().values():
        name = info["Name"]
        if info["State"] == "ALIVE" and name and name != CALLER and not parse_replica_id(name):
            out[name] = {
                "id": info["ActorID"], "node": info["Address"]["NodeID"],
                "restarts": info["NumRestarts"],
            }  # fmt: skip
    return out


def main() -> None:
    address, command = sys.argv[1], sys.argv[2]
    from ray_enterprise.runtime import init_ray

    init_ray(address, log_to_driver=False)  # a cluster on loopback is joined on loopback
    if command == "start-caller":
        Caller.options(  # type: ignore[attr-defined]
            name=CALLER, lifetime="detached", resources={"app": 0.01}, num_cpus=0,
            max_restarts=0,
        ).remote(sys.argv[3])  # fmt: skip
        print(json.dumps({"started": CALLER}))
    elif command == "report":
        caller = ray.get_actor(CALLER)
        doc = ray.get(caller.report.remote(), timeout=30)
        doc["actors"] = service_actors()
        doc["pid"] = os.getpid()
        print(json.dumps(doc))
    elif command == "specs":
        from ray_enterprise.runtime import registry_actor

        specs = ray.get(registry_actor().get_specs.remote(sys.argv[3:]), timeout=60)
        print(json.dumps({s["name"]: s for s in specs}))
    elif command == "nodes":
        print(json.dumps(nodes()))
    elif command == "system":
        print(json.dumps(system_actors()))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
