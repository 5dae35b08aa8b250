"""Where service actors go: spreading over live nodes, and telling a lost node from a slow one.

State the registry keeps about nodes, apart from the service state machine: which node each
service's actor landed on, which nodes to avoid for a while, and the moves between nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

import ray

_SUSPECT_S = 30.0  # how long a node whose actors went unreachable gets no new ones


def node_with_room(
    candidates: Iterable[str], per_node: Mapping[str, int], max_per_node: int
) -> str | None:
    """The candidate node holding the fewest of this service's replicas, among those below
    ``max_per_node`` (Ray Serve's ``max_replicas_per_node``); None: no node has room."""
    room = [n for n in candidates if per_node.get(n, 0) < max_per_node]
    return min(room, key=lambda node: (per_node.get(node, 0), node), default=None)


class Placement:
    """Node bookkeeping for the RegistryActor; asks Ray for the node table at most once a second."""

    def __init__(self) -> None:
        self.nodes: dict[str, str] = {}  # service -> node of its live actor
        self.last_node: dict[str, str] = {}  # service -> node of its latest actor, live or not
        self.moves: deque[dict[str, Any]] = deque(maxlen=200)
        self.placed: dict[str, str] = {}  # service -> node chosen for its latest actor
        self.suspects: dict[str, float] = {}  # node -> until when nothing is placed there
        self._info: dict[str, dict[str, Any]] = {}
        self._info_at = -1e9

    def forget(self, name: str) -> None:
        self.nodes.pop(name, None)
        self.placed.pop(name, None)

    def clear(self) -> None:
        for table in (self.nodes, self.last_node, self.placed, self.suspects):
            table.clear()
        self.moves.clear()

    def node_table(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        if now - self._info_at > 1.0:
            self._info = {n["NodeID"]: n for n in ray.nodes()}
            self._info_at = now
        return self._info

    def alive_nodes(self) -> list[str]:
        return sorted(n for n, info in self.node_table().items() if info.get("Alive"))

    async def node_gone(self, name: str, node: str | None = None) -> str | None:
        """Why the node of this replica is certainly gone, or None if it may still be there.

        Ray declares a node dead only after its own health checks fail for ~15 s. A raylet
        whose port refuses connections is gone for sure, so its services can be restarted
        elsewhere now. A timeout proves nothing (a partition heals): the threshold decides.
        """
        node = node or self.nodes.get(name) or self.placed.get(name)
        info = self.node_table().get(node or "")
        if node is None or info is None:
            return None
        if not info.get("Alive"):
            return f"node {node[:12]} is dead"
        host, port = info["NodeManagerAddress"], int(info["NodeManagerPort"])
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
        except (ConnectionRefusedError, ConnectionResetError):
            return f"node {node[:12]} lost: its raylet at {host}:{port} refuses connections"
        except (OSError, asyncio.TimeoutError):
            return None
        writer.close()
        return None

    def choose_node(self) -> str | None:
        """The live, unsuspected node with the fewest of our services.

        Ray takes ~15 s to declare a node dead; its SPREAD strategy may place a restarted
        service back on the node we just saw go unreachable. We spread ourselves, so a service
        that left a lost node starts elsewhere at once.
        """
        now = time.monotonic()
        candidates = [n for n in self.alive_nodes() if self.suspects.get(n, 0.0) < now]
        if not candidates:
            return None
        load = Counter(self.placed.values())
        return min(candidates, key=lambda node: (load[node], node))

    def candidates(self, resources: Mapping[str, float], node_id: str | None) -> list[str]:
        """Live, unsuspected nodes that could hold a replica: the pinned one, or those that
        have every custom resource it asks for."""
        now = time.monotonic()
        nodes = [
            node
            for node, info in self.node_table().items()
            if info.get("Alive")
            and self.suspects.get(node, 0.0) < now
            and all(key in info.get("Resources", {}) for key in resources)
        ]
        return [n for n in nodes if n == node_id] if node_id else nodes

    def suspect(self, name: str, node: str | None = None) -> None:
        """The service's actor is unreachable: keep new actors off its node for a while."""
        node = node or self.nodes.get(name) or self.placed.get(name)
        if node:
            self.suspects[node] = time.monotonic() + _SUSPECT_S

    def note_move(self, name: str, generation: int, node: str, reason: str | None) -> None:
        """Remember a service that came back on another node, and why it left the old one."""
        previous = self.last_node.get(name)
        self.last_node[name] = node
        if previous is None or previous == node:
            return
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        self.moves.append(
            {
                "service": name,
                "generation": generation,
                "from_node": previous,
                "to_node": node,
                "node_lost": previous not in alive,
                "reason": reason,
                "time": time.time(),
            }
        )
