"""Which replica takes the next call: round-robin or least-loaded. Pure, no Ray.

The registry publishes a :class:`RouteTable` per service; every caller's
:class:`~ray_enterprise.registry.handle.ServiceHandle` reads it and picks a replica itself,
so the registry stays off the data path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Routing(str, Enum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"  # fewest calls this caller still waits on


@dataclass(frozen=True)
class RouteTable:
    """The replicas a service's callers may reach now.

    ``ttl_s`` is how long a caller may use a table before reading it again; the registry waits
    at least that long after taking a replica out of the table before stopping it, so no caller
    can still be sending to a stopped replica. ``call_wait_s`` is how long a call waits for a
    live replica when none is (the spec's ``call_wait_s``).
    """

    epoch: int
    replicas: tuple[str, ...]
    ttl_s: float
    routing: Routing = Routing.ROUND_ROBIN
    call_wait_s: float = 5.0

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "replicas": list(self.replicas),
            "ttl_s": self.ttl_s,
            "routing": self.routing.value,
            "call_wait_s": self.call_wait_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteTable:
        return cls(
            epoch=int(data["epoch"]),
            replicas=tuple(data["replicas"]),
            ttl_s=float(data["ttl_s"]),
            routing=Routing(data.get("routing", Routing.ROUND_ROBIN.value)),
            call_wait_s=float(data.get("call_wait_s", 5.0)),
        )


def choose(replicas: Sequence[str], *, routing: Routing, turn: int, load: Mapping[str, int]) -> str:
    """The replica for call number ``turn``; ties in load go round-robin, so none starves."""
    if not replicas:
        raise ValueError("no replica to choose from")
    n = len(replicas)
    if routing is Routing.ROUND_ROBIN:
        return replicas[turn % n]
    order = [replicas[(turn + i) % n] for i in range(n)]
    return min(order, key=lambda r: load.get(r, 0))
