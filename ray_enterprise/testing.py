"""Fault injection for tests, benchmarks and chaos drills on a ``ray.cluster_utils.Cluster``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


class RedisServer:
    """``redis-server`` on a free loopback port with its files in ``directory``: the external
    store a fault-tolerant Ray head keeps its GCS tables in (``RAY_REDIS_ADDRESS``)."""

    def __init__(self, directory: str, *, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        os.makedirs(self.directory, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: redis-server)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
             "--save", "", "--appendonly", "yes", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server did not listen on {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _RayNodeProcess:
    """One ``ray start`` and every process it starts, in a session of their own, so that this
    node alone can be killed (``ray stop`` would kill every Ray on the machine)."""

    command: list[str]
    env: dict[str, str]

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []  # started later, in sessions of their own

    def _launch(self) -> subprocess.Popen[str]:
        # What `ray start` printed, for the error when it fails (a file: its children keep
        # the descriptor open long after it returned, so a pipe would never end).
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 (kept until the next launch)
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        return self.process

    def _failed(self, what: str) -> RuntimeError:
        assert self.process is not None
        self._output.seek(0)
        said = self._output.read().decode(errors="replace")[-2000:]
        return RuntimeError(f"{what} exited with {self.process.returncode}:\n{said}")

    def processes(self) -> list[psutil.Process]:
        """Every live process of this node (the ``--block`` process's session)."""
        if self.process is None:
            return []
        sids = {self.process.pid} | {p.pid for p in self.extra if p.poll() is None}
        out = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) in sids:
                    out.append(proc)
        return out

    def kill(self) -> int:
        """SIGKILL every process of this node at once, as a machine loss would; returns how
        many there were."""
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)
        for extra in [*self.extra, self.process]:
            if extra is not None:
                extra.wait()
        self.process = None
        self.extra = []
        return len(procs)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        self.kill()  # whatever --block left behind


class RayHead(_RayNodeProcess):
    """``ray start --head --block`` on loopback with free ports, stopped by this object alone.

    With ``redis_address`` the GCS keeps its tables in that Redis (Ray's GCS fault tolerance):
    :meth:`kill_gcs` then :meth:`restart_gcs` is a GCS crash and its restart, :meth:`kill` then
    :meth:`start` a whole head lost and brought back on the same address. Such a head runs
    without ``--block``, which takes every process of the node down as soon as one dies: the
    GCS's death would end the raylet and the actors that are meant to outlive it.
    """

    def __init__(
        self,
        *,
        num_cpus: int = 2,
        env: dict[str, str] | None = None,
        redis_address: str | None = None,
        include_dashboard: bool = True,
        resources: dict[str, float] | None = None,
        block: bool | None = None,
    ) -> None:
        super().__init__()
        self.block = redis_address is None if block is None else block
        self.gcs_port = _free_port()
        self.dashboard_port = _free_port()
        self.include_dashboard = include_dashboard
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        self.env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if redis_address is not None:
            self.env["RAY_REDIS_ADDRESS"] = redis_address
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
        self.command = [ray_bin, "start", "--head", "--disable-usage-stats"]
        if self.block:
            self.command.append("--block")
        self.command += ["--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
        self.command += ["--num-cpus", str(num_cpus)]
        if not include_dashboard:
            self.command += ["--include-dashboard", "false"]
        if resources:
            self.command += ["--resources", json.dumps(resources)]
        for flag, port in ports.items():
            self.command += [flag, str(port)]
        self._gcs: tuple[list[str], dict[str, str]] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def start(self, timeout_s: float = 90.0) -> RayHead:
        process = self._launch()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Without --block, `ray start` returns once the node runs; its processes stay.
            if process.poll() is not None and (self.block or process.returncode != 0):
                raise self._failed("ray start --head")
            if self._ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the Ray head did not come up within {timeout_s} s")

    def _ready(self) -> bool:
        if self.include_dashboard:
            try:
                with urllib.request.urlopen(f"{self.dashboard_url}/api/version", timeout=1):
                    return True
            except OSError:
                return False
        # No dashboard: ready once the head's raylet runs beside a listening GCS.
        names = {p.name() for p in self.processes() if p.is_running()}
        if "raylet" not in names:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.gcs_port)):
            return True
        return False

    def kill(self) -> int:
        """SIGKILL every process of this head; like ``ray stop``, it also drops this head from
        the machine's current-cluster file. ``ray start --head`` on this address again would
        otherwise refuse: it takes a worker node on this machine, whose processes name the
        address, for a head still running there."""
        killed = super().kill()
        env = self.env
        root = env.get("RAY_TMPDIR") or env.get("TMPDIR") or "/tmp"
        address_file = os.path.join(root, "ray", "ray_current_cluster")
        known = ""
        with contextlib.suppress(OSError), open(address_file) as f:
            known = f.read().strip()
        if known == self.address:
            with contextlib.suppress(OSError):
                os.remove(address_file)
        return killed

    def gcs_process(self) -> psutil.Process | None:
        return next((p for p in self.processes() if p.name() == "gcs_server"), None)

    def kill_gcs(self) -> None:
        """SIGKILL the GCS server alone; its command line is kept for :meth:`restart_gcs`."""
        gcs = self.gcs_process()
        if gcs is None:
            raise RuntimeError("this head runs no gcs_server")
        self._gcs = (gcs.cmdline(), gcs.environ())
        gcs.send_signal(signal.SIGKILL)
        gcs.wait(timeout=10)

    def restart_gcs(self) -> None:
        """Start the GCS server again as it was (what KubeRay's restart of it amounts to); it
        counts as one of this head's processes, so :meth:`kill` takes it too."""
        if self._gcs is None or self.process is None:
            raise RuntimeError("kill_gcs() first")
        cmdline, environ = self._gcs
        self.extra.append(
            subprocess.Popen(
                cmdline, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )  # fmt: skip

    def __enter__(self) -> RayHead:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# `ray start` of a worker node that stays on 127.0.0.1 like the head. With Ray's cluster switch
# off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, what keeps a head on loopback) `ray start --address`
# refuses to run; with it on, Ray rewrites the head's 127.0.0.1 into this machine's outward
# address, where a head on loopback does not listen. So the switch is on for the check alone
# and every address of this machine is its loopback.
_LOOPBACK_RAY_START = """
import sys
from ray._private import ray_constants, services
ray_constants.ENABLE_RAY_CLUSTER = True
services.get_node_ip_address = lambda address=None: services.get_localhost_ip()
from ray.scripts.scripts import main
sys.argv[0] = "ray"
sys.exit(main())
"""


class RayWorker(_RayNodeProcess):
    """``ray start --address HEAD`` on loopback with free ports: a second node of a
    :class:`RayHead`'s cluster, stopped or killed by this object alone.

    It runs without ``--block``, so that its raylet and actors outlive the head's loss and
    reconnect to a head started again on the same address (Ray's GCS fault tolerance). Ray
    gives a raylet ``gcs_reconnect_timeout_s`` (``RAY_gcs_rpc_server_reconnect_timeout_s``,
    60 s by default) to find the GCS again before it exits; its workers read the same setting.
    """

    def __init__(
        self,
        head_address: str,
        *,
        num_cpus: int = 1,
        env: dict[str, str] | None = None,
        resources: dict[str, float] | None = None,
        gcs_reconnect_timeout_s: float | None = None,
    ) -> None:
        super().__init__()
        self.env = dict(os.environ if env is None else env)
        self.env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # its processes stay on loopback
        self.env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.env.pop("RAY_REDIS_ADDRESS", None)  # a worker node reads the GCS, never Redis
        if gcs_reconnect_timeout_s is not None:
            self.env["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(int(gcs_reconnect_timeout_s))
        self.command = [sys.executable, "-c", _LOOPBACK_RAY_START, "start"]
        self.command += ["--address", head_address, "--disable-usage-stats"]
        self.command += ["--node-ip-address", "127.0.0.1", "--num-cpus", str(num_cpus)]
        if resources:
            self.command += ["--resources", json.dumps(resources)]
        for flag in (
            "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--node-manager-port",
            "--object-manager-port", "--metrics-export-port", "--runtime-env-agent-port",
        ):  # fmt: skip
            self.command += [flag, str(_free_port())]

    def start(self, timeout_s: float = 90.0) -> RayWorker:
        """Join the head, trying again while it is still coming up: a head whose GCS listens
        may not have registered its own node yet, and ``ray start --address`` then fails."""
        process = self._launch()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:  # `ray start` returns once the node has joined
                if process.returncode == 0 and any(p.name() == "raylet" for p in self.processes()):
                    return self
                if process.returncode != 0:
                    if time.monotonic() + 5.0 > deadline:
                        raise self._failed("ray start --address")
                    self.kill()
                    time.sleep(1.0)
                    process = self._launch()
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the Ray worker node did not come up within {timeout_s} s")

    def raylet(self) -> psutil.Process | None:
        return next((p for p in self.processes() if p.name() == "raylet"), None)

    def __enter__(self) -> RayWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
