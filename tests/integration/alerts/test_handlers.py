"""Handlers against real HTTP servers on 127.0.0.1, and against a real Prometheus Alertmanager.

The webhook servers are aiohttp apps started by each test on a free port; the Alertmanager is
Debian's ``prometheus-alertmanager`` binary run as a plain process with a throwaway config.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from ray_enterprise.alerts.errors import DeliveryError
from ray_enterprise.alerts.handlers import (
    AlertmanagerHandler,
    CallableHandler,
    LogHandler,
    NotificationDispatcher,
    WebhookHandler,
)
from ray_enterprise.alerts.manager import AlertManager
from ray_enterprise.alerts.model import AlertSignal, Notification, Severity
from ray_enterprise.alerts.routing import policy_from_config
from tests.support import free_port, wait_for

T = TypeVar("T")
ALERTMANAGER = "prometheus-alertmanager"


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def notification(service: str = "api", severity: Severity = Severity.HIGH) -> Notification:
    am = AlertManager(policy_from_config({"route": {"handlers": ["a", "b"], "group_wait": 0}}))
    am.ingest(
        AlertSignal(
            {"alertname": "HighLatency", "service": service},
            severity,
            annotations={"summary": "p95 above 500 ms"},
        )
    )
    [sent] = am.tick()
    return sent


class Recorder:
    """A webhook endpoint that fails the first ``fail`` requests and can hang forever."""

    def __init__(self, fail: int = 0, status: int = 500, hang: bool = False) -> None:
        self.fail, self.status, self.hang = fail, status, hang
        self.requests: list[Any] = []
        self.attempts = 0
        self.release = asyncio.Event()
        self.received = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.hang:
            await self.release.wait()
            return web.Response(status=504)
        if self.attempts <= self.fail:
            return web.Response(status=self.status, text="not now")
        self.requests.append(await request.json())
        self.received.set()
        return web.Response(status=200)


@asynccontextmanager
async def serve(recorder: Recorder) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        recorder.release.set()
        await runner.cleanup()


class Sleeps:
    """Backoff sleeps recorded instead of slept: the test proves the delays, not waits them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def test_webhook_posts_the_notification_as_json() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with serve(recorder) as url:
            handler = WebhookHandler("a", url)
            await handler.send(notification())
            await handler.close()
        [body] = recorder.requests
        assert body["status"] == "firing" and body["kind"] == "group"
        assert body["alerts"][0]["labels"] == {"alertname": "HighLatency", "service": "api"}
        assert body["commonLabels"]["severity"] == "high"

    run(scenario())


def test_webhook_retries_after_two_500s_with_growing_backoff() -> None:
    async def scenario() -> None:
        recorder, sleeps = Recorder(fail=2), Sleeps()
        async with serve(recorder) as url:
            handler = WebhookHandler("a", url, attempts=3, backoff_s=0.5, sleep=sleeps, jitter=0)
            await handler.send(notification())
            await handler.close()
        assert recorder.attempts == 3 and len(recorder.requests) == 1
        assert sleeps.delays == [0.5, 1.0]

    run(scenario())


def test_webhook_gives_up_after_its_attempts_and_does_not_retry_a_400() -> None:
    async def scenario() -> None:
        always_500, bad_request = Recorder(fail=99), Recorder(fail=99, status=400)
        async with serve(always_500) as url_500, serve(bad_request) as url_400:
            for url, attempts in ((url_500, 3), (url_400, 1)):
                handler = WebhookHandler("a", url, attempts=3, sleep=Sleeps())
                with pytest.raises(DeliveryError) as info:
                    await handler.send(notification())
                assert info.value.attempts == attempts
                await handler.close()
        assert (always_500.attempts, bad_request.attempts) == (3, 1)

    run(scenario())


def test_slack_payload_option_posts_text_and_attachments() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with serve(recorder) as url:
            handler = WebhookHandler("a", url, slack=True)
            await handler.send(notification(severity=Severity.CRITICAL))
            await handler.close()
        [body] = recorder.requests
        assert body["text"].startswith("[FIRING:1]")
        assert body["attachments"][0]["color"] == "#d00000"
        assert body["attachments"][0]["text"] == "p95 above 500 ms"

    run(scenario())


def test_hanging_webhook_times_out_without_delaying_the_other_handler() -> None:
    async def scenario() -> None:
        hanging, healthy = Recorder(hang=True), Recorder()
        async with serve(hanging) as hang_url, serve(healthy) as ok_url:
            dispatcher = NotificationDispatcher(
                [
                    WebhookHandler("a", hang_url, timeout_s=4.0, attempts=1),
                    WebhookHandler("b", ok_url, timeout_s=4.0),
                ]
            )
            started = time.monotonic()
            task = asyncio.create_task(dispatcher.dispatch(notification()))
            await asyncio.wait_for(healthy.received.wait(), 3.5)
            assert time.monotonic() - started < 3.5 and not task.done()
            assert await task == {"a": False, "b": True}
            assert time.monotonic() - started >= 4.0
            assert hanging.attempts == 1
            await dispatcher.close()
        stats = dispatcher.stats()
        assert (stats["a"].failed, stats["a"].sent, stats["b"].sent) == (1, 0, 1)
        assert "TimeoutError" in (stats["a"].last_error or "")

    run(scenario())


def test_dispatcher_cuts_off_a_hanging_callable_and_counts_every_failure() -> None:
    calls: list[Notification] = []

    async def hangs(_: Notification) -> None:
        await asyncio.Event().wait()

    def broken(_: Notification) -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        dispatcher = NotificationDispatcher(
            [
                CallableHandler("a", hangs),
                CallableHandler("b", calls.append),
                CallableHandler("broken", broken),
                LogHandler("log"),
            ],
            timeout_s=1.0,
        )
        sent = notification()
        sent = replace(sent, handlers=("a", "b", "broken", "log", "gone"))
        assert await dispatcher.dispatch(sent) == {
            "a": False,
            "b": True,
            "broken": False,
            "log": True,
            "gone": False,
        }
        stats = dispatcher.stats()
        assert (stats["a"].failed, stats["a"].timed_out) == (1, 1)
        assert stats["broken"].last_error == "RuntimeError: boom"
        assert stats["gone"].failed == 1 and "no handler named" in (stats["gone"].last_error or "")

    run(scenario())
    assert len(calls) == 1


# -- Prometheus Alertmanager --------------------------------------------------------------------


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which(ALERTMANAGER)
    if binary is None:
        message = (
            f"{ALERTMANAGER} is not on PATH; install the Debian package prometheus-alertmanager"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    (tmp_path / "am.yml").write_text(
        'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n', encoding="utf-8"
    )
    port = free_port()
    log = (tmp_path / "am.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={tmp_path}",
            f"--config.file={tmp_path / 'am.yml'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:  # not listening yet
            return False

    try:
        wait_for(
            ready, timeout=15, what=f"alertmanager ready on {base} (log: {tmp_path / 'am.log'})"
        )
        yield base
    finally:
        log.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_forwarded_alert_is_readable_from_alertmanager_v2_api(alertmanager: str) -> None:
    sent = notification(service="search", severity=Severity.CRITICAL)
    handler = AlertmanagerHandler("am", alertmanager, firing_ttl_s=3600)

    async def forward() -> None:
        await handler.send(sent)
        await handler.close()

    run(forward())

    def forwarded() -> bool:
        try:
            return any(a["labels"].get("service") == "search" for a in _get_json(alerts_url))
        except OSError:  # the old helper retried through connection errors too
            return False

    alerts_url = f"{alertmanager}/api/v2/alerts"
    wait_for(forwarded, timeout=10, what="the forwarded alert in GET /api/v2/alerts")
    [alert] = [a for a in _get_json(alerts_url) if a["labels"].get("service") == "search"]
    assert alert["labels"] == {
        "alertname": "HighLatency",
        "service": "search",
        "severity": "critical",
    }
    assert alert["annotations"]["ray_enterprise_id"] == sent.alerts[0].id
    assert alert["status"]["state"] == "active"
