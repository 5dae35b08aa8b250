"""The session's local Ray (started by ``init_ray``) listens on loopback only and says so."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import psutil
import ray


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # gRPC's dual-stack socket shows 127.0.0.1 as ::ffff:...
    return address.is_loopback


def ray_processes() -> dict[int, psutil.Process]:
    """This driver and every process its Ray node started (GCS, raylet, agents, workers)."""
    node: Any = ray._private.worker.global_worker.node
    found = {os.getpid(): psutil.Process()}
    for infos in node.all_processes.values():
        for info in infos:
            with_children = psutil.Process(info.process.pid)
            for process in [with_children, *with_children.children(recursive=True)]:
                found[process.pid] = process
    return found


@ray.remote
def worker_pid() -> int:
    return os.getpid()


def test_every_port_of_the_local_ray_is_on_loopback(ray_session: None) -> None:
    # A worker of its own, so a worker's gRPC server is among the listeners.
    assert ray.get(worker_pid.remote()) != os.getpid()
    listening: list[tuple[str, str, int]] = []
    for process in ray_processes().values():
        try:
            name = process.name()
            sockets = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:  # a worker that exited meanwhile
            continue
        listening += [
            (name, s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN
        ]
    names = {name for name, _, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening
    assert len(listening) >= 6, listening
    exposed = [entry for entry in listening if not is_loopback(entry[1])]
    assert exposed == [], f"listening beyond loopback: {exposed}"

    host = ray.get_runtime_context().gcs_address.rsplit(":", 1)[0]
    assert host == "127.0.0.1"
    assert ray.util.get_node_ip_address() == "127.0.0.1"
