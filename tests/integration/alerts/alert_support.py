"""Helpers of the alert actor tests: a real webhook on loopback, handlers, window sources.

Functions and classes here run inside the alert actor's process, which cannot import this
module, so the tests register it with Ray's cloudpickle to be shipped by value.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ray_enterprise.alerts.model import Notification


class Webhook:
    """A real HTTP endpoint on loopback that records JSON bodies, or hangs when told to."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.hang:
            await asyncio.Event().wait()
        with self._lock:
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
        return web.Response(text="ok")

    def alerts(self, alertname: str | None = None) -> list[dict[str, Any]]:
        """Every alert of every notification received, in arrival order."""
        with self._lock:
            found = [a for body in self.bodies for a in body["alerts"]]
        return [a for a in found if alertname is None or a["labels"]["alertname"] == alertname]

    def __enter__(self) -> Webhook:
        self._thread.start()
        assert self._ready.wait(10), "webhook server did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def file_handler(path: Path) -> Callable[[Notification], None]:
    """A Python callable handler: one line per alert, appended to ``path``."""

    def handle(notification: Notification) -> None:
        with open(path, "a") as out:
            for alert in notification.alerts:
                out.write(json.dumps({"kind": notification.kind.value, **alert.to_dict()}) + "\n")

    return handle


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


class StaticWindows:
    """A window source: fixed values per series, as the series store would answer."""

    def __init__(self, series: dict[tuple[tuple[str, str], ...], list[float]]) -> None:
        self.series = series

    def window_values(self, metric: str, matchers: Any, start_ms: int, end_ms: int) -> Any:
        return self.series if metric == "response_time_ms" else {}


def signal_of(name: str, service: str, severity: str = "high", firing: bool = True) -> Any:
    return {
        "labels": {"alertname": name, "service": service},
        "severity": severity,
        "firing": firing,
        "annotations": {"summary": f"{name} on {service}"},
    }


def fast_route(*handlers: str, **extra: Any) -> dict[str, Any]:
    """Notify at once. Tests that read CLI output route nowhere: the log handler's lines are
    streamed to this driver by Ray and would land in the middle of the output."""
    return {"handlers": list(handlers), "group_wait": 0, "group_interval": "100ms", **extra}
