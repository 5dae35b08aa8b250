"""Notification handlers and the dispatcher that keeps one bad handler from hurting the rest.

One vocabulary: every handler has a ``name`` and ``async send(notification)``, which returns
when the notification is delivered and raises when it cannot be. The
:class:`NotificationDispatcher` sends one notification to all its handlers concurrently, each
under a deadline, and counts failures per handler — so a webhook that hangs or answers 500
shows up in the counters instead of delaying the pager.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import aiohttp

from ray_enterprise.alerts.errors import AlertConfigError, DeliveryError
from ray_enterprise.alerts.manager import wall_clock_ms
from ray_enterprise.alerts.model import Notification, Severity
from ray_enterprise.alerts.payloads import alertmanager_payload, slack_payload
from ray_enterprise.alerts.routing import parse_duration_ms
from ray_enterprise.backoff import DEFAULT_JITTER, backoff_delay

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]


class AlertHandler(Protocol):
    name: str

    async def send(self, notification: Notification) -> None: ...


_LOG_LEVELS = {
    Severity.CRITICAL: logging.ERROR,
    Severity.HIGH: logging.ERROR,
    Severity.MEDIUM: logging.WARNING,
    Severity.LOW: logging.INFO,
}


class LogHandler:
    """Writes one line per alert; the handler every deployment has, even with no network."""

    def __init__(self, name: str = "log", log: logging.Logger | None = None) -> None:
        self.name = name
        self._log = log or logger

    async def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            level = _LOG_LEVELS[alert.severity] if alert.firing else logging.INFO
            self._log.log(
                level,
                "alert %s %s [%s] %s labels=%s %s",
                notification.kind.value,
                alert.status.value,
                alert.severity.value,
                alert.id,
                alert.labels,
                alert.annotations.get("summary", ""),
            )


class CallableHandler:
    """Calls a Python function; a plain (blocking) function runs in a thread, off the loop."""

    def __init__(self, name: str, fn: Callable[[Notification], Any]) -> None:
        self.name = name
        self._fn = fn

    async def send(self, notification: Notification) -> None:
        if inspect.iscoroutinefunction(self._fn):
            await self._fn(notification)
            return
        result = await asyncio.to_thread(self._fn, notification)
        if inspect.isawaitable(result):
            await result


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def shown_url(url: object) -> str:
    """``scheme://host[:port]/…``: a webhook's path and query are often its secret (Slack's
    ``/services/T…/B…/<token>``), so errors, logs and config messages show only where it goes."""
    try:
        parts = urllib.parse.urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not even a URL: say nothing of it but its type
        return f"<unparsable {type(url).__name__}>"
    if not parts.scheme or not host:
        return f"<not a URL: {type(url).__name__}>"
    return f"{parts.scheme}://{host}{port}/…"


def _scrubbed(text: str, url: str) -> str:
    """``text`` with the URL (and its path, which some errors quote alone) replaced."""
    parts = urllib.parse.urlsplit(url)
    secret_tail = parts.path + (f"?{parts.query}" if parts.query else "")
    text = text.replace(url, shown_url(url))
    if len(secret_tail) > 1:
        text = text.replace(secret_tail, "/…")
    return text


class _HttpPoster:
    """POST JSON with a per-attempt timeout and jittered exponential backoff between attempts.

    Retries what a retry can fix (connection errors, timeouts, 5xx, 408, 429) and gives up at
    once on other 4xx, which mean the payload or URL is wrong. Redirects are never followed: a
    3xx would re-send the payload and the configured headers (tokens) to wherever it points,
    so it is a failure naming the status, and the full URL never appears in what it raises.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout_s: float,
        attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        headers: Mapping[str, str] | None,
        sleep: Sleep,
        jitter: float = DEFAULT_JITTER,
        rng: Random = random.random,
    ) -> None:
        if attempts < 1:
            raise AlertConfigError(f"handlers.{name}.attempts", f"must be >= 1, got {attempts}")
        if not 0.0 <= jitter <= 1.0:
            raise AlertConfigError(f"handlers.{name}.jitter", f"must be 0 to 1, got {jitter!r}")
        self._jitter = jitter
        self._rng = rng
        self.name = name
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._headers = dict(headers or {})
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, payload: Any) -> None:
        status: int | None = None
        detail = ""
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._session_for_loop().post(
                    url,
                    json=payload,
                    headers=self._headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    status = response.status
                    if status < 300:
                        return
                    if status < 400:
                        to = shown_url(response.headers.get("Location", ""))
                        detail = (
                            f"{shown_url(url)} redirects to {to}: not followed; "
                            "configure the final URL"
                        )
                        raise DeliveryError(self.name, attempt, status, detail)
                    detail = _scrubbed((await response.text())[:200], url)
                    if not _retryable(status):
                        raise DeliveryError(self.name, attempt, status, detail or "rejected")
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                text = f"{type(exc).__name__}: {exc}".rstrip(": ")
                status, detail = None, _scrubbed(text, url)
            if attempt < self._attempts:
                await self._sleep(
                    backoff_delay(
                        attempt, self._backoff_s, self._backoff_max_s, self._jitter, self._rng
                    )
                )
        raise DeliveryError(
            self.name, self._attempts, status, f"{detail or 'no answer'} ({shown_url(url)})"
        )

    def _session_for_loop(self) -> aiohttp.ClientSession:
        # A session belongs to the loop it was made on; tests and actors may bring a new loop.
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or getattr(session, "_loop", loop) is not loop:
            session = self._session = aiohttp.ClientSession()
        return session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class WebhookHandler:
    """POSTs the notification as JSON (or as a Slack message with ``slack=True``)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        slack: bool = False,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: float = DEFAULT_JITTER,
        rng: Random = random.random,
    ) -> None:
        self.name = name
        self.url = url
        self.slack = slack
        self._http = _HttpPoster(
            name,
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
            backoff_max_s=backoff_max_s,
            headers=headers,
            sleep=sleep,
            jitter=jitter,
            rng=rng,
        )

    async def send(self, notification: Notification) -> None:
        payload = slack_payload(notification) if self.slack else notification.to_dict()
        await self._http.post(self.url, payload)

    async def close(self) -> None:
        await self._http.close()


class AlertmanagerHandler:
    """Forwards alerts to a Prometheus Alertmanager (``POST /api/v2/alerts``).

    Alertmanager resolves an alert by itself at ``endsAt`` (or after its ``resolve_timeout``
    when none is sent), so a firing alert is sent with ``endsAt = now + firing_ttl_s``: route
    this handler with a ``repeat_interval`` shorter than that TTL to keep the alert open there.
    Severity is sent as a label, because Alertmanager users route on it.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        firing_ttl_s: float | None = None,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.5,
        generator_url: str = "",
        sleep: Sleep = asyncio.sleep,
        jitter: float = DEFAULT_JITTER,
        rng: Random = random.random,
    ) -> None:
        self.name = name
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self._ttl_ms = None if firing_ttl_s is None else int(firing_ttl_s * 1000)
        self._generator_url = generator_url
        self._http = _HttpPoster(
            name,
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
            backoff_max_s=10.0,
            headers=None,
            sleep=sleep,
            jitter=jitter,
            rng=rng,
        )

    async def send(self, notification: Notification) -> None:
        await self._http.post(
            self.url,
            alertmanager_payload(notification, self._ttl_ms, self._generator_url),
        )

    async def close(self) -> None:
        await self._http.close()


@dataclass(frozen=True)
class HandlerStats:
    """Delivery counters of one handler, as the status page and ``/metrics`` show them."""

    sent: int = 0
    failed: int = 0
    timed_out: int = 0
    last_error: str | None = None
    last_failure_at: int | None = None


class NotificationDispatcher:
    """Sends each notification to its named handlers at once, each under ``timeout_s``.

    ``dispatch`` returns when every handler has finished or been cut off, so callers that must
    not wait at all (the actor's loop) run it as a task. Failures never propagate: they are
    counted, logged and kept in :meth:`stats`.
    """

    def __init__(
        self,
        handlers: Iterable[AlertHandler] = (),
        *,
        timeout_s: float = 30.0,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._handlers: dict[str, AlertHandler] = {}
        self._stats: dict[str, HandlerStats] = {}
        self._timeout_s = timeout_s
        self._clock = clock
        for handler in handlers:
            self.add(handler)

    def add(self, handler: AlertHandler) -> None:
        self._handlers[handler.name] = handler
        self._stats.setdefault(handler.name, HandlerStats())

    def remove(self, name: str) -> AlertHandler | None:
        return self._handlers.pop(name, None)

    @property
    def handlers(self) -> dict[str, AlertHandler]:
        return dict(self._handlers)

    def stats(self) -> dict[str, HandlerStats]:
        return dict(self._stats)

    async def dispatch(self, notification: Notification) -> dict[str, bool]:
        """Deliver to every handler the notification names; returns who succeeded."""
        names = list(dict.fromkeys(notification.handlers))
        results = await asyncio.gather(*(self._send_one(n, notification) for n in names))
        return dict(zip(names, results, strict=True))

    async def _send_one(self, name: str, notification: Notification) -> bool:
        handler = self._handlers.get(name)
        if handler is None:
            self._count_failure(name, f"no handler named {name!r} is configured", timed_out=False)
            return False
        try:
            await asyncio.wait_for(handler.send(notification), self._timeout_s)
        except asyncio.TimeoutError:
            self._count_failure(name, f"timed out after {self._timeout_s:g}s", timed_out=True)
            return False
        except Exception as exc:  # any handler bug must stay inside that handler's counters
            self._count_failure(name, f"{type(exc).__name__}: {exc}", timed_out=False)
            return False
        stats = self._stats.get(name, HandlerStats())
        self._stats[name] = replace(stats, sent=stats.sent + 1)
        return True

    def _count_failure(self, name: str, error: str, *, timed_out: bool) -> None:
        stats = self._stats.get(name, HandlerStats())
        self._stats[name] = replace(
            stats,
            failed=stats.failed + 1,
            timed_out=stats.timed_out + int(timed_out),
            last_error=error,
            last_failure_at=self._clock(),
        )
        logger.warning("alert handler %r failed: %s", name, error)

    async def close(self) -> None:
        """Close handlers that hold connections (webhook sessions)."""
        for handler in self._handlers.values():
            close = getattr(handler, "close", None)
            if close is not None:
                await close()


_HANDLER_KEYS = {
    "log": {"type"},
    "webhook": {"type", "url", "slack", "timeout", "attempts", "backoff", "jitter", "headers"},
    "alertmanager": {"type", "url", "firing_ttl", "timeout", "attempts", "backoff", "jitter"},
}


def handlers_from_config(config: Mapping[str, Mapping[str, Any]]) -> list[AlertHandler]:
    """Build handlers from ``{name: {type: log|webhook|alertmanager, ...}}``.

    Python callables cannot come from a config file; the actor adds them with
    :meth:`NotificationDispatcher.add`. Times are durations (``"5s"``); errors name the field.
    """
    return [_handler(name, raw, f"handlers.{name}") for name, raw in config.items()]


def _handler(name: str, raw: Mapping[str, Any], path: str) -> AlertHandler:
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind not in _HANDLER_KEYS:
        raise AlertConfigError(f"{path}.type", f"expected one of {sorted(_HANDLER_KEYS)}")
    unknown = set(raw) - _HANDLER_KEYS[kind]
    if unknown:
        raise AlertConfigError(path, f"unknown keys {sorted(unknown)} for a {kind} handler")
    if kind == "log":
        return LogHandler(name)
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        shown = shown_url(url) if isinstance(url, str) else type(url).__name__
        raise AlertConfigError(f"{path}.url", f"expected an http(s) URL, got {shown}")
    attempts = raw.get("attempts", 3)
    if not isinstance(attempts, int) or attempts < 1:
        raise AlertConfigError(f"{path}.attempts", f"expected an integer >= 1, not {attempts!r}")
    timeout_s = _seconds(raw, "timeout", 5.0, path)
    backoff_s = _seconds(raw, "backoff", 0.5, path)
    jitter = raw.get("jitter", DEFAULT_JITTER)
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
        raise AlertConfigError(f"{path}.jitter", f"expected a fraction from 0 to 1, not {jitter!r}")
    if kind == "webhook":
        headers = {str(k): str(v) for k, v in dict(raw.get("headers", {})).items()}
        return WebhookHandler(
            name,
            url,
            slack=bool(raw.get("slack", False)),
            timeout_s=timeout_s,
            attempts=attempts,
            backoff_s=backoff_s,
            headers=headers,
            jitter=float(jitter),
        )
    return AlertmanagerHandler(
        name,
        url,
        firing_ttl_s=_seconds(raw, "firing_ttl", 0.0, path) or None,
        timeout_s=timeout_s,
        attempts=attempts,
        backoff_s=backoff_s,
        jitter=float(jitter),
    )


def _seconds(raw: Mapping[str, Any], key: str, default: float, path: str) -> float:
    return parse_duration_ms(raw[key], f"{path}.{key}") / 1000 if key in raw else default
