"""Fault injection for tests, benchmarks and chaos drills on a ``ray.cluster_utils.Cluster``."""

from __future__ import annotations

import contextlib
import signal
from typing import Any

import psutil


def kill_node(cluster: Any, node: Any) -> int:
    """Take a node away as a machine loss would: its raylet and every process it started.

    ``Cluster.remove_node(allow_graceful=False)`` kills only the raylet; the node's workers
    then keep serving calls until Ray declares the node dead ~15 s later, which no real
    machine loss does. Returns how many processes were killed.
    """
    raylet = node.all_processes["raylet"][0].process
    children = psutil.Process(raylet.pid).children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.send_signal(signal.SIGKILL)
    cluster.remove_node(node, allow_graceful=False)
    return len(children) + 1
