"""Fault injection for tests, benchmarks and chaos drills on a ``ray.cluster_utils.Cluster``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
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


@contextlib.contextmanager
def local_cluster(nodes: int = 3, num_cpus: int = 1) -> Iterator[Any]:
    """A ``ray.cluster_utils.Cluster`` of ``nodes`` on this machine, on loopback, joined by
    this process; on exit the system actors are removed and every node is stopped.

    Nodes the caller adds inside the block stay on loopback too. The head runs without the
    dashboard (it costs ~1 GB here and nothing in the system needs it).
    """
    import ray
    from ray.cluster_utils import Cluster

    from ray_enterprise.runtime import init_ray, loopback_only, shutdown_system

    if ray.is_initialized():
        ray.shutdown()  # one process joins one Ray at a time
    with loopback_only():
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": num_cpus, "include_dashboard": False},
        )
        try:
            for _ in range(nodes - 1):
                cluster.add_node(num_cpus=num_cpus)
            cluster.wait_for_nodes()
            init_ray(cluster.address)
            yield cluster
            shutdown_system()
        finally:
            ray.shutdown()
            cluster.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RayHead:
    """``ray start --head --block`` on loopback with free ports, stopped by this object alone.

    ``ray stop`` would kill every Ray on the machine; this head runs in its own session and
    is stopped through its own ``--block`` process, which takes its children down with it.
    """

    def __init__(self, *, num_cpus: int = 2, env: dict[str, str] | None = None) -> None:
        self.gcs_port = _free_port()
        self.dashboard_port = _free_port()
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        self.env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray_bin = shutil.which("ray", path=self.env.get("PATH")) or "ray"
        ports = {
            "--port": self.gcs_port,
            "--dashboard-port": self.dashboard_port,
            "--dashboard-agent-listen-port": _free_port(),
            "--dashboard-agent-grpc-port": _free_port(),
            "--ray-client-server-port": _free_port(),
            "--node-manager-port": _free_port(),
            "--object-manager-port": _free_port(),
            "--metrics-export-port": _free_port(),
            "--runtime-env-agent-port": _free_port(),
        }
        self.command = [ray_bin, "start", "--head", "--block", "--disable-usage-stats"]
        self.command += ["--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
        self.command += ["--num-cpus", str(num_cpus)]
        for flag, port in ports.items():
            self.command += [flag, str(port)]
        self.process: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, timeout_s: float = 90.0) -> RayHead:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.dashboard_url}/api/version", timeout=1):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the Ray head's dashboard did not answer within {timeout_s} s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def __enter__(self) -> RayHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
