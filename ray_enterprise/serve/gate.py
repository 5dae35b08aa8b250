"""The gate every HTTP request passes: who is calling (API key), may they (scope), how often
(rate limit). It answers with a :class:`Refusal` that the HTTP layer turns into a response.

Bodies of refusals are fixed strings, the same for a missing, malformed, unknown, expired or
revoked key: the reason goes to the security events and the audit trail, never to the caller,
so a caller with a stolen or guessed key learns nothing about it from the answer.

Verifying a key costs a PBKDF2 hash (tens of milliseconds, by design); a key proven within
``proof_ttl_s`` skips the hash but not the database: its record is read again on every request,
so a revocation or an expiry takes effect at once. A client address that failed too often is
refused (429) before its key is looked at, so guessing costs the guesser, not the server; and
failures that name no known key are folded into one audit record per window.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from ray_enterprise.config.schema import SecurityFrameworkConfig

from ray_enterprise.security.apikeys import ApiKey, ApiKeyStore, Scope
from ray_enterprise.security.audit import AuditLog
from ray_enterprise.security.errors import (
    ApiKeyNotFoundError,
    AuthenticationError,
    InsufficientScopeError,
)
from ray_enterprise.security.events import SecurityEvents, process_events
from ray_enterprise.security.login_guard import CLIENT, ROUTE, FailureDigest, LoginThrottle
from ray_enterprise.security.tokens import InvalidTokenError, looks_like_token, verify_token

UNAUTHORIZED_BODY = {"error": "unauthorized"}
FORBIDDEN_BODY = {"error": "forbidden"}
RATE_LIMITED_BODY = {"error": "rate limited"}


class Refusal(Exception):
    """An HTTP answer instead of the route: status, a fixed JSON body, extra headers."""

    def __init__(
        self, status: int, body: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, body.get("error", ""))
        self.status = status
        self.body = dict(body)
        self.headers = dict(headers or {})


def presented_key(headers: Mapping[str, str], header_name: str = "X-API-Key") -> str | None:
    """The key from ``Authorization: Bearer <key>`` or the configured key header."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    named = headers.get(header_name.lower()) or headers.get(header_name)
    return named.strip() if named and named.strip() else None


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1: ``Retry-After`` takes no fractions, and 0 invites a storm."""
    return str(max(1, math.ceil(seconds)))


class CachedVerifier:
    """:meth:`ApiKeyStore.verify` with the PBKDF2 step remembered for ``proof_ttl_s``.

    Only a digest of the presented key is kept, never the key. Any doubt (record changed,
    scope missing, proof too old) falls back to the store's full verification, which is also
    what records the failure in the events and the audit trail.
    """

    def __init__(
        self,
        store: ApiKeyStore,
        *,
        proof_ttl_s: float = 60.0,
        capacity: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ttl = proof_ttl_s
        self._capacity = capacity
        self._clock = clock
        self._proofs: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, presented: str, required: tuple[Scope, ...]) -> ApiKey:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            proof = self._proofs.get(digest)
        if proof is not None and now - proof[1] < self._ttl:
            try:
                key = self._store.get(proof[0])
            except ApiKeyNotFoundError:
                key = None
            usable = key is not None and key.status(now) in ("active", "rotating")
            if usable and key is not None and key.allows(*required):
                return key
        key = self._store.verify(presented, required=required)
        with self._lock:
            self._proofs[digest] = (key.key_id, now)
            self._proofs.move_to_end(digest)
            while len(self._proofs) > self._capacity:
                self._proofs.popitem(last=False)
        return key


class Gate:
    """Authentication, scope and rate limit for one HTTP application.

    ``limiter`` is a :class:`~ray_enterprise.security.limiter_client.LeasingLimiter` (or
    anything with its ``try_acquire_async``), ``None`` to admit every authenticated call;
    ``key_by`` is ``api_key`` or ``client_ip``; ``route_prefix`` keeps this application's
    buckets apart from other applications' on the cluster-wide limiter. ``throttle`` limits
    failed logins per client address (this replica's own count); ``digest`` folds anonymous
    failures (give the key store the same one, see :func:`gate_for`).
    """

    def __init__(
        self,
        verifier: CachedVerifier,
        *,
        audit: AuditLog | None,
        limiter: Any = None,
        key_header: str = "X-API-Key",
        key_by: str = "api_key",
        route_prefix: str = "api:",
        events: SecurityEvents | None = None,
        throttle: LoginThrottle | None = None,
        digest: FailureDigest | None = None,
        token_secret: str | None = None,
        token_max_lifetime_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._token_secret = token_secret
        self._token_max_lifetime_s = token_max_lifetime_s
        self._clock = clock
        self._audit = audit
        self._limiter = limiter
        self._key_header = key_header
        self._key_by = key_by
        self._prefix = route_prefix
        self._events = events if events is not None else process_events()
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.digest = digest
        self._flusher: asyncio.Task[None] | None = None

    def limiter_route(self, route: str) -> str:
        """The route's name at the limiter (and in the rate-limit metric)."""
        return f"{self._prefix}{route}"

    async def admit(
        self,
        headers: Mapping[str, str],
        route: str,
        scope: Scope | None,
        client_ip: str | None = None,
    ) -> ApiKey:
        """The key of a request allowed on ``route`` (any valid key when ``scope`` is
        ``None``); raises :class:`Refusal` otherwise."""
        client = client_ip or "unknown"
        wait = self.throttle.retry_after(client)
        if wait > 0:
            self._events.auth_failure("throttled")
            raise Refusal(429, RATE_LIMITED_BODY, {"Retry-After": retry_after_header(wait)})
        CLIENT.set(client)
        ROUTE.set(route)
        presented = presented_key(headers, self._key_header)
        if presented is None:
            await asyncio.to_thread(self._missing, route)
            self._schedule_flush()
            raise Refusal(401, UNAUTHORIZED_BODY, {"WWW-Authenticate": "Bearer"})
        needed = () if scope is None else (scope,)
        try:
            if self._token_secret is not None and looks_like_token(presented):
                key = self._verify_token(presented, route, needed)
            else:
                key = await asyncio.to_thread(self._verifier.verify, presented, needed)
        except InsufficientScopeError:
            raise Refusal(403, FORBIDDEN_BODY) from None
        except AuthenticationError:
            self.throttle.failed(client)
            self._schedule_flush()
            raise Refusal(401, UNAUTHORIZED_BODY, {"WWW-Authenticate": "Bearer"}) from None
        if self._limiter is not None:
            bucket = client_ip if self._key_by == "client_ip" and client_ip else key.key_id
            decision = await self._limiter.try_acquire_async(bucket, self.limiter_route(route))
            if not decision.admitted:
                raise Refusal(
                    429,
                    RATE_LIMITED_BODY,
                    {"Retry-After": retry_after_header(decision.retry_after_s)},
                )
        return key

    def _verify_token(self, token: str, route: str, needed: tuple[Scope, ...]) -> ApiKey:
        assert self._token_secret is not None
        try:
            key = verify_token(
                token,
                self._token_secret,
                now=self._clock(),
                max_lifetime_s=self._token_max_lifetime_s,
            )
        except InvalidTokenError as exc:
            self._events.auth_failure("token")
            self._denied("anonymous", route, {"reason": "token", "detail": exc.reason})
            raise
        try:
            key.require(*needed)
        except InsufficientScopeError as exc:
            self._denied(key.key_id, route, {"reason": "scope", "missing": sorted(exc.missing)})
            raise
        return key

    def _denied(self, actor: str, route: str, details: dict[str, Any]) -> None:
        if self._audit is not None:
            self._audit.append(
                actor, "auth.verify", target=route, outcome="denied", details=details
            )

    def _missing(self, route: str) -> None:
        # The store only sees presented keys; a request without one is counted here alike.
        self._events.auth_failure("missing")
        if self.digest is not None:
            self.digest.note("missing", route=route)
        elif self._audit is not None:
            self._audit.append(
                "anonymous",
                "auth.verify",
                target=route,
                outcome="denied",
                details={"reason": "missing"},
            )

    def _schedule_flush(self) -> None:
        """A counted window is written when it ends, even if no request comes after it."""
        digest = self.digest
        if digest is None or (self._flusher is not None and not self._flusher.done()):
            return
        due = digest.pending()
        if due is None:
            return

        async def flush_when_due() -> None:
            await asyncio.sleep(due)
            await asyncio.to_thread(digest.flush)

        self._flusher = asyncio.get_running_loop().create_task(flush_when_due())


def gate_for(
    engine: sa.Engine,
    audit: AuditLog | None,
    *,
    proof_ttl_s: float = 60.0,
    key_max_age_s: float | None = None,
    security: SecurityFrameworkConfig | None = None,
    **options: Any,
) -> Gate:
    """A gate over the key store in ``engine``, its anonymous failures folded into ``audit``
    (one :class:`FailureDigest` shared by the store and the gate), keys honoured at most
    ``key_max_age_s`` after their creation, bearer tokens taken when ``security`` sets a
    ``jwt_secret``; ``options`` are :class:`Gate`'s."""
    digest = None
    if audit is not None:
        log = audit

        def write(target: str, details: dict[str, Any]) -> None:
            log.append("anonymous", "auth.verify", target=target, outcome="denied", details=details)

        digest = FailureDigest(write)
    store = ApiKeyStore(
        engine,
        audit=audit,
        anonymous_failures=None if digest is None else digest.note,
        max_age_s=key_max_age_s,
    )
    if security is not None and security.jwt_secret is not None:
        options["token_secret"] = security.jwt_secret.get_secret_value()
        options["token_max_lifetime_s"] = security.session_timeout_minutes * 60.0
    return Gate(
        CachedVerifier(store, proof_ttl_s=proof_ttl_s), audit=audit, digest=digest, **options
    )


__all__ = [
    "FORBIDDEN_BODY",
    "RATE_LIMITED_BODY",
    "UNAUTHORIZED_BODY",
    "CachedVerifier",
    "Gate",
    "Refusal",
    "gate_for",
    "presented_key",
    "retry_after_header",
]
