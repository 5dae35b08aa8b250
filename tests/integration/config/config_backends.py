"""Real backends for the config integration tests: OpenBao, PostgreSQL URLs, a TCP proxy.

Kept out of conftest.py under a unique name so tests can import these helpers directly.
Nothing here sleeps to synchronise: servers are polled until ready within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import hvac

from ray_enterprise.config.sources import ConfigSource, SourceUpdate
from tests.support import free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
BAO = shutil.which("bao") or str(REPO / ".venv" / "bin" / "bao")
PG_DSN_ENV = "RAY_ENTERPRISE_TEST_PG_DSN"


class BaoServer:
    """``bao server -dev`` on a fixed loopback port; can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BaoServer:
        self.proc = subprocess.Popen(
            [
                BAO,
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-root-token-id=root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "BAO_ADDR": self.url, "HOME": os.environ.get("HOME", "/tmp")},
        )
        client = self.client()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bao exited with {self.proc.returncode}")
            try:
                return bool(client.sys.is_initialized() and not client.sys.is_sealed())
            except Exception:
                return False

        wait_for(ready, timeout=15.0, what="bao dev server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.url, token="root", timeout=3)


def pg_url(dsn: str, schema: str, *, port: int | None = None) -> str:
    """The DSN pointed at ``schema`` (and optionally another port, e.g. a proxy's)."""
    from sqlalchemy.engine import make_url

    url = make_url(dsn)
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    text = url.render_as_string(hide_password=False)
    sep = "&" if "?" in text else "?"
    return f"{text}{sep}options={quote(f'-csearch_path={schema}')}"


class TcpProxy:
    """Forwards a loopback port to a target; ``stop`` cuts every connection, like an outage."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class Watching:
    """Runs ``source.watch()`` in a task and lets a test wait for an update it expects."""

    def __init__(self, source: ConfigSource) -> None:
        self.source = source
        self.updates: list[SourceUpdate] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def _run(self) -> None:
        async for update in self.source.watch():
            self.updates.append(update)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.source.close()

    async def until(
        self, predicate: Callable[[SourceUpdate], bool], timeout: float = 3.0
    ) -> tuple[SourceUpdate, float]:
        """The first update (from now on) that satisfies ``predicate``, and the wait it took."""
        start = time.monotonic()
        seen = len(self.updates)
        while True:
            for update in self.updates[seen:]:
                if predicate(update):
                    return update, time.monotonic() - start
            seen = len(self.updates)
            if self._task is not None and self._task.done():
                self._task.result()
            if time.monotonic() - start > timeout:
                raise AssertionError(f"no matching update within {timeout}s: {self.updates}")
            await asyncio.sleep(0.01)


def values_at(update: SourceUpdate, path: str) -> Any:
    node: Any = update.values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
