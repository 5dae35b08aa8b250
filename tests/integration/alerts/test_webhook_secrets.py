"""A webhook never follows a redirect and never shows its full URL: two real aiohttp servers on
127.0.0.1, one answering 307 towards the other, which must receive nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from ray_enterprise.alerts.errors import AlertConfigError, DeliveryError
from ray_enterprise.alerts.handlers import (
    NotificationDispatcher,
    WebhookHandler,
    handlers_from_config,
)
from tests.integration.alerts.test_handlers import Sleeps, notification, run

SECRET_PATH = "/services/T0001/B0002/xoxb-secret-path-7f3a"
TOKEN = "token-header-value-91c2"


@asynccontextmanager
async def server(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_a_307_is_not_followed_and_neither_payload_nor_token_reach_its_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    elsewhere: list[dict[str, Any]] = []

    async def attacker(request: web.Request) -> web.Response:
        elsewhere.append({"headers": dict(request.headers), "body": await request.read()})
        return web.Response(status=200)

    async def scenario() -> tuple[str, str, DeliveryError]:
        async with server(attacker) as other:

            async def redirecting(request: web.Request) -> web.Response:
                raise web.HTTPTemporaryRedirect(other + "/collect" + SECRET_PATH)

            async with server(redirecting) as hook:
                url = hook + SECRET_PATH
                handler = WebhookHandler(
                    "a", url, headers={"X-Token": TOKEN}, attempts=2, sleep=Sleeps()
                )
                with pytest.raises(DeliveryError) as raised:
                    await handler.send(notification())
                dispatcher = NotificationDispatcher([handler])
                await dispatcher.dispatch(notification())
                await handler.close()
                last = dispatcher.stats()["a"].last_error or ""
                return url, last, raised.value

    with caplog.at_level(logging.DEBUG):
        url, last_error, error = run(scenario())
    assert elsewhere == []  # not the POST, not the token: nothing reached the other host
    assert error.status == 307 and error.attempts == 1  # a redirect is not retried either
    host = url.split(SECRET_PATH)[0]
    assert f"{host}/…" in str(error) and "not followed" in str(error)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ray_enterprise"))
    assert "alert handler 'a' failed" in ours
    for text in (str(error), last_error, ours):
        assert SECRET_PATH not in text and "xoxb" not in text and TOKEN not in text


def test_an_error_answer_quoting_the_url_is_shown_without_its_path() -> None:
    async def echoing(request: web.Request) -> web.Response:
        return web.Response(status=404, text=f"no route for {request.url}")

    async def scenario() -> DeliveryError:
        async with server(echoing) as hook:
            handler = WebhookHandler("hook", hook + SECRET_PATH, sleep=Sleeps())
            try:
                with pytest.raises(DeliveryError) as raised:
                    await handler.send(notification())
            finally:
                await handler.close()
            return raised.value

    error = run(scenario())
    assert error.status == 404 and SECRET_PATH not in str(error) and "xoxb" not in str(error)


def test_an_unreachable_webhook_names_its_host_only() -> None:
    async def scenario() -> DeliveryError:
        async with server(lambda r: asyncio.sleep(0, web.Response())) as hook:
            pass  # the server is gone: connections are refused
        handler = WebhookHandler("hook", hook + SECRET_PATH, attempts=1, sleep=Sleeps())
        try:
            with pytest.raises(DeliveryError) as raised:
                await handler.send(notification())
        finally:
            await handler.close()
        return raised.value

    error = run(scenario())
    assert error.status is None and SECRET_PATH not in str(error) and "127.0.0.1" in str(error)


def test_a_config_error_about_a_webhook_url_does_not_quote_it() -> None:
    with pytest.raises(AlertConfigError) as raised:
        handlers_from_config(
            {"slack": {"type": "webhook", "url": "ftp://hooks.example" + SECRET_PATH}}
        )
    assert SECRET_PATH not in str(raised.value) and "ftp://hooks.example/…" in str(raised.value)
