"""Authenticate first: the ASGI middleware every management API request passes before routing.

FastAPI reads and parses a request's body before it runs the route's dependencies, so a gate
written as a dependency let anyone without a key make the server read 100 MB, or learn from a
422 how it parses JSON. This middleware answers from the headers alone: it finds the route
template the request would reach, asks the :class:`~ray_enterprise.serve.gate.Gate` (the same
401 for every unauthenticated request, whatever the path, method or body), and only then reads
the body, at most ``max_body`` bytes (413 beyond), handing it on to the app. The admitted key
is left in ``scope["state"]["api_key"]`` for the routes.

Also here: :func:`user_text`, the message of an error a route shows its caller, without the
Ray traceback (pid, node IP, actor id) that wraps an exception raised in an actor.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ray.exceptions import RayTaskError
from starlette.routing import Match, Router

from ray_enterprise.security.apikeys import Scope
from ray_enterprise.serve.gate import UNAUTHORIZED_BODY, Gate, Refusal

Scope_ = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20  # a config value or an ack reason; nothing the API takes is larger
UNMATCHED = "<unmatched>"  # the route name of a path no route has (its own limiter bucket)


def user_text(exc: BaseException) -> str:
    """What an error says to a person: for one raised in an actor, the original's message."""
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        return str(exc.cause)
    return str(exc)


class AuthenticateFirst:
    """ASGI middleware: gate by headers, then read a bounded body, then route.

    ``scopes`` maps (method, path template) to the scope the route needs; ``public`` are the
    (method, path) pairs anyone may call. A path or method no route has still needs a valid key
    (then the app answers 404 or 405), so nobody without one learns which paths exist.
    """

    def __init__(
        self,
        app: Callable[[Scope_, Receive, Send], Awaitable[None]],
        *,
        gate: Gate,
        router: Router,
        scopes: Mapping[tuple[str, str], Scope],
        public: frozenset[tuple[str, str]] = frozenset(),
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self._gate = gate
        self._router = router
        self._scopes = scopes
        self._public = public
        self._max_body = max_body

    def _route_of(self, scope: Scope_) -> tuple[str, Scope | None, bool]:
        """(template, needed scope, public) of the route the request would reach."""
        method = scope["method"]
        partial = None
        for route in self._router.routes:
            match, _ = route.matches(scope)
            path = getattr(route, "path", UNMATCHED)
            if match is Match.FULL:
                if (method, path) in self._public:
                    return path, None, True
                return path, self._scopes.get((method, path)), False
            if match is Match.PARTIAL and partial is None:
                partial = path
        return partial or UNMATCHED, None, False

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, needed, public = self._route_of(scope)
        if public:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        try:
            key = await self._gate.admit(headers, path, needed, client[0] if client else None)
        except Refusal as refusal:
            await _answer(send, refusal.status, refusal.body, refusal.headers)
            return
        scope.setdefault("state", {})["api_key"] = key
        body = await self._bounded_body(headers, receive, send)
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: a disconnect, as the app expects

        await self.app(scope, replay, send)

    async def _bounded_body(
        self, headers: Mapping[str, str], receive: Receive, send: Send
    ) -> bytes | None:
        """The whole body, or ``None`` once a 413 (or a disconnect) ended the request."""
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            await self._too_large(send)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:  # chunked, or a Content-Length that lied
                await self._too_large(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send,
            413,
            {"error": f"request body over {self._max_body} bytes"},
            {"Connection": "close"},
        )


async def _answer(
    send: Send, status: int, body: Mapping[str, str], headers: Mapping[str, str]
) -> None:
    payload = json.dumps(dict(body), separators=(",", ":")).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


__all__ = ["MAX_BODY_BYTES", "UNAUTHORIZED_BODY", "AuthenticateFirst", "user_text"]
